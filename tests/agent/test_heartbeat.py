"""Heartbeats (PROTOCOL.md §6 and §12): replies at once, idle timeout on any package."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.protocol import HandshakeAck

from .helpers import HEARTBEAT, connect

ECHO = "connector.entryHandler.echo"


class HeartbeatReplyTests(SynchronousTestCase):
    """When the server sends heartbeats."""

    def test_heartbeat_sent_at_once_after_the_ack(self) -> None:
        """The ack is answered by exactly one heartbeat package, without advancing the clock."""
        conn = connect(AgentConfig(heartbeat=3), ack=False)
        conn.send(HandshakeAck())
        self.assertEqual(conn.written(), HEARTBEAT)

    def test_no_heartbeat_when_disabled(self) -> None:
        """With ``heartbeat=None`` the ack is answered by nothing."""
        conn = connect(AgentConfig(heartbeat=None), ack=False)
        conn.send(HandshakeAck())
        self.assertEqual(conn.written(), b"")

    def test_client_heartbeats_answered_immediately(self) -> None:
        """Each client heartbeat is answered at the same clock instant, one for one."""
        conn = connect(AgentConfig(heartbeat=3))
        conn.clock.advance(2.5)
        conn.feed(HEARTBEAT)
        self.assertEqual(conn.written(), HEARTBEAT)
        conn.feed(HEARTBEAT + HEARTBEAT)
        self.assertEqual(conn.written(), HEARTBEAT + HEARTBEAT)
        self.assertEqual(conn.clock.seconds(), 2.5)


class HeartbeatTimeoutTests(SynchronousTestCase):
    """The idle timeout: ``heartbeat_timeout`` (2 x H) without any package from the client."""

    def test_closed_exactly_two_intervals_after_the_ack(self) -> None:
        """With H=3 and no traffic: open at 5.999 s, closed at 6.0 s, no kick package."""
        conn = connect(AgentConfig(heartbeat=3))
        conn.clock.advance(5.999)
        self.assertTrue(conn.open)
        conn.clock.advance(0.001)
        self.assertEqual(conn.clock.seconds(), 6.0)
        self.assertFalse(conn.open)
        self.assertFalse(conn.aborted)
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agent.close_reason, "heartbeat timeout")
        self.assertEqual(conn.agents.metrics.closed, {"heartbeat timeout": 1})
        self.assertEqual(conn.handler.closes, [(conn.agent, "heartbeat timeout")])

    def test_client_heartbeats_keep_it_open(self) -> None:
        """A client heartbeating every H seconds stays open."""
        conn = connect(AgentConfig(heartbeat=3))
        for _ in range(20):
            conn.clock.advance(3)
            conn.feed(HEARTBEAT)
        self.assertTrue(conn.open)
        self.assertEqual(conn.written(), HEARTBEAT * 20)

    def test_data_traffic_counts_as_liveness(self) -> None:
        """Requests once a second and no heartbeats keep it open; it closes 6 s after the last."""
        conn = connect(AgentConfig(heartbeat=3))
        for msg_id in range(1, 11):
            conn.clock.advance(1)
            conn.request(msg_id, ECHO, {"n": msg_id})
        self.assertEqual(conn.clock.seconds(), 10.0)
        self.assertEqual([i for i, _ in conn.responses()], list(range(1, 11)))
        self.assertTrue(conn.open)
        conn.clock.advance(5.75)
        self.assertTrue(conn.open)
        conn.clock.advance(0.25)
        self.assertFalse(conn.open)
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agent.close_reason, "heartbeat timeout")

    def test_explicit_heartbeat_timeout(self) -> None:
        """``heartbeat_timeout`` overrides 2 x H."""
        conn = connect(AgentConfig(heartbeat=3, heartbeat_timeout=10))
        conn.clock.advance(9.5)
        self.assertTrue(conn.open)
        conn.clock.advance(0.5)
        self.assertFalse(conn.open)

    def test_no_timeout_without_heartbeat(self) -> None:
        """With ``heartbeat=None`` and no ``heartbeat_timeout`` an idle connection stays open."""
        conn = connect(AgentConfig(heartbeat=None))
        conn.clock.advance(3600)
        self.assertTrue(conn.open)
