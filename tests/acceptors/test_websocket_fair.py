"""The WebSocket acceptor under abuse: a burst is sliced like a raw TCP one, one deadline
runs from the accept to the ack whatever the phase, and a WebSocket-only listener holds
the connection caps. All deterministic (a Clock and memory transports)."""

from __future__ import annotations

import json

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from zope.interface.verify import verifyObject

from pomelo_twisted.acceptors import AgentPool, PomeloWebSocketProtocol, WebSocketFactory
from pomelo_twisted.agent import AgentConfig, CloseReason
from pomelo_twisted.agent.requests import KICK_RATE_LIMITED
from pomelo_twisted.interfaces import ISlicedLink
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    HandshakeResponse,
    MessageType,
    PackageType,
    Response,
    encode_message,
    encode_package,
)

from ..agent.helpers import make_agents
from ..agent.test_abuse import turn
from .helpers import OP_BINARY, OP_CLOSE, client_frame, open_hybrid, server_frames, upgrade_request
from .test_hybrid import GlobalReactorCheck

ECHO = "connector.entryHandler.echo"


def request_frames(first_id: int, count: int) -> bytes:
    """``count`` echo requests (ids from ``first_id``), one WebSocket message each."""
    return b"".join(
        client_frame(
            encode_package(
                PackageType.DATA,
                encode_message(MessageType.REQUEST, i, ECHO, json.dumps({"i": i}).encode()),
            )
        )
        for i in range(first_id, first_id + count)
    )


def clock_of(agents: AgentPool) -> Clock:
    """The pool's clock (a ``Clock`` in these tests)."""
    clock = agents.clock
    assert isinstance(clock, Clock)
    return clock


