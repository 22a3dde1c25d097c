"""Malformed message bodies through the real agent (issue 12, item 3), in memory on a Clock,
and the class once on real loopback sockets.

Each test opens two clients on one :class:`MemoryServer` serving :class:`EchoHandler`: the
*bad* one sends raw bytes no Pomelo client would (through its transport, past the client's
encoder), the *good* one must keep getting answers afterwards. Every answer the server
writes to the bad client is recorded by a :class:`Tap`; log events are collected to check
that bad input costs no log line above ``info`` (one line naming the culprit for a close).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import clientFromString, connectProtocol, serverFromString
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.acceptors import AgentPool, TCPFactory
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.client import connect
from pomelo_twisted.errors import SerializationError
from pomelo_twisted.interfaces import IAgent, ISerializer
from pomelo_twisted.protocol import (
    MessageType,
    Package,
    PackageDecoder,
    PackageType,
    decode_message,
    encode_message,
    encode_package,
)
from pomelo_twisted.serializers import JsonSerializer, MsgpackSerializer
from pomelo_twisted.testing import EchoHandler, MemoryConnection, MemoryServer, echo_dictionary

ECHO = "connector.entryHandler.echo"
DEEP = 100_000
LOUD = (LogLevel.warn, LogLevel.error, LogLevel.critical)


def _json_depth_capped_at_decode() -> bool:
    """Whether the JSON serializer refuses, at decode, a body nested deeper than it encodes."""
    try:
        JsonSerializer().decode(b"[" * 300 + b"]" * 300)
    except SerializationError:
        return True
    return False


class Tap:
    """Records the packages a server writes to one in-memory client (the client still gets them)."""

    def __init__(self, conn: MemoryConnection) -> None:
        self.packages: list[Package] = []
        self._decoder = PackageDecoder(1 << 20)
        protocol = conn.pump.client
        received = protocol.dataReceived

        def tapped(data: bytes) -> None:
            self.packages += self._decoder.feed(data)
            received(data)

        protocol.dataReceived = tapped

    def responses(self, serializer: ISerializer | None = None) -> dict[int, Any]:
        """The body of every response seen (JSON unless told), by request id; clears the record."""
        decode = serializer.decode if serializer is not None else json.loads
        found = {}
        for package in self.packages:
            if package.type is PackageType.DATA:
                msg = decode_message(package.body)
                if msg.type is MessageType.RESPONSE:
                    found[msg.id] = decode(msg.body)
        self.packages.clear()
        return found


def raw_request(msg_id: int, route: str, body: bytes, route_code: int = 0) -> bytes:
    """One data package holding a request, encoded by hand."""
    message = encode_message(MessageType.REQUEST, msg_id, route, body, route_code=route_code)
    return encode_package(PackageType.DATA, message)


class MalformedBodyTests(SynchronousTestCase):
    """Every malformed body is answered or refused with a reason; nobody else notices."""

    def setUp(self) -> None:
        self.logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def serve(
        self, serializer: ISerializer | None = None, max_packet_size: int = 64 * 1024
    ) -> tuple[MemoryServer, MemoryConnection, MemoryConnection, Tap]:
        """A server with a bad and a good client (the bad one tapped); the log reset."""
        clock = self.clock = Clock()
        self.handler = EchoHandler(clock)
        server = MemoryServer(
            self.handler,
            clock=clock,
            config=AgentConfig(max_packet_size=max_packet_size),
            dictionary=echo_dictionary(),
            serializer=serializer,
        )
        bad, good = server.connect(), server.connect()
        self.logged.clear()
        return server, bad, good, Tap(bad)

    def send(self, conn: MemoryConnection, data: bytes) -> None:
        """Write raw bytes from ``conn``'s client to the server and deliver everything (the
        server handles a large read in slices, one per reactor turn: turn the clock)."""
        conn.pump.clientIO.write(data)
        self.turns(conn)

    def turns(self, conn: MemoryConnection | None = None, count: int = 64) -> None:
        """Deliver, then run ``count`` reactor turns of the server's clock."""
        for _ in range(count):
            if conn is not None:
                conn.flush()
            self.clock.advance(0)
        if conn is not None:
            conn.flush()

    def loud(self) -> list[str]:
        """The log lines above ``info`` since the connections opened."""
        return [str(e.get("log_format")) for e in self.logged if e.get("log_level") in LOUD]

    def assert_serves(self, conn: MemoryConnection, n: int = 1) -> None:
        """``conn`` still gets its echo answered."""
        self.assertEqual(conn.call(ECHO, {"n": n}), {"n": n})

    def test_invalid_json_answers_400_and_the_connection_works(self) -> None:
        """A body that is not JSON is answered 400; the same connection and another keep working."""
        _server, bad, good, tap = self.serve()
        self.send(bad, raw_request(9000, ECHO, b"{not json"))
        self.assertEqual(tap.responses(), {9000: {"code": 400, "msg": "body is not valid json"}})
        self.assert_serves(bad)
        self.assert_serves(good, 2)
        self.assertEqual(self.loud(), [])

    def test_deep_json_answers_400_without_recursion_or_log(self) -> None:
        """100,000-deep JSON (closed or not) is answered 400, no RecursionError, no loud log."""
        _server, bad, good, tap = self.serve(max_packet_size=8 * DEEP)
        self.send(bad, raw_request(9001, ECHO, b"[" * DEEP + b"]" * DEEP))
        self.send(bad, raw_request(9002, ECHO, b'{"a":' * DEEP))
        refused = {"code": 400, "msg": "body is not valid json"}
        self.assertEqual(tap.responses(), {9001: refused, 9002: refused})
        self.assert_serves(bad)
        self.assert_serves(good, 2)
        self.assertEqual(self.loud(), [])
        self.assertFalse([e for e in self.logged if "RecursionError" in repr(e)])

    def test_deep_msgpack_answers_400_without_recursion_or_log(self) -> None:
        """100,000-deep msgpack arrays and maps are answered 400 with no loud log."""
        msgpack = MsgpackSerializer()
        _server, bad, good, tap = self.serve(msgpack, max_packet_size=4 * DEEP)
        self.send(bad, raw_request(9003, ECHO, b"\x91" * DEEP + b"\xc0"))
        self.send(bad, raw_request(9004, ECHO, b"\x81\xa1a" * DEEP + b"\xc0"))
        refused = {"code": 400, "msg": "body is not valid msgpack"}
        self.assertEqual(tap.responses(msgpack), {9003: refused, 9004: refused})
        self.assert_serves(bad)
        self.assert_serves(good, 2)
        self.assertEqual(self.loud(), [])

    def test_json_deeper_than_the_encoder_answers_400(self) -> None:
        """A 300-deep body (decodable by orjson, not encodable) is refused at decode: 400."""
        if not _json_depth_capped_at_decode():
            raise self.skipTest(
                "waits for the JSON depth cap at decode (issue 12 item 2, serializers.py, "
                "the 'fair' helper): today it is echoed, fails to encode, answers 500 and "
                "logs at error level"
            )
        _server, bad, good, tap = self.serve()
        self.send(bad, raw_request(9005, ECHO, b"[" * 300 + b"]" * 300))
        self.assertEqual(tap.responses()[9005]["code"], 400)
        self.assert_serves(bad)
        self.assert_serves(good, 2)
        self.assertEqual(self.loud(), [])

    def test_invalid_utf8_route_kicks_with_the_reason(self) -> None:
        """A request whose string route is not UTF-8 is a protocol error: kicked, with why."""
        server, bad, good, _tap = self.serve()
        route = b"\xff\xfe.entryHandler.echo"
        self.send(bad, encode_package(PackageType.DATA, b"\x00\x05" + bytes((len(route),)) + route))
        self.assertEqual(bad.kicks, ["protocol error: route is not valid UTF-8"])
        self.assertTrue(bad.client.closed.called)
        self.assert_serves(good)
        self.assertLessEqual(len(self.loud()), 1)  # at most the one line naming the close
        self.assertEqual(server.metrics.connections_open, 1)

    def test_unknown_route_code_answers_404(self) -> None:
        """An unknown dictionary code answers a request 404 and drops a notify, counted."""
        server, bad, good, tap = self.serve()
        self.send(bad, raw_request(9006, "", b"{}", route_code=999))
        self.assertEqual(tap.responses(), {9006: {"code": 404, "msg": "unknown route code 999"}})
        notify = encode_message(MessageType.NOTIFY, 0, "", b"{}", route_code=999)
        self.send(bad, encode_package(PackageType.DATA, notify))
        self.assertEqual(tap.responses(), {})
        self.assertEqual(server.metrics.dropped["notify with unknown route code"], 1)
        self.assert_serves(bad)
        self.assert_serves(good, 2)
        self.assertEqual(self.loud(), [])

    def test_request_id_zero_is_a_notify(self) -> None:
        """A request with id 0 runs as a notify (as the reference does) and is never answered."""
        server, bad, good, tap = self.serve()
        self.send(bad, raw_request(0, ECHO, b'{"zero":1}'))
        self.assertEqual(tap.responses(), {})
        self.assertEqual(self.handler.notified, [(ECHO, {"zero": 1})])
        self.assertEqual(server.metrics.notifies, 1)
        self.assert_serves(bad)
        self.assert_serves(good, 2)
        self.assertEqual(self.loud(), [])

    def test_request_id_over_31_bits_is_a_protocol_error(self) -> None:
        """Ids 2^31 and 2^32 (5-byte varints) are refused: kicked with the reason."""
        for msg_id, varint in ((2**31, b"\x80\x80\x80\x80\x08"), (2**32, b"\x80\x80\x80\x80\x10")):
            _server, bad, good, _tap = self.serve()
            route = ECHO.encode()
            body = b"\x00" + varint + bytes((len(route),)) + route + b"{}"
            self.send(bad, encode_package(PackageType.DATA, body))
            reason = f"protocol error: message id {msg_id} over the maximum of 2147483647"
            self.assertEqual(bad.kicks, [reason])
            self.assertTrue(bad.client.closed.called)
            self.assertEqual(self.handler.notified, [])
            self.assert_serves(good)
            self.assertLessEqual(len(self.loud()), 1)

    def test_second_handshake_is_ignored_and_counted(self) -> None:
        """A handshake on a working connection is ignored and counted; the connection works."""
        server, bad, good, tap = self.serve()
        handshake = encode_package(PackageType.HANDSHAKE, b'{"sys":{"type":"socket"},"user":{}}')
        self.send(bad, handshake)
        self.send(bad, handshake)
        self.assertEqual(tap.packages, [])
        self.assertEqual(server.metrics.dropped["second handshake"], 2)
        self.assert_serves(bad)
        self.assert_serves(good, 2)
        self.assertEqual(self.loud(), [])

    def test_deep_handshake_answers_500_without_recursion(self) -> None:
        """A 100,000-deep handshake body is answered code 500 and closed, nothing logged loud."""
        server, _bad, good, _tap = self.serve(max_packet_size=4 * DEEP)
        protocol = server.factory.buildProtocol(None)
        transport = StringTransportWithDisconnection()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(encode_package(PackageType.HANDSHAKE, b"[" * DEEP))
        self.turns()
        (reply,) = PackageDecoder().feed(transport.value())
        self.assertEqual(reply.type, PackageType.HANDSHAKE)
        self.assertEqual(json.loads(reply.body)["code"], 500)
        server.clock.advance(1)
        self.assertFalse(transport.connected)
        self.assert_serves(good)
        self.assertEqual(self.loud(), [])
        self.assertFalse([e for e in self.logged if "RecursionError" in repr(e)])

    def test_unencodable_handshake_user_answers_500(self) -> None:
        """User data the echoing hook cannot send back (a lone surrogate): answered 500, closed."""
        server, _bad, good, _tap = self.serve()
        protocol = server.factory.buildProtocol(None)
        transport = StringTransportWithDisconnection()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        body = b'{"sys":{},"user":{"name":"\\ud800"}}'
        protocol.dataReceived(encode_package(PackageType.HANDSHAKE, body))
        (reply,) = PackageDecoder().feed(transport.value())
        self.assertEqual(json.loads(reply.body), {"code": 500, "msg": "handshake hook failed"})
        self.assertFalse(transport.connected)
        self.assert_serves(good)
        # Still logged as a failed hook, with its traceback (log hygiene, item 6).
        self.assertEqual(len(self.flushLoggedErrors(UnicodeEncodeError)), 1)


