"""AdminClient against a real MasterService (spawn=False) on loopback, and its error mapping.

The master runs in this process on the real reactor and an ephemeral port; it
starts no server (``spawn=False``). Each test stops it on cleanup and waits until
every server-side connection is gone, so the reactor is clean for trial and for
pytest. This module also holds the temporary game folder the CLI tests use.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import tempfile
from argparse import Namespace
from pathlib import Path
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.admin import (
    AdminClient,
    AdminError,
    LoginRefused,
    MasterUnreachable,
    connect_admin,
    endpoint_address,
)
from pomelo_twisted.admin.cli import execute
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.cluster.supervisor import Supervisor
from pomelo_twisted.errors import PomeloError
from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.rpc.payload import pack_plain
from pomelo_twisted.rpc.pbconnection import OneShotLogin

#: The admin CLI's secret (master.json ``adminSecret``), and the servers' (``secret``).
SECRET = "admin-test-secret"
CLUSTER_SECRET = "cluster-test-secret"

SERVERS = {
    "development": {
        "connector": [
            {
                "id": "connector-server-1",
                "host": "127.0.0.1",
                "port": 4150,
                "clientHost": "127.0.0.1",
                "clientPort": 3010,
                "frontend": True,
            }
        ],
        "chat": [{"id": "chat-server-1", "host": "127.0.0.1", "port": 4250}],
    }
}


def write_master(folder: Path, port: int | None = 4005, secret: str | None = SECRET) -> None:
    """Write ``config/master.json`` (development) with this port and admin secret (and
    the cluster secret; neither when ``secret`` is None)."""
    entry: dict[str, Any] = {"id": "master-server-1", "host": "127.0.0.1"}
    if port is not None:
        entry["port"] = port
    if secret is not None:
        entry["secret"] = CLUSTER_SECRET
        entry["adminSecret"] = secret
    (folder / "config" / "master.json").write_text(json.dumps({"development": entry}))


def temp_dir(case: SynchronousTestCase) -> Path:
    """A fresh folder removed after the test (mktemp would write into the repo under pytest)."""
    path = Path(tempfile.mkdtemp(prefix="pomelo-admin-"))
    case.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def game_dir(case: SynchronousTestCase, port: int | None = 4005) -> Path:
    """A fresh game folder: a connector (frontend), a chat server and the master."""
    folder = temp_dir(case) / "game"
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "servers.json").write_text(json.dumps(SERVERS))
    write_master(folder, port)
    return folder


class RunningMaster:
    """A MasterService on an ephemeral loopback port that counts its open connections."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.service = MasterService(
            reactor,
            GameConfig(folder),
            CLUSTER_SECRET.encode(),
            admin_secret=SECRET.encode(),
            supervisor=Supervisor(reactor),
            spawn=False,
            listen="tcp:0:interface=127.0.0.1",
        )
        self.port_number = 0
        self._open = 0
        self._idle: list[Deferred[None]] = []

    def start(self) -> None:
        """Listen (a TCP listen succeeds at once) and track every server-side connection."""
        self.service.startService()
        port = self.service.port
        assert port is not None, "the master is not listening"
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        self.port_number = address.port
        factory: Any = getattr(port, "factory")  # noqa: B009 (not on IListeningPort)
        build = factory.buildProtocol

        def build_tracked(addr: Any) -> Any:
            broker = build(addr)
            lost = broker.connectionLost

            def connection_lost(reason: Failure) -> None:
                try:
                    lost(reason)
                finally:
                    self._gone()

            broker.connectionLost = connection_lost
            self._open += 1
            return broker

        factory.buildProtocol = build_tracked

    @property
    def endpoint(self) -> str:
        """The client endpoint string of the master's port."""
        return f"tcp:host=127.0.0.1:port={self.port_number}"

    def _gone(self) -> None:
        self._open -= 1
        if self._open == 0:
            waiters, self._idle = self._idle, []
            for waiter in waiters:
                waiter.callback(None)

    def all_gone(self) -> Deferred[None]:
        """Fires once no server-side connection is left."""
        if self._open == 0:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idle.append(d)
        return d

    @inlineCallbacks
    def stop(self) -> Any:
        """Stop the master (unless stopped already); wait, bounded, for its connections to end."""
        if self.service.running:
            yield self.service.stopService()
        yield self.all_gone().addTimeout(10, reactor)


