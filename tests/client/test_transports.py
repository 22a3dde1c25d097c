"""The transports (stream and WebSocket), target parsing and connect() on a fake reactor."""

from __future__ import annotations

from typing import Any

from twisted.internet import error
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IProtocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client import (
    ConnectionClosed,
    ConnectTimeout,
    HandshakeRejected,
    HandshakeTimeout,
    PomeloClient,
    PomeloClientFactory,
    PomeloWebSocketClientFactory,
    PomeloWebSocketClientProtocol,
    connect,
    endpoint_for,
)
from pomelo_twisted.protocol import (
    ClientHandshake,
    Event,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Notify,
    Push,
    Request,
    Response,
    ServerConnection,
)
from pomelo_twisted.protocol.packet import PackageDecoder
from pomelo_twisted.serializers import JsonSerializer

from .helpers import FakeServer


class WebSocketAdapterTests(SynchronousTestCase):
    """PomeloWebSocketClientProtocol with autobahn's sending side faked."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.client = PomeloClient(self.reactor)
        self.proto = PomeloWebSocketClientProtocol()
        self.proto.client = self.client
        self.sent: list[tuple[bytes, bool]] = []
        self.proto.sendMessage = self.record  # type: ignore[method-assign, assignment]
        self.server = ServerConnection()

    def record(self, payload: bytes, isBinary: bool = False, **kwargs: Any) -> None:
        self.sent.append((payload, isBinary))

    def server_receive(self) -> list[Event]:
        """Check every sent message is one binary package; feed them to the server."""
        events: list[Event] = []
        for payload, is_binary in self.sent:
            self.assertTrue(is_binary)
            decoder = PackageDecoder()
            self.assertEqual(len(decoder.feed(payload)), 1)
            self.assertEqual(decoder.buffered, 0)
            events.extend(self.server.receive_data(payload))
        self.sent.clear()
        return events

    def open(self) -> None:
        self.client.connection_made(self.proto)
        [handshake] = self.server_receive()
        self.assertIsInstance(handshake, ClientHandshake)
        self.proto.onMessage(self.server.send(HandshakeResponse(heartbeat=3)), True)
        self.assertEqual(self.server_receive(), [HandshakeAck()])
        self.successResultOf(self.client.ready)

    def test_one_binary_message_per_package(self) -> None:
        """Handshake, ack, requests, notifies and heartbeats each go out as one binary message."""
        self.open()
        self.client.request("a.b.c", {})
        self.client.notify("a.b.d", {})
        self.proto.onMessage(self.server.send(Heartbeat()), True)
        self.reactor.advance(3)
        self.assertEqual(len(self.sent), 3)
        self.assertEqual(
            self.server_receive(), [Request(1, "a.b.c", b"{}"), Notify("a.b.d", b"{}"), Heartbeat()]
        )

    def test_several_packages_in_one_message(self) -> None:
        """One received message holding a push, two responses and a heartbeat is all handled."""
        self.open()
        pushes: list[Any] = []
        self.client.on("onMove", pushes.append)
        d1 = self.client.request("a.b.c", {})
        d2 = self.client.request("a.b.c", {})
        self.server_receive()
        message = b"".join(
            self.server.send(e)
            for e in (Push("onMove", b"[1]"), Response(2, b'"two"'), Response(1, b'"one"'))
        )
        self.proto.onMessage(message + self.server.send(Heartbeat()), True)
        self.assertEqual(pushes, [[1]])
        self.assertEqual((self.successResultOf(d1), self.successResultOf(d2)), ("one", "two"))
        self.reactor.advance(3)
        self.assertEqual(self.server_receive(), [Heartbeat()])

    def test_text_frames(self) -> None:
        """Packages arriving in a text message are read like binary ones."""
        self.open()
        d = self.client.request("a.b.c", {})
        self.proto.onMessage(self.server.send(Response(1, b'{"ok":1}')), False)
        self.assertEqual(self.successResultOf(d), {"ok": 1})

    def test_on_close(self) -> None:
        """onClose ends the session with the close code or the unclean reason."""
        self.open()
        closed = self.client.closed
        self.proto.onClose(True, 1000, None)
        self.assertEqual(self.successResultOf(closed), "websocket closed (code 1000)")
        other = PomeloClient(self.reactor)
        proto = PomeloWebSocketClientProtocol()
        proto.client = other
        proto.onClose(False, 1006, "peer dropped")
        self.assertEqual(self.successResultOf(other.closed), "websocket lost: peer dropped")
        self.failureResultOf(other.ready, ConnectionClosed)

    def test_lose_connection_when_open(self) -> None:
        """Closing an open WebSocket starts the closing handshake with code 1000."""
        self.open()
        calls: list[Any] = []
        self.proto.sendClose = lambda code=None, reason=None: calls.append(code)  # type: ignore[method-assign]
        self.proto.state = PomeloWebSocketClientProtocol.STATE_OPEN
        self.client.close()
        self.assertEqual(calls, [1000])

    def test_lose_connection_before_upgrade(self) -> None:
        """Closing before the upgrade completes drops the TCP connection."""
        calls: list[bool] = []
        self.proto.dropConnection = lambda abort=False: calls.append(abort)  # type: ignore[method-assign]
        self.proto.state = PomeloWebSocketClientProtocol.STATE_CONNECTING
        self.client.attach(self.proto)
        self.client.close()
        self.assertEqual(calls, [True])
        self.failureResultOf(self.client.ready, ConnectionClosed)

    def test_factory(self) -> None:
        """The factory gives each protocol a new client and disables autobahn's open timeout."""
        clients: list[PomeloClient] = []

        def make() -> PomeloClient:
            clients.append(PomeloClient(self.reactor))
            return clients[-1]

        factory = PomeloWebSocketClientFactory("ws://127.0.0.1:3010/x", make, self.reactor)
        proto = factory.buildProtocol(None)
        self.assertIs(proto.client, clients[0])
        self.assertIs(proto.factory, factory)
        self.assertEqual(factory.openHandshakeTimeout, 0)


