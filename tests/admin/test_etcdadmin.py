"""pomelo-twisted list/stop/restart through etcd, on the in-memory store and a Clock."""

from __future__ import annotations

import io
import json
from argparse import Namespace
from typing import Any

import msgspec
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin.cli import execute, master_argv, parse_args
from pomelo_twisted.admin.client import AdminError
from pomelo_twisted.admin.etcdadmin import etcd_command, etcd_rows
from pomelo_twisted.discovery.etcd import server_key
from pomelo_twisted.discovery.interfaces import ServerRecord
from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.kv.interfaces import WatchEvent
from pomelo_twisted.kv.memory import MemoryKeyValueStore

from ..cluster.fakes import ProcessReactor, write_game

PREFIX = "/game"
URL = "etcd://127.0.0.1:2379/game"


class EtcdAdminCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.reactor.advance(1000)
        self.store = MemoryKeyValueStore(self.reactor)
        self.base = write_game(self)
        self.config = GameConfig(self.base)
        self.out = io.StringIO()
        self.pids = {"chat-1": 11, "connector-1": 12}
        for server_id in self.pids:
            self.register(server_id)

    def register(self, server_id: str, pid: int | None = None) -> None:
        info = next(i for s in self.config.servers().values() for i in s if i.id == server_id)
        record = ServerRecord(info.to_dict(), pid or self.pids[server_id], info.host, 940.0)
        self.store.put(server_key(PREFIX, server_id), msgspec.json.encode(record))

    def admin(self, command: str, *ids: str, entry: dict[str, Any] | None = None) -> Deferred[int]:
        return Deferred.fromCoroutine(
            etcd_command(
                self.reactor,
                self.store,
                PREFIX,
                self.config,
                command,
                list(ids),
                self.out,
                10.0,
                entry,
            )
        )

    def obey(self, on_stop: bool = True, restart_pid: int = 99) -> None:
        """Act as servers and supervisors would on the commands written."""

        def event(change: WatchEvent) -> None:
            if change.kind != "put":
                return
            target = change.kv.key.rsplit("/", 1)[1]
            command = json.loads(change.kv.value)["command"]
            if command == "stop" and on_stop and target in self.pids:
                self.store.delete(server_key(PREFIX, target))
            elif command == "restart":
                self.register(target, restart_pid)
            elif command == "add":
                self.pids["chat-2"] = 77
                self.register("chat-2")

        self.store.watch_prefix(f"{PREFIX}/commands/", 0, event)


class ListTests(EtcdAdminCase):
    """list."""

    def test_rows(self) -> None:
        """Registered servers are up with pid, host and uptime; declared others are down."""
        rows = etcd_rows({}, self.config, 0.0)
        self.assertEqual({row["state"] for row in rows}, {"down"})
        self.assertEqual(self.successResultOf(self.admin("list")), 0)
        lines = self.out.getvalue().splitlines()
        self.assertEqual(lines[0].split()[:3], ["ID", "TYPE", "STATE"])
        chat = next(line.split() for line in lines if line.startswith("chat-1"))
        self.assertEqual(chat[:5], ["chat-1", "chat", "up", "11", "127.0.0.1:4250"])
        self.assertEqual(chat[5], "1m00s")
        down = next(line.split() for line in lines if line.startswith("chat-2"))
        self.assertEqual(down[2], "down")

    def test_store_down(self) -> None:
        """etcd unreachable: an AdminError naming etcd."""
        self.store.fail()
        failure = self.failureResultOf(self.admin("list"), AdminError)
        self.assertIn("cannot read the cluster from etcd", failure.getErrorMessage())