def closed_port(case: SynchronousTestCase) -> int:
    """A loopback port bound (so no one else takes it) but not listening: it refuses."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    case.addCleanup(sock.close)
    port: int = sock.getsockname()[1]
    return port


class EndpointAddressTests(SynchronousTestCase):
    """endpoint_address: the host:port messages name."""

    def test_keyword_and_positional_forms(self) -> None:
        """host=/port= and positional tcp: strings both give host:port."""
        self.assertEqual(endpoint_address("tcp:host=127.0.0.1:port=4005"), "127.0.0.1:4005")
        self.assertEqual(endpoint_address("tcp:example.com:4005:timeout=3"), "example.com:4005")

    def test_unix_and_unparsable(self) -> None:
        """A unix: endpoint gives its path; anything else is shown as given."""
        self.assertEqual(endpoint_address("unix:path=/tmp/master.sock"), "/tmp/master.sock")
        self.assertEqual(endpoint_address("tcp"), "tcp")
        self.assertEqual(endpoint_address("tcp:port=4005"), "tcp:port=4005")

    def test_errors_are_pomelo_errors(self) -> None:
        """AdminError is a PomeloError; the unreachable and refused kinds are AdminErrors."""
        self.assertTrue(issubclass(AdminError, PomeloError))
        self.assertTrue(issubclass(MasterUnreachable, AdminError))
        self.assertTrue(issubclass(LoginRefused, AdminError))


class FakeAvatar:
    """A remote reference whose callRemote answers with a canned result."""

    def __init__(self, result: Any = None, raises: Exception | None = None) -> None:
        self.result = result
        self.raises = raises
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def callRemote(self, method: str, *args: object) -> Deferred[Any]:  # noqa: N802
        """Record the call; answer the canned result (or raise)."""
        self.calls.append((method, args))
        if self.raises is not None:
            raise self.raises
        if isinstance(self.result, Failure):
            return fail(self.result)
        return succeed(self.result)


class ClientMappingTests(SynchronousTestCase):
    """What AdminClient sends and how it turns answers and failures into data and errors."""

    def client(self, avatar: FakeAvatar) -> AdminClient:
        """An AdminClient on a fake avatar (no broker needed for calls)."""
        return AdminClient(None, avatar, "127.0.0.1:4005")  # type: ignore[arg-type]

    def test_arguments_are_msgpack(self) -> None:
        """stop and add send msgpack bytes, restart the id, list and kill nothing."""
        avatar = FakeAvatar(pack_plain({"ok": True}))
        client = self.client(avatar)
        answers: list[Deferred[Any]] = [
            client.list(),
            client.stop(["a", "b"]),
            client.kill(),
            client.restart("chat-server-1"),
            client.add({"type": "chat", "id": "chat-server-3"}),
        ]
        for d in answers:
            self.assertEqual(self.successResultOf(d), {"ok": True})
        self.assertEqual(
            avatar.calls,
            [
                ("list", ()),
                ("stop", (pack_plain(["a", "b"]),)),
                ("kill", ()),
                ("restart", ("chat-server-1",)),
                ("add", (pack_plain({"type": "chat", "id": "chat-server-3"}),)),
            ],
        )

    def test_master_refusal_becomes_admin_error(self) -> None:
        """A pb.Error raised by the master becomes an AdminError with its message."""
        client = self.client(FakeAvatar(Failure(pb.Error("no server x in the cluster"))))
        failure = self.failureResultOf(client.stop(["x"]), AdminError)
        self.assertEqual(str(failure.value), "no server x in the cluster")

    def test_lost_connection(self) -> None:
        """A lost or dead connection becomes an AdminError naming the master's address."""
        lost = self.client(FakeAvatar(Failure(pb.PBConnectionLost("gone"))))
        failure = self.failureResultOf(lost.list(), AdminError)
        self.assertIn("lost the connection to the master at 127.0.0.1:4005", str(failure.value))
        dead = self.client(FakeAvatar(raises=pb.DeadReferenceError("dead")))
        failure = self.failureResultOf(dead.kill(), AdminError)
        self.assertIn("lost the connection to the master at 127.0.0.1:4005", str(failure.value))

    def test_malformed_answer(self) -> None:
        """An answer that is not msgpack bytes is an AdminError, not a crash."""
        for answer in ("text", b"\xc1"):
            failure = self.failureResultOf(self.client(FakeAvatar(answer)).list(), AdminError)
            self.assertIn("malformed answer", str(failure.value))

    def test_connect_timeout(self) -> None:
        """A connection that never completes fails after the timeout as MasterUnreachable."""
        clock = MemoryReactorClock()
        d = connect_admin(clock, "tcp:host=10.0.0.1:port=4005", b"secret", timeout=3.0)
        self.assertNoResult(d)
        self.assertEqual(len(clock.tcpClients), 1)
        clock.advance(3.0)
        failure = self.failureResultOf(d, MasterUnreachable)
        self.assertIn("cannot reach the master at 10.0.0.1:4005", str(failure.value))
        self.assertIn("no answer within 3s", str(failure.value))
        self.assertIn("pomelo-twisted start", str(failure.value))

    def test_bad_endpoint(self) -> None:
        """An endpoint string Twisted cannot parse is an AdminError naming it."""
        failure = self.failureResultOf(
            connect_admin(MemoryReactorClock(), "nosuchkind:1", b"secret"), AdminError
        )
        self.assertIn("bad master endpoint 'nosuchkind:1'", str(failure.value))


