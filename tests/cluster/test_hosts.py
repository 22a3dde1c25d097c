"""The supervisor of one host: which servers it starts, and the etcd commands it obeys."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cluster.build import build_master
from pomelo_twisted.cluster.hosts import HostSupervisor, host_command_id
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.cluster.spawn import server_command
from pomelo_twisted.cluster.supervisor import Supervisor
from pomelo_twisted.discovery.commands import command_key, encode_command
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.kv.memory import MemoryKeyValueStore

from .fakes import ProcessReactor, write_game

PREFIX = "/game"
URL = "etcd://127.0.0.1:2379/game"


def spread_game(test: SynchronousTestCase) -> GameConfig:
    """The test game with connector-2 and chat-2 moved to host 127.0.0.2."""
    base = write_game(test)
    path = base / "config" / "servers.json"
    data = json.loads(path.read_text())
    for entries in data["development"].values():
        for entry in entries:
            if entry["id"].endswith("-2"):
                entry["host"] = "127.0.0.2"
    path.write_text(json.dumps(data))
    return GameConfig(base)


class HostCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.store = MemoryKeyValueStore(self.reactor)
        self.config = spread_game(self)
        self.stopped = 0
        self.running: set[str] = set()
        self.host = self.make("127.0.0.2")

    def make(self, host: str | None) -> HostSupervisor:
        return HostSupervisor(
            self.reactor,
            self.config,
            host,
            supervisor=Supervisor(self.reactor),
            command=partial(server_command, discovery=URL),
            store=self.store,
            prefix=PREFIX,
            stop_timeout=5.0,
            stop_process=self.stop_process,
            probe=lambda info: succeed(info.id in self.running),
        )

    def stop_process(self) -> None:
        self.stopped += 1

    def command(self, target: str, command: str) -> None:
        self.store.put(command_key(PREFIX, target), encode_command(command, 0.0))


class StartTests(HostCase):
    """What a host supervisor starts."""

    def test_starts_only_its_hosts_servers_backends_first(self) -> None:
        """--host 127.0.0.2 starts chat-2 then connector-2, each with --discovery."""
        self.host.startService()
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-2"])
        args = self.reactor.spawned[0].args
        self.assertEqual(args[args.index("--discovery") + 1], URL)

    def test_running_servers_are_left_alone(self) -> None:
        """A server whose RPC port answers (a supervisor restarted) is not started twice."""
        self.running.add("chat-2")
        self.host.startService()
        self.assertEqual(self.reactor.spawned_ids(), ["connector-2"])
        self.assertEqual(self.host.adopted, {"chat-2"})

    def test_no_host_starts_everything(self) -> None:
        """Without --host every server of servers.json is started."""
        self.make(None).startService()
        self.assertEqual(len(self.reactor.spawned_ids()), 4)

    def test_kill_9_is_restarted(self) -> None:
        """A server of the host that dies is restarted (auto-restart, as with the master)."""
        self.host.startService()
        self.reactor.process("chat-2").die(9)
        self.reactor.advance(1)
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-2", "chat-2"])

    def test_stop_stops_frontends_first(self) -> None:
        """Stopping the supervisor SIGTERMs the frontends, then the backends."""
        self.host.startService()
        d = self.host.stopService()
        self.assertEqual(self.reactor.process("connector-2").signals, ["TERM"])
        self.assertEqual(self.reactor.process("chat-2").signals, [])
        self.reactor.process("connector-2").exit(0)
        self.assertEqual(self.reactor.process("chat-2").signals, ["TERM"])
        self.reactor.process("chat-2").exit(0)
        self.successResultOf(d)


class CommandTests(HostCase):
    """Commands from pomelo-twisted, through etcd."""

    def setUp(self) -> None:
        super().setUp()
        self.host.startService()

    def test_stop_is_not_restarted(self) -> None:
        """stop ID: the server exits by itself (no signal) and is not restarted."""
        self.command("chat-2", "stop")
        process = self.reactor.process("chat-2")
        self.assertEqual(process.signals, [])
        process.exit(0)
        self.reactor.advance(60)
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-2"])

    def test_stop_overdue_gets_sigterm(self) -> None:
        """A server that does not exit within stop_timeout after stop gets SIGTERM."""
        self.command("chat-2", "stop")
        self.reactor.advance(5.5)
        self.assertEqual(self.reactor.process("chat-2").signals, ["TERM"])

    def test_restart(self) -> None:
        """restart ID: stopped, then started again."""
        self.command("chat-2", "restart")
        self.reactor.process("chat-2").exit(0)
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-2", "chat-2"])

    def test_other_hosts_servers_are_ignored(self) -> None:
        """Commands for servers of other hosts change nothing here."""
        self.command("chat-1", "restart")
        self.command("chat-1", "stop")
        self.assertEqual(self.reactor.process("chat-2").signals, [])

    def test_host_stop(self) -> None:
        """stop @HOST: every server stops, then the supervisor's process."""
        self.command(host_command_id("127.0.0.2"), "stop")
        self.reactor.process("connector-2").exit(0)
        self.reactor.process("chat-2").exit(0)
        self.assertEqual(self.stopped, 1)

    def test_add(self) -> None:
        """add @HOST with an entry: the server is started with --server and supervised."""
        entry = {"type": "chat", "id": "chat-3", "host": "127.0.0.2", "port": 4252}
        self.store.put(command_key(PREFIX, "@127.0.0.2"), encode_command("add", 0.0, entry))
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-2", "chat-3"])
        args = self.reactor.spawned[-1].args
        self.assertEqual(json.loads(args[args.index("--server") + 1])["port"], 4252)
        self.command("chat-3", "restart")
        self.reactor.process("chat-3").exit(0)
        self.assertEqual(self.reactor.spawned_ids()[-1], "chat-3")

    def test_add_refusals(self) -> None:
        """add of a running id, of another host's server or of a bad entry starts nothing."""
        for entry in (
            {"type": "chat", "id": "chat-2", "host": "127.0.0.2", "port": 4252},
            {"type": "chat", "id": "chat-4", "host": "127.0.0.9", "port": 4252},
            {"id": "chat-5"},
        ):
            self.assertIsNone(self.host.add(entry))
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-2"])

    def test_old_commands_ignored(self) -> None:
        """Commands present before the supervisor started are not obeyed."""
        self.command("connector-1", "stop")
        other = self.make("127.0.0.1")
        other.startService()
        self.assertEqual(self.reactor.process("connector-1").signals, [])


