"""The example game on three "machines" (127.0.0.1/.2/.3) with etcd discovery, no master.

One ``pomelo-twisted start --host H --discovery etcd://...`` supervisor per address:
connector-server-1 on .1, connector-server-2 on .2, both chat servers on .3. A room
spanning both connectors gets every push exactly once; ``list`` (through etcd) shows every
server with its host; a ``kill -9``'d chat server is restarted and serves again; ``stop``
stops every server and supervisor, each exiting 0, with no traceback in any log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from pomelo_twisted.client import PomeloClient, connect
from pomelo_twisted.testing.children import dying_with_parent
from pomelo_twisted.testing.etcdserver import EtcdServer
from pomelo_twisted.testing.gamecopy import child_env

from .cluster import ENTRY
from .game import REPO, copy_game, traceback_entries
from .test_cluster import CHAT_ECHO, JOIN, SEND, room_on
from .test_example_game import Pushes

HOSTS = {
    "connector-server-1": "127.0.0.1",
    "connector-server-2": "127.0.0.2",
    "chat-server-1": "127.0.0.3",
    "chat-server-2": "127.0.0.3",
}
WAIT = 40.0


def _bindable(host: str) -> bool:
    try:
        with socket.socket() as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


class EtcdCluster:
    """An etcd, a copy of the example game spread over three loopback hosts, and one
    supervisor process per host."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="pomelo-etcd-cluster-"))
        self.game = self.workdir / "game"
        self.layout = copy_game(self.game)
        for entries in self.layout["servers"].values():
            for entry in entries:
                entry["host"] = HOSTS[entry["id"]]
                if "clientHost" in entry:
                    entry["clientHost"] = entry["host"]
        servers = self.game / "config" / "servers.json"
        data = json.loads(servers.read_text(encoding="utf-8"))
        data["development"] = self.layout["servers"]
        servers.write_text(json.dumps(data, indent=1), encoding="utf-8")
        self.etcd = EtcdServer()
        self.url = ""
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self) -> None:
        """Start etcd, then one supervisor per host."""
        self.etcd.start()
        self.url = self.etcd.url.replace("http://", "etcd://") + "/game"
        for host in sorted(set(HOSTS.values())):
            log = (self.workdir / f"supervisor-{host}.log").open("wb")
            self._logs.append(log)
            self.processes[host] = subprocess.Popen(
                dying_with_parent(
                    [
                        sys.executable,
                        "-m",
                        "pomelo_twisted.admin.cli",
                        "start",
                        "--app",
                        str(self.game),
                        "--host",
                        host,
                        "--discovery",
                        self.url,
                    ]
                ),
                cwd=self.workdir,
                env=child_env(REPO),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @inlineCallbacks
    def cli(self, *args: str) -> Any:
        """``pomelo-twisted ARGS --app GAME --discovery URL``: (stdout, stderr, code)."""
        out, err, code = yield getProcessOutputAndValue(
            sys.executable,
            [
                "-m",
                "pomelo_twisted.admin.cli",
                *args,
                "--app",
                str(self.game),
                "--discovery",
                self.url,
            ],
            env=child_env(REPO),
            path=str(self.workdir),
            reactor=reactor,
        )
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code

    @inlineCallbacks
    def rows(self) -> Any:
        """``list`` as {id: columns}."""
        out, _err, code = yield self.cli("list")
        if code != 0:
            return {}
        return {line.split()[0]: line.split() for line in out.splitlines()[1:] if line}

    @inlineCallbacks
    def wait_until(self, what: str, test: Any) -> Any:
        """Poll ``list`` until ``test(rows)``; fail after WAIT seconds."""
        deadline = reactor.seconds() + WAIT
        while True:
            rows = yield self.rows()
            if test(rows):
                return rows
            if reactor.seconds() > deadline:
                raise AssertionError(f"not within {WAIT:g}s: {what}; list: {rows}")
            yield deferLater(reactor, 0.25, lambda: None)

    def client_port(self, server_id: str) -> tuple[str, int]:
        for entry in self.layout["servers"]["connector"]:
            if entry["id"] == server_id:
                return entry["clientHost"], int(entry["clientPort"])
        raise KeyError(server_id)

    def logs(self) -> dict[str, str]:
        found = {p.name: p for p in self.workdir.glob("supervisor-*.log")}
        found.update({p.name: p for p in (self.game / "logs").glob("*.log")})
        return {name: p.read_text(encoding="utf-8", errors="replace") for name, p in found.items()}

    def stop(self) -> None:
        """Kill whatever is left, stop etcd, remove the folder."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(15)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait()
        for log in self._logs:
            log.close()
        self.etcd.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class EtcdClusterTests(TestCase):
    """Three supervisors, etcd discovery, no master."""

    timeout = 180

    @inlineCallbacks
    def client(self, cluster: EtcdCluster, connector: str, uid: str, rid: str) -> Any:
        host, port = cluster.client_port(connector)
        client: PomeloClient = yield connect(reactor, f"tcp:{host}:{port}", timeout=5.0)
        self.addCleanup(client.close)
        reply = yield client.request(ENTRY, {"uid": uid, "rid": rid})
        self.assertEqual(reply, {"code": 200, "uid": uid})
        return client

    @inlineCallbacks
    def test_three_hosts_serve_recover_and_stop(self) -> Any:
        """Every push once per member across connectors; list shows hosts; kill -9 of a chat
        server is restarted and serves again; stop ends every process with 0, no traceback."""
        if not all(_bindable(host) for host in set(HOSTS.values())):
            self.skipTest("127.0.0.2/127.0.0.3 cannot be bound here")
        cluster = EtcdCluster()
        self.addCleanup(cluster.stop)
        cluster.start()
        rows = yield cluster.wait_until(
            "every server up", lambda rows: all(rows.get(s, ["", "", ""])[2] == "up" for s in HOSTS)
        )
        for server_id, host in HOSTS.items():
            self.assertTrue(rows[server_id][4].startswith(f"{host}:"), rows[server_id])

        rid = room_on("chat-server-1")
        alice = yield self.client(cluster, "connector-server-1", "alice", rid)
        bob = yield self.client(cluster, "connector-server-2", "bob", rid)
        pushes = {"alice": Pushes(alice, "onChat"), "bob": Pushes(bob, "onChat")}
        yield alice.request(JOIN, {"rid": rid})
        joined = yield bob.request(JOIN, {"rid": rid})
        self.assertEqual(joined["members"], ["alice", "bob"])
        for n, sender in enumerate((alice, bob, alice)):
            reply = yield sender.request(SEND, {"rid": rid, "content": f"m{n}"})
            self.assertEqual(reply, {"code": 200})
        yield gatherResults([p.wait_for(3) for p in pushes.values()])
        echoed = yield bob.request(CHAT_ECHO, {"n": 1})
        self.assertEqual(echoed, {"n": 1})
        for name, received in pushes.items():
            self.assertEqual([b["content"] for b in received.bodies], ["m0", "m1", "m2"], name)

        pid = int(rows["chat-server-1"][3])
        os.kill(pid, signal.SIGKILL)
        yield cluster.wait_until(
            "chat-server-1 back with a new pid",
            lambda rows: (
                rows.get("chat-server-1", ["", "", "", ""])[2] == "up"
                and rows["chat-server-1"][3] != str(pid)
            ),
        )
        deadline = reactor.seconds() + WAIT
        while True:  # its room is served again (peers reconnect at its "up")
            echoed = yield alice.request(CHAT_ECHO, {"n": 2}, timeout=5.0)
            if echoed == {"n": 2}:
                break
            self.assertLess(reactor.seconds(), deadline, echoed)
            yield deferLater(reactor, 0.25, lambda: None)

        _out, err, code = yield cluster.cli("stop")
        self.assertEqual(code, 0, err)
        for host, process in cluster.processes.items():
            deadline = reactor.seconds() + WAIT
            while process.poll() is None and reactor.seconds() < deadline:
                yield deferLater(reactor, 0.1, lambda: None)
            self.assertEqual(process.poll(), 0, host)
        logs = cluster.logs()
        problems = {name: traceback_entries(text) for name, text in logs.items()}
        self.assertEqual({k: v for k, v in problems.items() if v}, {})
        stopped = re.findall(r"Main loop terminated", "".join(logs.values()))
        self.assertGreaterEqual(len(stopped), 3)
