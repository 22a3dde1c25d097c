"""The RPC port before login: a deadline, a size cap, forged input refused in one line."""

from __future__ import annotations

import random
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.spread import pb
from twisted.trial.unittest import TestCase

from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import RemoteDispatcher, pack_plain
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.rpc.pbauth import login
from pomelo_twisted.rpc.pbguard import GuardedServerFactory, PortLimits

from .helpers import ChatRemote
from .test_pb import CHAT, SECRET, PbCase

#: Classes a forged message names; instantiating one would record it.
BUILT: list[str] = []


class Trap:
    """A class a forged jelly ``instance`` names: it records any instantiation."""

    def __init__(self) -> None:
        BUILT.append("init")

    def __setstate__(self, state: Any) -> None:
        BUILT.append("setstate")


TRAP = f"{__name__}.Trap".encode()


class GuardCase(PbCase):
    """chat-1's guarded RPC port, raw PB connections to it, and a well-behaved peer."""

    def setUp(self) -> None:
        super().setUp()
        BUILT.clear()
        self.port = self.chat.port_factory
        assert isinstance(self.port, GuardedServerFactory)

    def raw(self) -> pb.Broker:
        """A PB client connected to chat-1's RPC port (dialect agreed), not logged in."""
        brokers: list[pb.Broker] = []
        factory = pb.PBClientFactory()
        factory.clientConnectionMade = brokers.append
        self.network.connect(CHAT.rpc_client_endpoint, factory)
        self.flush()
        return brokers[0]

    def assert_still_serving(self) -> None:
        """A well-behaved peer logs in and calls chat-1 as usual."""
        self.join()
        self.assertEqual(self.connector.peer_state("chat-1"), "up")
        self.assertEqual(self.successResultOf(self.call("echo", "hi")), ["hi"])

    def assert_one_line(self, events: list[dict[str, Any]]) -> None:
        """At most one line was logged, and no traceback."""
        self.assertLessEqual(len(events), 1, [e.get("log_format") for e in events])
        self.assertFalse([e for e in events if "log_failure" in e])


class BeforeLoginTests(GuardCase):
    """What a connection that has not logged in can do: nothing."""

    def test_nothing_but_login_can_be_called(self) -> None:
        """Calls on the root object other than login, or on another object id, fail."""
        broker = self.raw()
        root = broker.remoteForName("root")
        refused = [
            root.callRemote("call", pack_plain(["x"])),
            broker.remoteForName("chat-1").callRemote("record", "x"),
        ]
        self.flush()
        for d in refused:
            self.failureResultOf(d)
        self.assertEqual(self.remote.received, [])
        self.flushLoggedErrors()

    def test_wrong_password_is_unauthorized_login_without_a_traceback(self) -> None:
        """A wrong secret gets UnauthorizedLogin; the server logs no traceback for it."""
        broker = self.raw()
        with capturedLogs() as events:
            d = login(broker, "connector-1", b"guess")
            self.flush()
        self.failureResultOf(d, UnauthorizedLogin)
        self.assertFalse([e for e in events if "log_failure" in e])

    def test_admin_may_not_log_in_on_an_rpc_port(self) -> None:
        """The cluster secret logs a server in, but not the name ``admin``."""
        d = login(self.raw(), "admin", SECRET)
        self.flush()
        self.failureResultOf(d, UnauthorizedLogin)

    def test_login_deadline(self) -> None:
        """A connection not logged in 10 s after it was accepted is dropped and counted;
        a logged-in one stays."""
        broker = self.raw()
        self.join()
        self.clock.advance(9.9)
        self.flush()
        self.assertFalse(broker.disconnected)
        with capturedLogs() as events:
            self.clock.advance(0.2)
            self.flush()
        self.assertTrue(broker.disconnected)
        self.assertEqual(self.port.counters.overdue, 1)
        self.assertEqual(self.connector.peer_state("chat-1"), "up")
        self.assert_one_line(events)

    def test_deadline_is_configurable(self) -> None:
        """PortLimits sets the deadline and the cap; nonsense values are refused."""
        self.assertRaises(ValueError, PortLimits, login_deadline=0)
        self.assertRaises(ValueError, PortLimits, pre_login_bytes=10)
        self.assertEqual(PortLimits().login_deadline, 10.0)
        self.assertEqual(PortLimits().pre_login_bytes, 64 * 1024)