class BuildTests(SynchronousTestCase):
    """build_master: a master, or a host supervisor."""

    def test_etcd_builds_a_host_supervisor(self) -> None:
        """With --discovery etcd://... the master process is a host supervisor."""
        config = spread_game(self)
        service = build_master(
            config, ProcessReactor(), on_listen_failure=lambda: None, discovery=URL
        )
        self.assertIsInstance(service, HostSupervisor)

    def test_master_host_builds_a_master_for_its_host(self) -> None:
        """With the master's registry, --host of the master's host is the master, spawning
        only that host's servers; another host gets a host supervisor."""
        config = spread_game(self)
        master = build_master(
            config, ProcessReactor(), on_listen_failure=lambda: None, host="127.0.0.1"
        )
        assert isinstance(master, MasterService)
        self.assertEqual(master.spawn_host, "127.0.0.1")
        other = build_master(
            config, ProcessReactor(), on_listen_failure=lambda: None, host="127.0.0.2"
        )
        self.assertIsInstance(other, HostSupervisor)

    def test_bad_discovery_names_the_option(self) -> None:
        """A bad --discovery is a ConfigError naming the option."""
        config = GameConfig(write_game(self))
        with self.assertRaises(ConfigError) as caught:
            build_master(
                config, MemoryReactorClock(), on_listen_failure=lambda: None, discovery="etcd://"
            )  # type: ignore[arg-type]
        self.assertIn("--discovery", str(caught.exception))

    def test_bad_discovery_in_master_json(self) -> None:
        """A bad discovery in master.json names the file and the field."""
        base = write_game(self)
        path: Path = base / "config" / "master.json"
        data = json.loads(path.read_text())
        data["development"]["discovery"] = "zookeeper://x"
        path.write_text(json.dumps(data))
        with self.assertRaises(ConfigError) as caught:
            build_master(GameConfig(base), MemoryReactorClock(), on_listen_failure=lambda: None)  # type: ignore[arg-type]
        self.assertIn("master.json (development): 'discovery'", str(caught.exception))


class MasterSpawnHostTests(SynchronousTestCase):
    """The master started with --host spawns only that host's servers."""

    def test_spawns_only_its_hosts_servers(self) -> None:
        """spawn_host 127.0.0.1: chat-1 and connector-1 only; all four stay declared."""
        config = spread_game(self)
        reactor = ProcessReactor()
        master = MasterService(
            reactor,
            config,
            b"the-cluster-secret",
            supervisor=Supervisor(reactor),
            probe=lambda info: succeed(False),
            spawn_host="127.0.0.1",
        )
        master.startService()
        self.assertEqual(reactor.spawned_ids(), ["chat-1", "connector-1"])
        self.assertEqual(len(master.declared), 4)
