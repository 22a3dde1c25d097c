"""End to end: the client against a small echo server, in memory (iosim) and on loopback."""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.client import ConnectionClosed, PomeloClient, PomeloClientProtocol, connect

from .helpers import DICTIONARY, EchoLogic, EchoServerFactory, EchoServerProtocol


class InMemoryTests(SynchronousTestCase):
    """Client and echo server joined by twisted.test.iosim on a task.Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.server_lost: Deferred[None] = Deferred()

        def make_server() -> EchoServerProtocol:
            server = EchoServerProtocol(self.server_lost)
            server.heartbeat = 2.0
            return server

        self.client_proto, self.server, self.pump = iosim.connectedServerAndClient(
            make_server,
            lambda: PomeloClientProtocol(PomeloClient(self.clock, user={"n": 1})),
            clock=self.clock,
        )
        self.client = self.successResultOf(self.client_proto.client.ready)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.pump.flush()

    def test_session(self) -> None:
        """Handshake data, request, push and heartbeats work end to end over iosim."""
        self.assertEqual(self.client.handshake_user, {"hello": {"n": 1}, "type": "python-twisted"})
        self.assertEqual(dict(self.client.dictionary), DICTIONARY.route_to_code())
        pushes: list[Any] = []
        self.client.on("onEcho", pushes.append)
        d = self.client.request("echo.push", {"a": 1})
        self.pump.flush()
        self.assertEqual((pushes, self.successResultOf(d)), ([{"a": 1}], {"a": 1}))
        for _ in range(10):  # the server answers every heartbeat: the session stays up
            self.advance(2.0)
        self.assertTrue(self.client.connected)
        closed = self.client.close()
        self.pump.flush()
        self.assertEqual(self.successResultOf(closed), "closed by client")
        self.successResultOf(self.server_lost)

    def test_server_goes_silent(self) -> None:
        """A server that stops answering is detected 2×H after the next client heartbeat."""
        self.server.handle_event = lambda event: None  # type: ignore[method-assign]
        closed = self.client.closed
        self.advance(2.0)  # client heartbeat (the server's came right after the ack)
        self.advance(4.0)
        self.assertEqual(self.successResultOf(closed), "heartbeat timeout")


class EchoWebSocketServerProtocol(EchoLogic, WebSocketServerProtocol):  # type: ignore[misc]
    """The echo server over WebSocket: what it writes at once goes in one binary message."""

    lost: Deferred[None]

    def onOpen(self) -> None:
        self.start_echo()

    def onMessage(self, payload: bytes, is_binary: bool) -> None:
        self.handle(payload)

    def send_bytes(self, data: bytes) -> None:
        self.sendMessage(data, isBinary=True)

    def hang_up(self) -> None:
        self.sendClose()

    def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.lost.callback(None)


class EchoWebSocketServerFactory(WebSocketServerFactory):
    """Makes echo WebSocket protocols and remembers when each connection went."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: list[Deferred[None]] = []

    def buildProtocol(self, addr: object) -> EchoWebSocketServerProtocol:
        proto = EchoWebSocketServerProtocol()
        proto.factory = self
        proto.lost = Deferred()
        self.lost.append(proto.lost)
        return proto


class LoopbackTests(TestCase):
    """The client over real loopback sockets, TCP and WebSocket."""

    @inlineCallbacks
    def listen(self, factory: EchoServerFactory | EchoWebSocketServerFactory) -> Any:
        port: IListeningPort = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
            factory
        )
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: defer.gatherResults(factory.lost))
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        return address.port

    @inlineCallbacks
    def exercise(self, target: str) -> Any:
        client: PomeloClient = yield connect(reactor, target, user={"name": "loop"}, timeout=5)
        self.addCleanup(client.close)
        self.assertEqual(
            client.handshake_user, {"hello": {"name": "loop"}, "type": "python-twisted"}
        )
        reply = yield client.request("connector.entryHandler.entry", {"x": 1})
        self.assertEqual(reply, {"route": "connector.entryHandler.entry", "body": {"x": 1}})
        pushes: list[Any] = []
        client.on("onEcho", pushes.append)
        reply = yield client.request("echo.push", [1, "two"])
        self.assertEqual((pushes, reply), ([[1, "two"]], [1, "two"]))
        notified: Deferred[Any] = Deferred()
        client.on("onNotify", notified.callback)
        client.notify("echo.notify", {"n": 3})
        self.assertEqual((yield notified), {"n": 3})
        reason = yield client.close()
        self.assertEqual(reason, "closed by client")

    @inlineCallbacks
    def test_tcp(self) -> Any:
        """Over TCP: handshake user data, request, push, notify and close."""
        port = yield self.listen(EchoServerFactory())
        yield self.exercise(f"tcp:127.0.0.1:{port}")

    @inlineCallbacks
    def test_websocket(self) -> Any:
        """Over ws://: the same session, with a push and a response in one message."""
        port = yield self.listen(EchoWebSocketServerFactory())
        yield self.exercise(f"ws://127.0.0.1:{port}/any/path")

    @inlineCallbacks
    def test_tcp_kick(self) -> Any:
        """A kick over TCP calls on_kick, fails the request in flight and closes."""
        port = yield self.listen(EchoServerFactory())
        client: PomeloClient = yield connect(reactor, f"tcp:127.0.0.1:{port}", timeout=5)
        kicks: list[str] = []
        client.on_kick(kicks.append)
        closed = client.closed
        with self.assertRaises(ConnectionClosed):
            yield client.request("echo.kick", {})
        self.assertEqual(kicks, ["bye"])
        self.assertEqual((yield closed), "kicked: bye")

    @inlineCallbacks
    def test_await(self) -> Any:
        """The client is usable from async def code."""
        port = yield self.listen(EchoWebSocketServerFactory())

        async def session() -> Any:
            client = await connect(None, f"ws://127.0.0.1:{port}/", timeout=5)
            try:
                return await client.request("a.b.c", "hi")
            finally:
                await client.close()

        reply = yield defer.Deferred.fromCoroutine(session())
        self.assertEqual(reply, {"route": "a.b.c", "body": "hi"})