class RealMasterTests(TestCase):
    """connect_admin and AdminClient against a MasterService on loopback."""

    timeout = 30

    def setUp(self) -> None:
        self.folder = game_dir(self)
        self.master = RunningMaster(self.folder)
        self.master.start()
        self.addCleanup(self.master.stop)

    def connect(self, secret: str = SECRET) -> Deferred[AdminClient]:
        """Log in as admin; the connection is closed on cleanup."""
        d = connect_admin(reactor, self.master.endpoint, secret.encode())

        def opened(client: AdminClient) -> AdminClient:
            self.addCleanup(client.close)
            return client

        return d.addCallback(opened)

    @inlineCallbacks
    def test_list_has_master_and_declared_servers(self) -> Any:
        """list answers the master's row first, then every declared server, down."""
        client = yield self.connect()
        rows = yield client.list()
        self.assertEqual(
            [(row["id"], row["type"], row["state"]) for row in rows],
            [
                ("master-server-1", "master", "up"),
                ("connector-server-1", "connector", "down"),
                ("chat-server-1", "chat", "down"),
            ],
        )
        self.assertEqual(rows[0]["port"], self.master.port_number)
        self.assertEqual(rows[1]["clientPort"], 3010)
        self.assertIsNone(rows[1]["pid"])
        self.assertEqual(client.address, f"127.0.0.1:{self.master.port_number}")

    @inlineCallbacks
    def test_wrong_secret_is_refused(self) -> Any:
        """A wrong secret fails with LoginRefused naming the address and the secret."""
        with self.assertRaises(LoginRefused) as caught:
            yield self.connect("not-the-secret")
        message = str(caught.exception)
        self.assertIn(f"the master at 127.0.0.1:{self.master.port_number}", message)
        self.assertIn("refused the admin login: wrong admin secret?", message)
        self.flushLoggedErrors(UnauthorizedLogin)

    @inlineCallbacks
    def test_cluster_secret_cannot_log_in_as_admin(self) -> Any:
        """The servers' cluster secret does not log in as ``admin``: only adminSecret does."""
        with self.assertRaises(LoginRefused):
            yield self.connect(CLUSTER_SECRET)

    @inlineCallbacks
    def test_servers_log_in_only_under_known_ids(self) -> Any:
        """The cluster secret logs in a server id servers.json declares, not another id
        (the refusal is an UnauthorizedLogin and logs no traceback)."""
        endpoint = clientFromString(reactor, self.master.endpoint)
        known = OneShotLogin(endpoint, "chat-server-1", CLUSTER_SECRET.encode(), clock=reactor)
        known_mind = OneShotLogin(
            endpoint, "chat-server-1", CLUSTER_SECRET.encode(), clock=reactor, mind=pb.Root()
        )
        stranger = OneShotLogin(
            endpoint, "../stranger", CLUSTER_SECRET.encode(), clock=reactor, mind=pb.Root()
        )
        yield known_mind.login(5.0)
        assert known_mind.broker is not None
        self.addCleanup(known_mind.broker.close)
        refused = yield stranger.login(5.0).addCallbacks(lambda _: [], lambda f: [f])
        self.assertIsNotNone(refused[0].check(UnauthorizedLogin), refused)
        refused = yield known.login(5.0).addCallbacks(lambda _: [], lambda f: [f])
        self.assertTrue(refused, "a server id logs in only with its monitor as mind")
        self.assertEqual(self.flushLoggedErrors(), [])

    @inlineCallbacks
    def test_nothing_listening(self) -> Any:
        """With nothing on the port, the error says the master cannot be reached and why."""
        port = closed_port(self)
        with self.assertRaises(MasterUnreachable) as caught:
            yield connect_admin(reactor, f"tcp:host=127.0.0.1:port={port}", SECRET.encode())
        message = str(caught.exception)
        self.assertIn(f"cannot reach the master at 127.0.0.1:{port} (", message)
        self.assertIn("Connection refused", message)
        self.assertIn("is the cluster running? start it with: pomelo-twisted start", message)

    @inlineCallbacks
    def test_stop_unknown_server(self) -> Any:
        """stop of an unknown id is refused by name; the connection stays usable."""
        client = yield self.connect()
        with self.assertRaises(AdminError) as caught:
            yield client.stop(["nope-1", "chat-server-1"])
        self.assertEqual(str(caught.exception), "no server nope-1 in the cluster")
        rows = yield client.list()
        self.assertEqual(len(rows), 3)

    @inlineCallbacks
    def test_restart_unknown_server(self) -> Any:
        """restart of a server the master did not start is refused by name."""
        client = yield self.connect()
        with self.assertRaises(AdminError) as caught:
            yield client.restart("nope-1")
        self.assertIn("'nope-1' was not started by this master", str(caught.exception))

    @inlineCallbacks
    def test_add_without_id(self) -> Any:
        """add of an entry without an id is refused with the config error's message."""
        client = yield self.connect()
        with self.assertRaises(AdminError) as caught:
            yield client.add({"type": "chat", "port": 4252})
        self.assertIn("has no string 'id'", str(caught.exception))

    @inlineCallbacks
    def test_close_twice(self) -> Any:
        """close fires once the connection is closed, and again at once afterwards."""
        client = yield self.connect()
        yield client.close()
        self.assertTrue(client.broker.lost)
        yield client.close()
        with self.assertRaises(AdminError):
            yield client.list()