class StopRestartTests(EtcdAdminCase):
    """stop and restart."""

    def test_stop_waits_until_gone(self) -> None:
        """stop ID writes the command and returns once ID has left."""
        self.obey()
        self.assertEqual(self.successResultOf(self.admin("stop", "chat-1")), 0)
        self.assertEqual(self.out.getvalue(), "stopped: chat-1\n")

    def test_stop_unknown(self) -> None:
        """stop of an id that is not registered is refused, naming it."""
        failure = self.failureResultOf(self.admin("stop", "chat-9"), AdminError)
        self.assertIn("chat-9", failure.getErrorMessage())

    def test_stop_gives_up(self) -> None:
        """A server that does not leave: an AdminError after the timeout."""
        d = self.admin("stop", "chat-1")
        self.reactor.advance(11)
        self.assertIn("still registered: chat-1", self.failureResultOf(d).getErrorMessage())

    def test_stop_all(self) -> None:
        """stop: frontends, then backends, then a stop for each host's supervisor."""
        self.obey()
        self.assertEqual(self.successResultOf(self.admin("stop")), 0)
        kvs, _ = self.successResultOf(self.store.get_prefix(f"{PREFIX}/commands/"))
        self.assertEqual(
            [kv.key.rsplit("/", 1)[1] for kv in kvs],
            ["@*", "@127.0.0.1", "chat-1", "connector-1"],  # every declared host
        )

    def test_restart_waits_for_the_new_pid(self) -> None:
        """restart ID returns once ID registered again with another pid."""
        self.obey()
        self.assertEqual(self.successResultOf(self.admin("restart", "chat-1")), 0)
        self.assertEqual(self.out.getvalue(), "restarted chat-1 (pid 99)\n")

    def test_add_waits_until_registered(self) -> None:
        """add writes the entry for its host's supervisor and waits for the registration."""
        self.obey()
        entry = {"type": "chat", "id": "chat-2", "host": "127.0.0.1", "port": 4251}
        self.assertEqual(self.successResultOf(self.admin("add", entry=entry)), 0)
        self.assertEqual(self.out.getvalue(), "added chat-2 (pid 77)\n")
        kv = self.successResultOf(self.store.get(f"{PREFIX}/commands/@127.0.0.1"))
        assert kv is not None
        self.assertEqual(json.loads(kv.value)["entry"], entry)

    def test_add_without_a_supervisor(self) -> None:
        """add with nobody obeying: an AdminError naming the host's supervisor."""
        entry = {"type": "chat", "id": "chat-2", "host": "127.0.0.9", "port": 4251}
        d = self.admin("add", entry=entry)
        self.reactor.advance(11)
        self.assertIn("supervisor of 127.0.0.9", self.failureResultOf(d).getErrorMessage())

    def test_kill_needs_the_master(self) -> None:
        """kill and add say they need the master."""
        failure = self.failureResultOf(self.admin("kill"), AdminError)
        self.assertIn("needs the master", failure.getErrorMessage())


class ExecuteTests(EtcdAdminCase):
    """execute() picks etcd from --discovery."""

    def test_discovery_option_routes_to_etcd(self) -> None:
        """--discovery etcd://... makes list read etcd (the store factory's)."""
        args = Namespace(app=str(self.base), env="development", command="list", discovery=URL)
        err = io.StringIO()
        made = []

        def factory(reactor: object, settings: object) -> MemoryKeyValueStore:
            made.append(settings)
            return self.store

        status = self.successResultOf(
            execute(self.reactor, args, self.out, err, store_factory=factory)
        )
        self.assertEqual((status, err.getvalue()), (0, ""))
        self.assertEqual(made[0].key_prefix, PREFIX)  # type: ignore[attr-defined]
        self.assertIn("chat-1", self.out.getvalue())


class EtcdDrainTests(EtcdAdminCase):
    """drain and restart --rolling with etcd discovery."""

    def run_command(self, **options: Any) -> tuple[int, str]:
        args = Namespace(app=str(self.base), env="development", discovery=URL, **options)
        err = io.StringIO()
        status = self.successResultOf(
            execute(self.reactor, args, self.out, err, store_factory=lambda *_: self.store)
        )
        return status, err.getvalue()

    def test_drain_writes_stop(self) -> None:
        """drain ID writes ``stop`` (which drains the server) and waits until it left."""
        self.obey()
        self.assertEqual(self.run_command(command="drain", id="chat-1", grace=None), (0, ""))
        self.assertEqual(self.out.getvalue(), "stopped: chat-1\n")

    def test_rolling_needs_the_master(self) -> None:
        """restart --rolling is refused in one line saying what to do instead."""
        status, err = self.run_command(command="restart", id=None, rolling="chat")
        self.assertEqual(status, 1)
        self.assertIn("restart --rolling needs the master", err)
        self.assertEqual(len(err.strip().splitlines()), 1)


class StartArgumentsTests(SynchronousTestCase):
    """start --host and --discovery reach twistd."""

    def test_parse(self) -> None:
        """--discovery is accepted on any command, before or after it; --host on start."""
        args = parse_args(["--discovery", URL, "list"])
        self.assertEqual(args.discovery, URL)
        args = parse_args(["start", "--host", "127.0.0.2", "--discovery", URL])
        self.assertEqual((args.host, args.discovery), ("127.0.0.2", URL))
        self.assertIsNone(parse_args(["stop"]).discovery)

    def test_master_argv(self) -> None:
        """The supervisor of one host gets --host and --discovery, and files of its own."""
        config = GameConfig(write_game(self))
        argv = master_argv(config, daemon=True, host="127.0.0.2", discovery=URL)
        self.assertEqual(argv[argv.index("--host") + 1], "127.0.0.2")
        self.assertEqual(argv[argv.index("--discovery") + 1], URL)
        self.assertTrue(argv[argv.index("--logfile") + 1].endswith("supervisor-127.0.0.2.log"))
        self.assertNotIn("--host", master_argv(config, daemon=False))