class StreamTransportTests(SynchronousTestCase):
    """PomeloClientProtocol over a StringTransport."""

    def test_byte_at_a_time(self) -> None:
        """Packages split into single bytes are reassembled."""
        fake = FakeServer(self)
        fake.connect()
        fake.receive()
        for byte in fake.server.send(HandshakeResponse(heartbeat=3)):
            fake.protocol.dataReceived(bytes([byte]))
        client = self.successResultOf(fake.client.ready)
        fake.receive()
        d = client.request("a.b.c", {})
        for byte in fake.server.send(Response(1, b'{"x":[1,2,3]}')):
            fake.protocol.dataReceived(bytes([byte]))
        self.assertEqual(self.successResultOf(d), {"x": [1, 2, 3]})

    def test_factory_builds_new_client_each_time(self) -> None:
        """The stream factory wraps a fresh client in each protocol."""
        reactor = MemoryReactorClock()
        factory = PomeloClientFactory(lambda: PomeloClient(reactor))
        first, second = factory.buildProtocol(None), factory.buildProtocol(None)
        self.assertIsNot(first.client, second.client)
        self.assertIs(first.factory, factory)


class EndpointForTests(SynchronousTestCase):
    """Target strings map to endpoints and factories."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def make(self) -> PomeloClient:
        return PomeloClient(self.reactor)

    def test_tcp_string(self) -> None:
        """A Twisted endpoint string gives that endpoint and the stream factory."""
        endpoint, factory = endpoint_for(self.reactor, "tcp:127.0.0.1:3010", self.make)
        self.assertIsInstance(endpoint, TCP4ClientEndpoint)
        self.assertIsInstance(factory, PomeloClientFactory)

    def test_tcp_with_tls_options(self) -> None:
        """tls_options wrap an endpoint string in TLS."""
        options = optionsForClientTLS("example.com")
        endpoint, _ = endpoint_for(self.reactor, "tcp:example.com:3010", self.make, options)
        self.assertNotIsInstance(endpoint, TCP4ClientEndpoint)

    def test_ws_url(self) -> None:
        """ws:// gives a HostnameEndpoint and a WebSocket factory for the URL."""
        endpoint, factory = endpoint_for(self.reactor, "ws://127.0.0.1:3010/any/path", self.make)
        self.assertIsInstance(endpoint, HostnameEndpoint)
        assert isinstance(factory, PomeloWebSocketClientFactory)
        self.assertEqual(
            (factory.host, factory.port, factory.resource), ("127.0.0.1", 3010, "/any/path")
        )
        self.assertFalse(factory.isSecure)

    def test_wss_url(self) -> None:
        """wss:// defaults to port 443 and wraps the endpoint in TLS."""
        endpoint, factory = endpoint_for(self.reactor, "wss://example.com/", self.make)
        self.assertNotIsInstance(endpoint, HostnameEndpoint)
        assert isinstance(factory, PomeloWebSocketClientFactory)
        self.assertEqual((factory.port, factory.isSecure), (443, True))

    def test_bad_ws_url(self) -> None:
        """A WebSocket URL without a host is refused."""
        self.assertRaises(ValueError, endpoint_for, self.reactor, "ws:///path", self.make)


