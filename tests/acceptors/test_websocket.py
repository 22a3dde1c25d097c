"""The WebSocket acceptor: its own frame path after the opening handshake, and the
limits on that handshake (bytes, header lines, time, no compression)."""

from __future__ import annotations

import os
import zlib
from dataclasses import replace
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.acceptors import AgentPool, PomeloWebSocketProtocol, WebSocketFactory
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.client import PomeloClient, connect
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    Request,
    Response,
)
from pomelo_twisted.protocol.wsframe import OPCODE_PING, OPCODE_PONG, encode_frame
from pomelo_twisted.testing import EchoHandler, echo_dictionary

from ..agent.helpers import HEARTBEAT, make_agents
from .helpers import (
    OP_BINARY,
    OP_CLOSE,
    client_frame,
    open_hybrid,
    server_frames,
    upgrade_request,
)
from .test_hybrid import GlobalReactorCheck

ECHO = "connector.entryHandler.echo"
MASK = b"\x01\x02\x03\x04"
PEER = IPv4Address("TCP", "127.0.0.1", 50124)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


class FramePathTests(GlobalReactorCheck):
    """Frames in and out of a WebSocket connection on a memory transport."""

    def setUp(self) -> None:
        super().setUp()
        self.agents = make_agents(AgentConfig(heartbeat=3, max_packet_size=1000))
        factory = WebSocketFactory(self.agents)
        self.protocol = factory.buildProtocol(PEER)
        assert isinstance(self.protocol, PomeloWebSocketProtocol)
        self.transport = StringTransportWithDisconnection(peerAddress=PEER)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.client = ClientConnection()

    def upgrade(self, then: bytes = b"") -> None:
        """The opening handshake, followed in the same read by ``then``."""
        self.protocol.dataReceived(upgrade_request() + then)
        head, _, rest = self.transport.value().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.transport.clear()
        if rest:
            self.transport.write(rest)

    def received(self) -> list[tuple[int, bytes]]:
        """The frames the server wrote since the last call."""
        frames = server_frames(self.transport.value())
        self.transport.clear()
        return frames

    def connect(self) -> None:
        """Upgrade, then handshake and ack."""
        self.upgrade()
        self.protocol.dataReceived(client_frame(self.client.send(ClientHandshake(sys={}))))
        self.client.receive_data(self.received()[0][1])
        self.protocol.dataReceived(client_frame(self.client.send(HandshakeAck())))
        self.assertEqual(self.received(), [(OP_BINARY, HEARTBEAT)])

    def test_frames_in_the_handshake_read(self) -> None:
        """A Pomelo handshake frame sent right behind the upgrade request is answered."""
        self.upgrade(then=client_frame(self.client.send(ClientHandshake(sys={}))))
        ((opcode, payload),) = self.received()
        self.assertEqual(opcode, OP_BINARY)
        self.assertEqual(type(self.client.receive_data(payload)[0]).__name__, "HandshakeResponse")

    def test_one_byte_at_a_time(self) -> None:
        """Two requests fed a byte at a time are answered in order, one message each."""
        self.connect()
        data = client_frame(self.client.send(Request(1, ECHO, b'{"a":1}'))) + client_frame(
            self.client.send(Request(2, ECHO, b'{"b":2}'))
        )
        for index in range(len(data)):
            self.protocol.dataReceived(data[index : index + 1])
        events = [e for _, p in self.received() for e in self.client.receive_data(p)]
        self.assertEqual(events, [Response(1, b'{"a":1}', ECHO), Response(2, b'{"b":2}', ECHO)])

    def test_answers_of_one_read_leave_in_one_write(self) -> None:
        """Three requests in one read: three binary messages in a single transport write."""
        self.connect()
        writes: list[bytes] = []
        write = self.transport.write
        self.transport.write = lambda data: (writes.append(data), write(data))  # type: ignore[method-assign,func-returns-value]
        frames = b"".join(
            client_frame(self.client.send(Request(n, ECHO, b"{}"))) for n in (1, 2, 3)
        )
        self.protocol.dataReceived(frames)
        self.assertEqual(len(writes), 1)
        self.assertEqual([opcode for opcode, _ in self.received()], [OP_BINARY] * 3)

    def test_fragmented_message_with_a_ping_between(self) -> None:
        """Fragments are joined; a ping between them is answered with its payload first."""
        self.connect()
        package = self.client.send(Request(7, ECHO, b'{"frag":true}'))
        self.protocol.dataReceived(
            encode_frame(OP_BINARY, package[:5], fin=False, mask=MASK)
            + encode_frame(OPCODE_PING, b"are you there", mask=MASK)
            + encode_frame(0, package[5:], fin=True, mask=MASK)
        )
        frames = self.received()
        self.assertEqual(frames[0], (OPCODE_PONG, b"are you there"))
        self.assertEqual(
            self.client.receive_data(frames[1][1]), [Response(7, b'{"frag":true}', ECHO)]
        )

    def test_pong_is_ignored(self) -> None:
        """An unsolicited pong gets no answer and changes nothing."""
        self.connect()
        self.protocol.dataReceived(encode_frame(OPCODE_PONG, b"x", mask=MASK))
        self.assertEqual(self.received(), [])
        self.assertTrue(self.transport.connected)

    def test_client_close_is_answered(self) -> None:
        """The client's close frame is echoed with its code, then the connection closes."""
        self.connect()
        agent = self.protocol.agent
        assert agent is not None
        self.protocol.dataReceived(client_frame(close_payload(1001, b"going"), OP_CLOSE))
        self.assertEqual(self.received(), [(OP_CLOSE, close_payload(1001))])
        self.assertFalse(self.transport.connected)
        self.assertEqual(agent.close_reason, "client closed")
        self.assertEqual(self.agents.agents, {})

    def test_server_close_waits_for_the_answer(self) -> None:
        """agent.close sends close 1000; nothing is written after it; the answer hangs up."""
        self.connect()
        agent = self.protocol.agent
        assert agent is not None
        agent.close()
        self.protocol.write(b"late")
        self.assertEqual(self.received(), [(OP_CLOSE, close_payload(1000))])
        self.assertTrue(self.transport.connected)
        self.protocol.dataReceived(client_frame(close_payload(1000), OP_CLOSE))
        self.assertEqual(self.received(), [])
        self.assertFalse(self.transport.connected)
        self.assertEqual(self.agents.metrics.closed, {"server closed": 1})
        self.assertEqual(self.agents.clock.getDelayedCalls(), [])

    def test_unmasked_frame_fails_the_connection(self) -> None:
        """An unmasked client frame: close 1002 naming the fault, recorded as a protocol error."""
        self.connect()
        self.protocol.dataReceived(encode_frame(OP_BINARY, b"\x04\x00\x00\x00"))
        ((opcode, payload),) = self.received()
        self.assertEqual(opcode, OP_CLOSE)
        self.assertEqual(payload[:2], (1002).to_bytes(2, "big"))
        self.assertIn(b"mask", payload[2:])
        self.assertFalse(self.transport.connected)
        self.assertEqual(self.agents.metrics.closed, {"protocol error": 1})
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_requests_before_a_bad_frame_are_answered(self) -> None:
        """A request decoded before a violation in the same read is answered, then 1002."""
        self.connect()
        self.protocol.dataReceived(
            client_frame(self.client.send(Request(1, ECHO, b"{}")))
            + encode_frame(OP_BINARY, b"x", mask=MASK)[:1]
            + b"\x00"  # RSV-free, but the length byte says unmasked
        )
        frames = self.received()
        self.assertEqual(self.client.receive_data(frames[0][1]), [Response(1, b"{}", ECHO)])
        self.assertEqual(frames[1][0], OP_CLOSE)
        self.assertEqual(frames[1][1][:2], (1002).to_bytes(2, "big"))

    def test_oversized_frame_refused_from_its_header(self) -> None:
        """A frame header announcing more than the limit closes with 1009 before any payload."""
        self.connect()
        limit = self.protocol.factory.max_message_size
        header = b"\x82\xfe" + (limit + 1).to_bytes(2, "big") + MASK  # the shortest form
        self.protocol.dataReceived(header)
        ((opcode, payload),) = self.received()
        self.assertEqual((opcode, payload[:2]), (OP_CLOSE, (1009).to_bytes(2, "big")))
        self.assertFalse(self.transport.connected)
        self.assertEqual(self.agents.metrics.closed, {"protocol error": 1})