class ForgedInputTests(GuardCase):
    """Forged Banana and jelly: nothing instantiated, one line, the port keeps serving."""

    def forged(self, message: list[Any]) -> pb.Broker:
        broker = self.raw()
        with capturedLogs() as events:
            broker.sendEncoded(message)
            self.flush()
        self.assertTrue(broker.disconnected)
        self.assertEqual(BUILT, [])
        self.assert_one_line(events)
        self.assertEqual(self.port.counters.refused, 1)
        self.assert_still_serving()
        return broker

    def message(self, *args: Any) -> list[Any]:
        """A PB ``message`` to the root object's ``login`` with jellied ``args``."""
        return [b"message", 1, b"root", b"login", 1, [b"tuple", *args], [b"dictionary"]]

    def test_class_atom(self) -> None:
        """A ``class`` atom in the arguments."""
        self.forged(self.message([b"class", TRAP]))

    def test_module_atom(self) -> None:
        """A ``module`` atom in the arguments."""
        self.forged(self.message([b"module", b"os"]))

    def test_unregistered_instance(self) -> None:
        """An ``instance`` of a class jelly does not allow."""
        self.forged(self.message([b"instance", TRAP, [b"dictionary"]]))

    def test_deep_list(self) -> None:
        """A list nested 100,000 deep (sent raw): refused at the depth bound."""
        broker = self.raw()
        with capturedLogs() as events:
            broker.transport.write(b"\x01\x80" * 100_000)
            self.flush()
        self.assertTrue(broker.disconnected)
        self.assert_one_line(events)
        self.assert_still_serving()

    def test_deep_list_within_the_size_cap(self) -> None:
        """A list nested 1,000 deep (2 KB): refused by the depth bound itself."""
        broker = self.raw()
        broker.transport.write(b"\x01\x80" * 1000)
        self.flush()
        self.assertTrue(broker.disconnected)
        self.assertEqual(self.port.counters.refused, 1)
        self.assertEqual(self.port.counters.oversized, 0)
        self.flushLoggedErrors()

    def test_random_bytes(self) -> None:
        """Random bytes on the port: dropped, one line at most, the port serves on."""
        rng = random.Random(12)
        for _ in range(5):
            with capturedLogs() as events:
                connection = self.network.connect(CHAT.rpc_client_endpoint, pb.PBClientFactory())
                self.flush()
                protocol = self.successResultOf(connection)
                protocol.transport.write(rng.randbytes(4096))
                self.flush()
            self.assertTrue(protocol.disconnected)
            self.assertLessEqual(len(events), 1)
        self.assertEqual(self.port.counters.logins, 0)
        self.assert_still_serving()

    def test_unfinished_string_refused_at_the_cap(self) -> None:
        """An unfinished 600 KiB string before login is refused once 64 KiB arrived."""
        broker = self.raw()
        size = 600 * 1024
        prefix = bytearray()
        n = size
        while n:
            prefix.append(n & 0x7F)
            n >>= 7
        broker.transport.write(bytes(prefix) + b"\x82")
        sent = 0
        while not broker.disconnected and sent < size - 1:
            broker.transport.write(b"x" * 16384)
            sent += 16384
            self.flush()
        self.assertTrue(broker.disconnected)
        self.assertLessEqual(sent, 64 * 1024 + 16384)
        self.assertEqual(self.port.counters.oversized, 1)
        self.assert_still_serving()

    def test_large_messages_after_login(self) -> None:
        """Once logged in, a message bigger than the before-login cap goes through."""
        self.join()
        d = self.call("echo", "y" * 200_000)
        self.assertEqual(self.successResultOf(d), ["y" * 200_000])


class RealSocketTests(TestCase):
    """Garbage and an oversized unfinished string on a real RPC port (loopback), while a
    well-behaved peer keeps calling."""

    timeout = 30

    @inlineCallbacks
    def test_garbage_costs_nothing_and_the_port_serves_on(self) -> Any:
        """Random bytes and an unfinished 600 KiB string are dropped at once; another
        server logs in and its calls are answered throughout."""
        remote = ChatRemote("chat-1")
        dispatcher = RemoteDispatcher()
        dispatcher.add("chatRemote", remote)
        chat = PbRpcTransport(global_reactor, "chat-1", SECRET)
        chat.register("chat-1", dispatcher)
        port = yield chat.listen("tcp:0:interface=127.0.0.1")
        self.addCleanup(chat.stop)
        address = port.getHost()
        info = ServerInfo(id="chat-1", type="chat", host="127.0.0.1", port=address.port)
        connector = PbRpcTransport(global_reactor, "connector-1", SECRET)
        self.addCleanup(connector.stop)
        connector.add_peer(info)
        missing = yield connector.when_peers_up(10.0)
        self.assertEqual(missing, [])
        endpoint = TCP4ClientEndpoint(global_reactor, "127.0.0.1", address.port)
        rng = random.Random(5)
        for payload in (rng.randbytes(65536), b"\x40\x4f\x24\x82" + b"x" * 599_999):
            protocol = yield connectProtocol(endpoint, Collect())
            assert protocol.transport is not None
            protocol.transport.write(payload)
            answer = yield connector.call("chat-1", "chatRemote", "echo", ["hi"], 5.0)
            self.assertEqual(answer, ["hi"])
            yield protocol.lost
        factory = chat.port_factory
        assert factory is not None
        self.assertEqual(factory.counters.logins, 1)
        self.assertEqual(factory.counters.refused + factory.counters.oversized, 2)
        self.flushLoggedErrors()


class Collect(Protocol):
    """A raw client: ``lost`` fires when the server drops it."""

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)