class WsConn:
    """One WebSocket connection of a pool on a memory transport, with a Pomelo client."""

    def __init__(self, agents: AgentPool, port: int = 50124) -> None:
        self.peer = IPv4Address("TCP", "127.0.0.1", port)
        built = WebSocketFactory(agents).buildProtocol(self.peer)
        assert isinstance(built, PomeloWebSocketProtocol)
        self.protocol = built
        self.transport = StringTransportWithDisconnection(peerAddress=self.peer)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.client = ClientConnection()

    def feed(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def upgrade(self) -> None:
        self.feed(upgrade_request())
        head, _, _ = self.transport.value().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.transport.clear()

    def handshake(self) -> None:
        self.feed(client_frame(self.client.send(ClientHandshake(sys={}))))
        events = self.events()
        assert isinstance(events[0], HandshakeResponse), events

    def open(self) -> None:
        """Upgrade, handshake and ack."""
        self.upgrade()
        self.handshake()
        self.feed(client_frame(self.client.send(HandshakeAck())))
        self.events()

    def events(self) -> list[object]:
        frames = server_frames(self.transport.value())
        self.transport.clear()
        return [e for op, p in frames if op == OP_BINARY for e in self.client.receive_data(p)]

    def responses(self) -> list[Response]:
        return [e for e in self.events() if isinstance(e, Response)]

    @property
    def connected(self) -> bool:
        return bool(self.transport.connected)


class SliceTests(GlobalReactorCheck):
    """A WebSocket client's burst is handled in slices with its reads paused."""

    def test_websocket_link_is_a_sliced_link(self) -> None:
        """The WebSocket protocol provides ISlicedLink."""
        conn = WsConn(make_agents())
        self.assertTrue(verifyObject(ISlicedLink, conn.protocol))

    def test_a_long_read_is_sliced_with_reads_paused(self) -> None:
        """10 request messages with slices of 4: 4, 4 and 2 answered on three turns,
        the socket paused until the last, each slice's answers in one write."""
        agents = make_agents(AgentConfig(slice_events=4))
        conn = WsConn(agents)
        conn.open()
        conn.feed(request_frames(1, 10))
        self.assertEqual([r.id for r in conn.responses()], [1, 2, 3, 4])
        self.assertEqual(conn.transport.producerState, "paused")
        writes: list[bytes] = []
        write = conn.transport.write
        self.patch(conn.transport, "write", lambda data: (writes.append(data), write(data)))
        turn(clock_of(agents))
        self.assertEqual(len(writes), 1)
        self.assertEqual([r.id for r in conn.responses()], [5, 6, 7, 8])
        turn(clock_of(agents))
        self.assertEqual([r.id for r in conn.responses()], [9, 10])
        self.assertEqual(conn.transport.producerState, "producing")

    def test_flooder_and_normal_client_share_a_pool(self) -> None:
        """A WebSocket flooder's 20,000 requests wait slice by slice and it is kicked; a
        normal WebSocket client's request in between is answered in its own read."""
        config = AgentConfig(slice_events=16, request_rate=100, request_burst=100, max_refusals=50)
        agents = make_agents(config)
        flooder, normal = WsConn(agents, 50001), WsConn(agents, 50002)
        flooder.open()
        normal.open()
        flooder.feed(request_frames(1, 20_000))
        self.assertEqual(len(flooder.responses()), 16)
        normal.feed(request_frames(1, 1))
        self.assertEqual([r.id for r in normal.responses()], [1])
        agent = flooder.protocol.agent
        assert agent is not None
        turns = 0
        while agent.close_reason is None:
            turn(clock_of(agents))
            turns += 1
            normal.feed(request_frames(turns + 1, 1))
            self.assertEqual([r.id for r in normal.responses()], [turns + 1])
            self.assertLess(turns, 20)
        self.assertEqual(agent.close_reason, f"kicked: {KICK_RATE_LIMITED}")
        self.assertLessEqual(len(flooder.responses()), 16 * turns)
        self.assertTrue(normal.connected)


class OneDeadlineTests(GlobalReactorCheck):
    """A client that never finishes is closed ``handshake_timeout`` after its accept,
    whichever phase it stops in (upgrade_timeout is longer here, so it never decides)."""

    def pool(self) -> AgentPool:
        return make_agents(AgentConfig(handshake_timeout=10, upgrade_timeout=60, heartbeat=None))

    def assert_closed_at(self, agents: AgentPool, conn: WsConn, deadline: float) -> None:
        """Untouched just before ``deadline`` after the accept (time 0); at it, dropped
        (before the upgrade) or sent a close frame and dropped ``close_grace`` later."""
        clock = agents.clock
        assert isinstance(clock, Clock)
        clock.advance(deadline - 0.01 - clock.seconds())
        self.assertTrue(conn.connected)
        self.assertNotIn(OP_CLOSE, [op for op, _ in server_frames(conn.transport.value())])
        clock.advance(0.01)
        if conn.connected:
            self.assertEqual(server_frames(conn.transport.value())[-1][0], OP_CLOSE)
            clock.advance(agents.config.close_grace)
        self.assertFalse(conn.connected)
        self.assertEqual(agents.metrics.closed[CloseReason.HANDSHAKE_TIMEOUT], 1)

    def test_silent_before_the_upgrade(self) -> None:
        """No byte at all: closed 10 s after the accept."""
        agents = self.pool()
        self.assert_closed_at(agents, WsConn(agents), 10)

    def test_stuck_in_the_upgrade(self) -> None:
        """Half an upgrade request at 9 s: still closed 10 s after the accept."""
        agents = self.pool()
        conn = WsConn(agents)
        clock_of(agents).advance(9)
        conn.feed(upgrade_request()[:20])
        self.assert_closed_at(agents, conn, 10)

    def test_upgraded_but_no_handshake(self) -> None:
        """Upgraded at 6 s, no Pomelo handshake: closed 10 s after the accept, not 16."""
        agents = self.pool()
        conn = WsConn(agents)
        clock_of(agents).advance(6)
        conn.upgrade()
        self.assert_closed_at(agents, conn, 10)

    def test_handshake_but_no_ack(self) -> None:
        """Upgraded at 3 s, handshake at 6 s, no ack: closed 10 s after the accept."""
        agents = self.pool()
        conn = WsConn(agents)
        clock_of(agents).advance(3)
        conn.upgrade()
        clock_of(agents).advance(3)
        conn.handshake()
        self.assert_closed_at(agents, conn, 10)

    def test_acked_in_time_stays_open(self) -> None:
        """Acked at 9.9 s after the accept: the deadline is gone, the connection stays."""
        agents = self.pool()
        conn = WsConn(agents)
        clock_of(agents).advance(9.9)
        conn.open()
        clock_of(agents).advance(100)
        self.assertTrue(conn.connected)

    def test_the_shorter_upgrade_timeout_still_applies(self) -> None:
        """upgrade_timeout 2 s (under handshake_timeout): no upgrade, closed at 2 s."""
        agents = make_agents(AgentConfig(handshake_timeout=10, upgrade_timeout=2))
        self.assert_closed_at(agents, WsConn(agents), 2)

    def test_through_the_hybrid_sniffer(self) -> None:
        """First byte at 4 s, upgrade at 8 s, nothing more: closed 10 s after the
        hybrid's accept, not 10 s after the WebSocket protocol took over."""
        agents = self.pool()
        _factory, hybrid, transport = open_hybrid(agents)
        clock_of(agents).advance(4)
        request = upgrade_request()
        hybrid.dataReceived(request[:1])
        clock_of(agents).advance(4)
        hybrid.dataReceived(request[1:])
        head, _, _ = transport.value().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101"))
        transport.clear()
        clock_of(agents).advance(1.99)
        self.assertEqual(transport.value(), b"")
        clock_of(agents).advance(0.01)
        self.assertEqual(server_frames(transport.value())[-1][0], OP_CLOSE)
        self.assertEqual(agents.metrics.closed, {})
        clock_of(agents).advance(agents.config.close_grace)
        self.assertFalse(transport.connected)
        self.assertEqual(agents.metrics.closed[CloseReason.HANDSHAKE_TIMEOUT], 1)


class CapTests(GlobalReactorCheck):
    """A WebSocket-only listener holds the pool's connection caps."""

    def test_per_ip_cap(self) -> None:
        """Cap 2 per IP: the third connection is refused at accept and counted; a
        closed one frees its place."""
        agents = make_agents(AgentConfig(max_connections_per_ip=2))
        factory = WebSocketFactory(agents)
        peer = IPv4Address("TCP", "10.0.0.1", 1)
        first = factory.buildProtocol(peer)
        self.assertIsNotNone(factory.buildProtocol(peer))
        self.assertIsNone(factory.buildProtocol(peer))
        self.assertEqual(agents.metrics.refused, {"per-IP connection cap": 1})
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "10.0.0.2", 1)))
        assert isinstance(first, PomeloWebSocketProtocol)
        transport = StringTransportWithDisconnection(peerAddress=peer)
        transport.protocol = first
        first.makeConnection(transport)
        transport.loseConnection()
        self.assertIsNotNone(factory.buildProtocol(peer))
        self.assertEqual(agents.connections, 3)

    def test_total_cap(self) -> None:
        """Total cap 1: a second connection from anywhere is refused."""
        agents = make_agents(AgentConfig(max_connections=1))
        factory = WebSocketFactory(agents)
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1)))
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "10.0.0.2", 1)))
        self.assertEqual(agents.metrics.refused, {"connection cap": 1})

    def test_hybrid_counts_once(self) -> None:
        """Through a hybrid listener a WebSocket connection is counted once, at the
        hybrid's accept, and released once when lost."""
        agents = make_agents()
        _factory, hybrid, transport = open_hybrid(agents)
        hybrid.dataReceived(upgrade_request())
        self.assertEqual(agents.connections, 1)
        transport.loseConnection()
        self.assertEqual(agents.connections, 0)