class RealMasterCommandTests(TestCase):
    """The CLI's commands against a MasterService on loopback (config/master.json names it)."""

    timeout = 60

    def setUp(self) -> None:
        self.folder = game_dir(self)
        self.master = RunningMaster(self.folder)
        self.master.start()
        self.addCleanup(self.master.stop)
        write_master(self.folder, self.master.port_number)
        self.out = io.StringIO()
        self.err = io.StringIO()

    def run_command(self, command: str, **options: Any) -> Deferred[int]:
        """Run one command through ``execute`` on the real reactor."""
        args = Namespace(command=command, app=str(self.folder), env="development", **options)
        return execute(reactor, args, self.out, self.err)

    @inlineCallbacks
    def test_list_prints_the_table(self) -> Any:
        """list prints the master and both servers in a table and exits 0."""
        code = yield self.run_command("list")
        self.assertEqual((code, self.err.getvalue()), (0, ""))
        lines = self.out.getvalue().splitlines()
        header = [
            "ID",
            "TYPE",
            "STATE",
            "PID",
            "HOST:PORT",
            "UPTIME",
            "CONNECTIONS",
            "RESTARTS",
            "BREAKERS",
        ]
        self.assertEqual(lines[0].split(), header)
        self.assertTrue(lines[1].startswith("master-server-1"))
        self.assertIn(f"127.0.0.1:{self.master.port_number}", lines[1])
        chat = ["chat-server-1", "chat", "down", "-", "127.0.0.1:4250", "-", "-", "0", "-"]
        self.assertEqual(lines[3].split(), chat)

    @inlineCallbacks
    def test_stop_unknown_id_exits_1(self) -> Any:
        """stop of an unknown id prints the master's refusal and exits 1."""
        code = yield self.run_command("stop", ids=["nope-1"])
        self.assertEqual(code, 1)
        self.assertEqual(
            self.err.getvalue(), "pomelo-twisted: error: no server nope-1 in the cluster\n"
        )

    @inlineCallbacks
    def test_stop_the_cluster_waits_until_gone(self) -> Any:
        """stop without ids asks the master to stop, then waits until its port refuses."""
        self.master.service.stop_process = self.master.service.stopService
        code = yield self.run_command("stop", ids=[])
        self.assertEqual((code, self.err.getvalue()), (0, ""))
        self.assertEqual(
            self.out.getvalue(),
            "stopping the cluster (frontends, then backends, then the master)\nstopped\n",
        )
        self.assertIsNone(self.master.service.port)
