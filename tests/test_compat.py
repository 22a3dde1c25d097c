"""Contract tests of pomelo_twisted.compat: the private parts of Twisted, Banana/PB and
autobahn we use still exist and behave as compat.py expects.

A failure here means a new version of a dependency renamed or changed one of them:
adapt pomelo_twisted/compat.py (and only it), then raise the bound in setup.cfg.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import autobahn
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.cred.credentials import UsernamePassword
from twisted.internet import reactor as global_reactor
from twisted.internet import tcp
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.spread import banana, pb
from twisted.test.iosim import connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted import compat

TWISTED = f"Twisted {version('twisted')}"
AUTOBAHN = f"autobahn {autobahn.__version__}"


def require(test: SynchronousTestCase, owner: object, name: str, who: str, user: str) -> None:
    """Fail with a message saying what is gone and which compat function relies on it."""
    if not hasattr(owner, name):
        test.fail(
            f"{who}: {getattr(owner, '__name__', type(owner).__name__)}.{name} is gone; "
            f"pomelo_twisted.compat.{user} relies on it: adapt compat.py and the bound "
            "in setup.cfg"
        )


class Collect(Protocol):
    """Fires ``made`` with itself once connected, ``lost`` when the connection ends."""

    def __init__(self) -> None:
        self.made: Deferred[Collect] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.made.callback(self)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost.callback(None)


class TcpTransportTests(TestCase):
    """``tcp_nothing_queued`` on a real TCP connection over the loopback."""

    @inlineCallbacks
    def test_real_tcp_connection(self) -> Any:
        """A Twisted TCP transport has the buffer attributes; they say what is queued."""
        server = Collect()
        port: IListeningPort = yield TCP4ServerEndpoint(
            global_reactor, 0, interface="127.0.0.1"
        ).listen(Factory.forProtocol(lambda: server))
        self.addCleanup(port.stopListening)
        client = Collect()
        yield connectProtocol(
            TCP4ClientEndpoint(global_reactor, "127.0.0.1", port.getHost().port), client
        )
        yield server.made
        transport = server.transport
        self.assertIsInstance(transport, tcp.Connection, f"{TWISTED}: tcp.Connection moved")
        for name in ("_tempDataLen", "dataBuffer", "_writeDisconnected", "TLS"):
            require(self, transport, name, TWISTED, "tcp_nothing_queued")
        self.assertTrue(compat.tcp_nothing_queued(transport), f"{TWISTED}: idle not seen")
        assert transport is not None
        transport.write(b"queued until the reactor turns")
        self.assertFalse(
            compat.tcp_nothing_queued(transport), f"{TWISTED}: a queued write is not seen"
        )
        transport.loseConnection()
        self.assertFalse(compat.tcp_nothing_queued(transport), f"{TWISTED}: closing not seen")
        yield server.lost
        yield client.lost


class ItemRecorder(pb.Broker):
    """A broker recording its ``ping`` messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings: list[tuple[object, ...]] = []

    def ping_received(self, *args: object) -> None:
        self.pings.append(args)


compat.add_broker_verb(ItemRecorder, "ping", ItemRecorder.ping_received)


class BananaAndBrokerTests(SynchronousTestCase):
    """``banana_encode`` and ``add_broker_verb`` on real brokers."""

    def test_encode_as_send_encoded_writes(self) -> None:
        """banana_encode gives the bytes Banana.sendEncoded writes, vocabulary included."""
        require(self, banana.Banana, "_encode", TWISTED, "banana_encode")
        broker = pb.Broker()
        transport = StringTransport()
        broker.makeConnection(transport)
        transport.clear()
        message = [b"batch", b"payload", [b"message", 1]]
        broker.sendEncoded(message)
        self.assertEqual(compat.banana_encode(broker, message), transport.value())

    def test_verb_reaches_its_handler(self) -> None:
        """A message [verb, *args] from the peer reaches the registered handler."""
        require(self, pb.Broker, "expressionReceived", TWISTED, "add_broker_verb")
        client_factory = pb.PBClientFactory()
        client_factory.protocol = ItemRecorder
        server_factory = pb.PBServerFactory(pb.Root())
        server_factory.protocol = ItemRecorder
        client, server, pump = connectedServerAndClient(
            lambda: server_factory.buildProtocol(None),
            lambda: client_factory.buildProtocol(None),
        )
        assert isinstance(client, ItemRecorder) and isinstance(server, ItemRecorder)
        client.sendEncoded([b"ping", b"payload"])
        pump.flush()
        self.assertEqual(
            server.pings,
            [(b"payload",)],
            f"{TWISTED}: Broker no longer dispatches [verb, ...] to proto_<verb>",
        )

    def test_bound_depth_refuses_deep_lists(self) -> None:
        """banana_bound_depth makes Banana.dataReceived refuse lists nested past the bound,
        holding no more than the bound's levels; shallower messages still decode."""
        received: list[object] = []
        codec = banana.Banana(isClient=0)
        require(self, codec, "listStack", TWISTED, "banana_bound_depth")
        codec.expressionReceived = received.append
        codec.makeConnection(StringTransport())
        codec.dataReceived(b"\x04\x82none")  # the dialect
        compat.banana_bound_depth(codec, 5)
        codec.dataReceived(b"\x01\x80" * 5 + b"\x07\x81")  # [[[[[7]]]]]
        self.assertEqual(received, [[[[[[7]]]]]])
        with self.assertRaises(banana.BananaError, msg=f"{TWISTED}: listStack is not used"):
            codec.dataReceived(b"\x01\x80" * 100_000)
        self.assertEqual(len(codec.listStack), 5)

    def test_credentials_broker_is_the_login_connection(self) -> None:
        """pb_credentials_broker gives the broker of a PB portal login from the credentials
        Portal.login receives; None for other credentials."""
        from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
        from twisted.cred.portal import Portal

        seen: list[object] = []

        class Realm:
            def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> Any:
                return pb.IPerspective, pb.Avatar(), lambda: None

        class Recording(Portal):
            def login(self, credentials: Any, mind: Any, *interfaces: Any) -> Any:
                seen.append(compat.pb_credentials_broker(credentials))
                return super().login(credentials, mind, *interfaces)

        checker = InMemoryUsernamePasswordDatabaseDontUse(user=b"pass")
        server_factory = pb.PBServerFactory(Recording(Realm(), [checker]))
        client_factory = pb.PBClientFactory()
        _client, server, pump = connectedServerAndClient(
            lambda: server_factory.buildProtocol(None),
            lambda: client_factory.buildProtocol(None),
        )
        d = client_factory.login(UsernamePassword(b"user", b"pass"))
        pump.flush()
        self.successResultOf(d)
        self.assertEqual(seen, [server], f"{TWISTED}: the PB challenger has no broker")
        self.assertIsNone(compat.pb_credentials_broker(UsernamePassword(b"u", b"p")))