def deflate_bomb() -> bytes:
    """16 MiB of zeros as a permessage-deflate payload (about 16 KiB), made 1 MiB at a time."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    bomb = b"".join(squeeze.compress(zeros) for _ in range(16)) + squeeze.flush(zlib.Z_SYNC_FLUSH)
    return bomb[:-4]  # RFC 7692: the trailing 00 00 ff ff is left off


FLOOD_LINE = b"X-Flood: " + b"a" * 990 + b"\r\n"


class UpgradeLimitTests(GlobalReactorCheck):
    """The opening handshake is capped in bytes, header lines and time, all deterministic."""

    def setUp(self) -> None:
        super().setUp()
        self.config = AgentConfig(handshake_timeout=60)
        self.open()

    def open(self, **limits: int | float) -> None:
        """A fresh WebSocket connection under ``self.config`` with ``limits`` applied."""
        self.agents = make_agents(replace(self.config, **limits))
        self.clock = self.agents.clock
        self.protocol = WebSocketFactory(self.agents).buildProtocol(PEER)
        assert isinstance(self.protocol, PomeloWebSocketProtocol)
        self.transport = StringTransportWithDisconnection(peerAddress=PEER)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.logged: list[dict[str, object]] = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def loud_lines(self) -> list[str]:
        """What was logged above debug meanwhile."""
        return [
            formatEvent(e)
            for e in self.logged
            if e.get("log_level", LogLevel.info) > LogLevel.debug
        ]

    def assert_refused_with(self, status: bytes, reason: str) -> None:
        """Answered ``status``, closed, its buffers dropped, counted, nothing loud logged."""
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 " + status), status)
        self.assertFalse(self.transport.connected)
        self.assertIsNone(self.protocol._upgrade_buf)
        self.assertEqual(self.protocol.data, b"")  # autobahn's buffer never grew
        self.assertEqual(self.agents.metrics.closed, {reason: 1})
        self.assertEqual(self.loud_lines(), [])

    def test_slowloris_closed_at_the_timeout(self) -> None:
        """One byte of the upgrade every 200 ms: dropped at 10 s, counted, not logged."""
        request = upgrade_request()
        sent = 0
        while self.clock.seconds() < 9.9:
            self.protocol.dataReceived(request[sent : sent + 1])
            sent += 1
            self.clock.advance(0.2)
        self.assertTrue(self.transport.connected)
        self.clock.advance(0.2)
        self.assertFalse(self.transport.connected)
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(self.agents.metrics.closed, {"handshake timeout": 1})
        self.assertIsNone(self.protocol._upgrade_buf)
        self.assertEqual(self.loud_lines(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeout_is_configurable(self) -> None:
        """upgrade_timeout=2: a silent connection is dropped at 2 s, not before."""
        self.open(upgrade_timeout=2)
        self.clock.advance(1.99)
        self.assertTrue(self.transport.connected)
        self.clock.advance(0.01)
        self.assertFalse(self.transport.connected)

    def test_header_flood_closed_at_the_byte_cap(self) -> None:
        """Header lines with no end: 431 once past 16 KiB; later bytes are not kept."""
        self.protocol.dataReceived(b"GET / HTTP/1.1\r\n")
        fed = 0
        while self.transport.connected:
            self.protocol.dataReceived(FLOOD_LINE[:500])
            self.protocol.dataReceived(FLOOD_LINE[500:])
            fed += len(FLOOD_LINE)
            self.assertLess(fed, 17 * 1024, "never refused")
        self.assertGreater(fed, 16 * 1024 - 1000)
        self.protocol.dataReceived(FLOOD_LINE * 100)
        self.assert_refused_with(b"431", "bad handshake")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_whole_head_over_the_cap_in_one_read(self) -> None:
        """A complete head of 20 KiB arriving in one read is refused all the same."""
        head = upgrade_request()
        flood = head[:-2] + FLOOD_LINE * 20 + b"\r\n"
        self.protocol.dataReceived(flood)
        self.assert_refused_with(b"431", "bad handshake")

    def test_header_line_cap(self) -> None:
        """101 short header lines (under the byte cap) are refused with 431."""
        self.open(max_upgrade_headers=100)
        self.protocol.dataReceived(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 102)
        self.assert_refused_with(b"431", "bad handshake")

    def test_smaller_caps_and_a_head_within_them(self) -> None:
        """A normal request fits max_upgrade_bytes=300 and 8 header lines, cut anywhere."""
        self.open(max_upgrade_bytes=300, max_upgrade_headers=8)
        request = upgrade_request()
        for i in range(len(request)):
            self.protocol.dataReceived(request[i : i + 1])
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 101"))
        self.assertIsNone(self.protocol._upgrade_timer)  # cancelled at the upgrade
        self.clock.advance(30)
        self.assertTrue(self.transport.connected)
        self.open(max_upgrade_headers=4)
        self.protocol.dataReceived(request)
        self.assert_refused_with(b"431", "bad handshake")

    def test_autobahn_sees_the_head_once(self) -> None:
        """Fed a byte at a time, autobahn parses the head once, not once per read."""
        calls: list[bytes] = []
        parse = self.protocol.processHandshake

        def counted() -> None:
            calls.append(self.protocol.data)
            parse()

        self.protocol.processHandshake = counted
        request = upgrade_request()
        for i in range(len(request)):
            self.protocol.dataReceived(request[i : i + 1])
        self.assertEqual(calls, [request])
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 101"))

    def test_hybrid_upgrade_is_capped_too(self) -> None:
        """Through the hybrid acceptor the same limits hold: a flood gets 431."""
        agents = make_agents(self.config)
        _, protocol, transport = open_hybrid(agents)
        protocol.dataReceived(b"GET / HTTP/1.1\r\n" + FLOOD_LINE * 20)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 431"))
        self.assertFalse(transport.connected)
        self.assertEqual(agents.metrics.closed, {"bad handshake": 1})

    def test_bad_request_gets_400_quietly(self) -> None:
        """A request autobahn refuses (no Sec-WebSocket-Key) gets 400, counted, not logged."""
        request = upgrade_request().replace(b"Sec-WebSocket-Key", b"X-Nothing")
        self.protocol.dataReceived(request)
        self.assert_refused_with(b"400", "bad handshake")

    def test_unknown_version_keeps_autobahn_headers(self) -> None:
        """Version 8: the refusal names the version the server speaks."""
        request = upgrade_request().replace(b"Version: 13", b"Version: 99")
        self.protocol.dataReceived(request)
        self.assertIn(b"Sec-WebSocket-Version: ", self.transport.value())
        self.assertFalse(self.transport.connected)

    def test_deflate_offer_declined(self) -> None:
        """A permessage-deflate offer gets a 101 without Sec-WebSocket-Extensions."""
        request = upgrade_request()[:-2] + (
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        )
        self.protocol.dataReceived(request)
        head = self.transport.value().partition(b"\r\n\r\n")[0]
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.assertNotIn(b"sec-websocket-extensions", head.lower())

    def test_deflate_bomb_refused_without_inflating(self) -> None:
        """A compressed (RSV1) frame after the declined offer: 1002, nothing inflated."""
        self.test_deflate_offer_declined()
        self.transport.clear()
        frame = client_frame(deflate_bomb(), OP_BINARY)
        self.protocol.dataReceived(bytes((frame[0] | 0x40,)) + frame[1:])
        ((opcode, payload),) = server_frames(self.transport.value())
        self.assertEqual((opcode, payload[:2]), (OP_CLOSE, (1002).to_bytes(2, "big")))
        self.assertIn(b"RSV", payload)
        self.assertFalse(self.transport.connected)


class RawClient(Protocol):
    """An abusive client on a real socket: records what it gets and when it is closed."""

    def __init__(self) -> None:
        self.received = b""
        self.lost: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


def rss_bytes() -> int:
    """This process's resident set size now (Linux), 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class RealSocketTests(TestCase):
    """Each abuse class on a real loopback socket, while a good client keeps being answered."""

    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        config = AgentConfig(upgrade_timeout=1.0, handshake_timeout=30, max_packet_size=1000)
        self.agents = AgentPool(
            EchoHandler(reactor), reactor, config=config, dictionary=echo_dictionary()
        )
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
            WebSocketFactory(self.agents)
        )
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        self.good: PomeloClient = yield connect(reactor, f"ws://127.0.0.1:{self.port}/", timeout=5)
        self.answers = 0
        self.pinging = True
        self.pinger = self.ping()

    @inlineCallbacks
    def ping(self) -> Any:
        """The well-behaved client: an echo request every 20 ms, each answered in < 1 s."""
        while self.pinging:
            sent = reactor.seconds()
            reply = yield self.good.request(ECHO, {"n": self.answers})
            self.assertEqual(reply, {"n": self.answers})
            self.assertLess(reactor.seconds() - sent, 1.0)
            self.answers += 1
            yield deferLater(reactor, 0.02)

    @inlineCallbacks
    def finish(self, before: int) -> Any:
        """The good client, answered throughout, is answered 3 more times, then stops."""
        target = self.answers + 3
        while self.answers < target and not self.pinger.called:
            yield deferLater(reactor, 0.02)
        self.pinging = False
        yield self.pinger
        self.assertGreaterEqual(self.answers, max(target, before), "the good client starved")
        yield self.good.close()
        yield self.agents.close_all()

    @inlineCallbacks
    def raw(self) -> Any:
        """A raw TCP connection to the acceptor."""
        client = RawClient()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        yield connectProtocol(endpoint, client)
        return client

    @inlineCallbacks
    def test_slowloris(self) -> Any:
        """One upgrade byte per 200 ms: dropped at upgrade_timeout; others answered."""
        abuser = yield self.raw()
        request, sent, started = upgrade_request(), [0], reactor.seconds()

        def drip() -> None:
            if abuser.transport is not None and not abuser.lost.called:
                abuser.transport.write(request[sent[0] : sent[0] + 1])
                sent[0] += 1

        loop = LoopingCall(drip)
        loop.clock = reactor
        loop.start(0.2)
        yield abuser.lost
        loop.stop()
        self.assertLess(reactor.seconds() - started, 3)
        self.assertEqual(abuser.received, b"")
        self.assertEqual(self.agents.metrics.closed["handshake timeout"], 1)
        yield self.finish(20)  # answered every 20 ms while the slowloris dripped for 1 s

    @inlineCallbacks
    def test_header_flood(self) -> Any:
        """Twenty sockets flooding header lines: 431 each, RSS grows < 5 MB; others answered."""
        before = rss_bytes()
        abusers = []
        for _ in range(20):
            abuser = yield self.raw()
            abuser.transport.write(b"GET / HTTP/1.1\r\n" + FLOOD_LINE * 64)
            abusers.append(abuser)
        yield gatherResults([abuser.lost for abuser in abusers])
        for abuser in abusers:
            self.assertTrue(abuser.received.startswith(b"HTTP/1.1 431"))
        self.assertLess(rss_bytes() - before, 5 << 20)
        self.assertEqual(self.agents.metrics.closed["bad handshake"], 20)
        yield self.finish(0)

    @inlineCallbacks
    def test_oversized_frame(self) -> Any:
        """A frame header over the limit: close 1009 at once; others answered."""
        abuser = yield self.raw()
        abuser.transport.write(upgrade_request())
        limit = (1000 + 4) * 4
        abuser.transport.write(b"\x82\xfe" + (limit + 1).to_bytes(2, "big") + MASK)
        yield abuser.lost
        head, _, frames = abuser.received.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101"))
        ((opcode, payload),) = server_frames(frames)
        self.assertEqual((opcode, payload[:2]), (OP_CLOSE, (1009).to_bytes(2, "big")))
        yield self.finish(0)

    @inlineCallbacks
    def test_deflate_bomb(self) -> Any:
        """A deflate offer is declined and a 16 MiB bomb refused (1002); RSS < 5 MB more."""
        frame = client_frame(deflate_bomb(), OP_BINARY)
        before = rss_bytes()
        abuser = yield self.raw()
        abuser.transport.write(
            upgrade_request()[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        )
        abuser.transport.write(bytes((frame[0] | 0x40,)) + frame[1:])
        yield abuser.lost
        head, _, frames = abuser.received.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101"))
        self.assertNotIn(b"sec-websocket-extensions", head.lower())
        ((opcode, payload),) = server_frames(frames)
        self.assertEqual((opcode, payload[:2]), (OP_CLOSE, (1002).to_bytes(2, "big")))
        self.assertLess(rss_bytes() - before, 5 << 20)
        yield self.finish(0)


class UpgradeConfigTests(SynchronousTestCase):
    """The upgrade limits are AgentConfig settings with safe defaults, validated."""

    def test_defaults_and_mapping(self) -> None:
        """16 KiB, 100 lines, 10 s by default; the connector mapping sets them."""
        config = AgentConfig()
        self.assertEqual(
            (config.max_upgrade_bytes, config.max_upgrade_headers, config.upgrade_timeout),
            (16 * 1024, 100, 10.0),
        )
        config = AgentConfig.from_mapping({"max_upgrade_bytes": 4096, "upgrade_timeout": 3})
        self.assertEqual((config.max_upgrade_bytes, config.upgrade_timeout), (4096, 3))

    def test_bad_values_refused(self) -> None:
        """Zero or negative limits are refused by name."""
        for name in ("max_upgrade_bytes", "max_upgrade_headers", "upgrade_timeout"):
            with self.assertRaisesRegex(ValueError, name):
                AgentConfig(**{name: 0})