class ConnectTests(SynchronousTestCase):
    """connect() on a MemoryReactorClock: timeouts, handshake, failures."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.json = JsonSerializer()

    def accept(self) -> tuple[IProtocol, StringTransport, ServerConnection]:
        """Complete the pending TCP connection over a StringTransport."""
        factory = self.reactor.tcpClients[0][2]
        proto = factory.buildProtocol(None)
        assert proto is not None
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport, ServerConnection()

    def test_connect_timeout(self) -> None:
        """A TCP connection not made within timeout errbacks ConnectTimeout naming the target."""
        d = connect(self.reactor, "tcp:10.0.0.1:3010", timeout=5)
        self.reactor.advance(5 - 2**-10)
        self.assertNoResult(d)
        self.reactor.advance(2**-10)
        error = self.failureResultOf(d, ConnectTimeout).value
        self.assertIn("tcp:10.0.0.1:3010", str(error))
        self.assertIn("5 s", str(error))

    def test_ws_connect_timeout(self) -> None:
        """The connect timeout applies to ws:// targets too."""
        d = connect(self.reactor, "ws://127.0.0.1:3010/", timeout=2)
        self.reactor.advance(2)
        self.failureResultOf(d, ConnectTimeout)

    def test_connection_refused(self) -> None:
        """A refused connection errbacks with Twisted's ConnectionRefusedError."""
        d = connect(self.reactor, "tcp:127.0.0.1:3010")
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(
            self.reactor.connectors[0], Failure(ConnectionRefusedError())
        )
        self.failureResultOf(d, ConnectionRefusedError)

    def test_endpoint_timeout(self) -> None:
        """The endpoint's own connect timeout firing first also gives ConnectTimeout."""
        d = connect(self.reactor, "tcp:10.0.0.1:3010:timeout=2", timeout=5)
        factory = self.reactor.tcpClients[0][2]
        factory.clientConnectionFailed(self.reactor.connectors[0], Failure(error.TimeoutError()))
        self.assertIn("tcp:10.0.0.1:3010", str(self.failureResultOf(d, ConnectTimeout).value))

    def test_connect_and_handshake(self) -> None:
        """connect() fires with the client after handshake + ack, sending the user data."""
        d = connect(self.reactor, "tcp:127.0.0.1:3010", user={"name": "bot"})
        proto, transport, server = self.accept()
        [handshake] = server.receive_data(transport.value())
        transport.clear()
        assert isinstance(handshake, ClientHandshake)
        self.assertEqual(
            (handshake.user, handshake.sys["type"]), ({"name": "bot"}, "python-twisted")
        )
        self.assertNoResult(d)
        proto.dataReceived(server.send(HandshakeResponse(user={"ok": True})))
        client = self.successResultOf(d)
        self.assertEqual(client.handshake_user, {"ok": True})
        self.assertEqual(server.receive_data(transport.value()), [HandshakeAck()])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_handshake_timeout(self) -> None:
        """A connection whose server never answers the handshake errbacks HandshakeTimeout."""
        d = connect(self.reactor, "tcp:127.0.0.1:3010", timeout=4)
        _, transport, _ = self.accept()
        self.reactor.advance(4)
        self.failureResultOf(d, HandshakeTimeout)
        self.assertTrue(transport.disconnecting)

    def test_rejected(self) -> None:
        """A handshake answered with code 500 errbacks HandshakeRejected."""
        d = connect(self.reactor, "tcp:127.0.0.1:3010")
        proto, transport, server = self.accept()
        server.receive_data(transport.value())
        proto.dataReceived(server.send(HandshakeResponse(code=500)))
        self.assertEqual(self.failureResultOf(d, HandshakeRejected).value.code, 500)

    def test_cancel_during_handshake(self) -> None:
        """Cancelling connect() during the handshake closes the connection."""
        d = connect(self.reactor, "tcp:127.0.0.1:3010")
        _, transport, _ = self.accept()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