class _DisconnectsHandler(EchoHandler):
    """The echo handler, firing a Deferred when its ``expected``-th session has closed."""

    def __init__(self, clock: IReactorTime, expected: int) -> None:
        super().__init__(clock)
        self.all_closed: Deferred[None] = Deferred()
        self._expected = expected

    def disconnected(self, agent: IAgent, reason: str) -> None:
        """Record the close; fire ``all_closed`` on the last one."""
        super().disconnected(agent, reason)
        if len(self.closes) == self._expected:
            self.all_closed.callback(None)


class _RawClient(Protocol):
    """Handshakes, acks once the reply is in, then writes ``bad``; records all it reads."""

    def __init__(self, bad: bytes) -> None:
        self.bad = bad
        self.received = b""
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        """Send the handshake."""
        assert self.transport is not None
        self.transport.write(encode_package(PackageType.HANDSHAKE, b'{"sys":{},"user":{}}'))

    def dataReceived(self, data: bytes) -> None:
        """Ack and misbehave after the handshake reply."""
        first = not self.received
        self.received += data
        if first:
            assert self.transport is not None
            self.transport.write(encode_package(PackageType.HANDSHAKE_ACK) + self.bad)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fire ``lost``."""
        self.lost.callback(None)


class MalformedBodyRealSocketTests(TestCase):
    """The malformed-body class on real loopback sockets: one bad client, one good one."""

    timeout = 10

    @inlineCallbacks
    def test_invalid_utf8_route_on_loopback(self) -> Generator[Deferred[Any], Any, None]:
        """A bad route kicks its client with the reason; another client is answered throughout."""
        handler = _DisconnectsHandler(reactor, expected=1)
        agents = AgentPool(handler, reactor, dictionary=echo_dictionary())
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
            TCPFactory(agents)
        )
        self.addCleanup(port.stopListening)
        target = f"tcp:127.0.0.1:{port.getHost().port}"
        good = yield connect(reactor, target, timeout=5)
        self.assertEqual((yield good.request(ECHO, {"n": 1})), {"n": 1})
        route = b"\xff.entryHandler.echo"
        raw = _RawClient(
            encode_package(PackageType.DATA, b"\x00\x05" + bytes((len(route),)) + route + b"{}")
        )
        yield connectProtocol(clientFromString(reactor, target), raw)
        yield raw.lost
        packages = PackageDecoder().feed(raw.received)
        self.assertEqual(packages[-1].type, PackageType.KICK)
        self.assertEqual(
            json.loads(packages[-1].body), {"reason": "protocol error: route is not valid UTF-8"}
        )
        self.assertEqual((yield good.request(ECHO, {"n": 2})), {"n": 2})
        yield good.close()
        yield handler.all_closed