UPGRADE = (
    b"GET / HTTP/1.1\r\n"
    b"Host: localhost\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
# A masked binary frame holding b"hi" (mask 0x01020304).
FRAME = b"\x82\x82\x01\x02\x03\x04" + bytes([ord("h") ^ 1, ord("i") ^ 2])


class TakeOver(WebSocketServerProtocol):
    """Takes autobahn's buffered bytes in its frame step once the socket is open."""

    taken: bytes = b""
    opened = False

    def onOpen(self) -> None:
        self.opened = True

    def processData(self) -> bool:  # noqa: N802 (compat.AUTOBAHN_FRAME_STEP)
        if not self.opened:
            return bool(super().processData())
        self.taken += compat.autobahn_take_buffer(self)
        return False


class AutobahnTests(SynchronousTestCase):
    """``autobahn_feed``, ``autobahn_take_buffer`` and the frame step on a real protocol."""

    def protocol(self) -> tuple[TakeOver, StringTransport]:
        factory = WebSocketServerFactory(reactor=Clock())
        factory.protocol = TakeOver
        # No timers: autobahn (txaio) would arm them on the global reactor.
        factory.setProtocolOptions(autoPingInterval=0, openHandshakeTimeout=0)
        proto = factory.buildProtocol(None)
        assert isinstance(proto, TakeOver)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def test_names_exist(self) -> None:
        """The private receive step, the buffer and the frame step are still there."""
        require(self, WebSocketProtocol, "_dataReceived", AUTOBAHN, "autobahn_feed")
        require(self, WebSocketProtocol, compat.AUTOBAHN_FRAME_STEP, AUTOBAHN, "frame step")
        proto, _ = self.protocol()
        require(self, proto, "data", AUTOBAHN, "autobahn_take_buffer")

    def test_handshake_then_frames_taken_over(self) -> None:
        """Fed the upgrade and a frame in one read, autobahn opens, then hands the frame
        bytes to the overridden frame step through its buffer."""
        proto, transport = self.protocol()
        compat.autobahn_feed(proto, UPGRADE + FRAME)
        self.assertIn(b"101 Switching Protocols", transport.value(), AUTOBAHN)
        self.assertTrue(proto.opened, f"{AUTOBAHN}: onOpen not called after the upgrade")
        self.assertEqual(
            proto.taken,
            FRAME,
            f"{AUTOBAHN}: bytes after the handshake no longer reach processData via .data",
        )
        self.assertEqual(proto.data, b"", f"{AUTOBAHN}: autobahn_take_buffer left bytes")


class EndpointParserTests(SynchronousTestCase):
    """``endpoints._parse`` behind ``compat.endpoint_arguments``."""

    def test_parser_exists(self) -> None:
        """Twisted still has the endpoint-string parser serverFromString uses."""
        from twisted.internet import endpoints

        require(self, endpoints, "_parse", TWISTED, "compat.endpoint_arguments")

    def test_arguments_unescaped(self) -> None:
        """Positional and keyword arguments come back split and unescaped (IPv6 kept)."""
        args, kwargs = compat.endpoint_arguments(r"tcp:3010:interface=\:\:1:backlog=50")
        self.assertEqual(args, ["tcp", "3010"], TWISTED)
        self.assertEqual(kwargs, {"interface": "::1", "backlog": "50"}, TWISTED)


class FileLogObserverTests(SynchronousTestCase):
    """A FileLogObserver's output file is found (twistd's log, for JSON lines)."""

    def test_output_of_a_text_file_observer(self) -> None:
        """textFileLogObserver(f) writes to f; another observer has no file."""
        from io import StringIO

        from twisted.logger import textFileLogObserver

        out = StringIO()
        self.assertIs(compat.file_observer_output(textFileLogObserver(out)), out, TWISTED)
        self.assertIsNone(compat.file_observer_output(lambda event: None))
