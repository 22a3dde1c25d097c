"""Real-socket probes of issue 12 item 3, against an in-process server: an idle
connection, missed heartbeats, a client that never reads, a TCP length prefix over the
limit and a storm of 5,000 handshakes in 2 s. A well-behaved client is connected
throughout each and must keep getting answers; the figures are printed."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from pomelo_twisted.acceptors import AcceptorService
from pomelo_twisted.agent import CloseReason

from .probes import (
    PROBE_CONFIG,
    GoodClient,
    idle,
    length_over_limit,
    missed_heartbeats,
    never_reads,
    storm,
    websocket_burst,
)
from .server import LOOPBACK, SessionEchoHandler, probe_pool

HOST = "127.0.0.1"


class BadInputTests(TestCase):
    """Each bad input is closed with its reason while another client keeps being answered."""

    timeout = 60

    @inlineCallbacks
    def setUp(self) -> Any:
        self.agents = probe_pool(reactor)
        self.service = AcceptorService(reactor, LOOPBACK, self.agents, kind="hybrid")
        self.service.startService()
        port = yield self.service.listening
        self.addCleanup(self.service.stopService)
        self.port = port.getHost().port
        self.good = GoodClient()
        yield self.good.start(HOST, self.port)
        self.addCleanup(self.good.stop)
        yield self.good.answered_more(1)  # acked and answered: its session exists
        handler = self.agents.handler
        assert isinstance(handler, SessionEchoHandler)
        self.sessions = handler.session_service

    def closed(self, reason: str) -> int:
        return self.agents.metrics.closed[reason]

    @inlineCallbacks
    def test_idle_connection(self) -> Any:
        """A connection that never sends is closed at the handshake deadline (2 s)."""
        result = yield idle(HOST, self.port)
        print(f"\nidle connection: {result}")
        seconds = result["closed after s"]
        self.assertTrue(PROBE_CONFIG.handshake_timeout - 0.1 <= seconds < 3.5, seconds)
        self.assertEqual(self.closed(CloseReason.HANDSHAKE_TIMEOUT), 1)
        yield self.good.answered_more()

    @inlineCallbacks
    def test_missed_heartbeats(self) -> Any:
        """Acked, then silent: closed within 2xH + 1 s, its session gone."""
        self.assertEqual(len(self.sessions), 1)  # the good client's
        result = yield missed_heartbeats(HOST, self.port)
        print(f"\nmissed heartbeats (H = {PROBE_CONFIG.heartbeat} s): {result}")
        assert PROBE_CONFIG.heartbeat is not None
        self.assertLess(result["closed after s"], 2 * PROBE_CONFIG.heartbeat + 1)
        self.assertEqual(self.closed(CloseReason.HEARTBEAT_TIMEOUT), 1)
        self.assertEqual(len(self.sessions), 1)
        yield self.good.answered_more()

    @inlineCallbacks
    def test_client_that_never_reads(self) -> Any:
        """Pushed to and never reading: closed as a slow consumer at max_pending_bytes."""
        result = yield never_reads(HOST, self.port)
        print(f"\nclient that never reads: {result}")
        self.assertEqual(self.closed(CloseReason.SLOW_CONSUMER), 1)
        yield self.good.answered_more()

    @inlineCallbacks
    def test_length_prefix_over_the_limit(self) -> Any:
        """A header declaring 16 MiB - 1: refused from the header (a protocol error)."""
        result = yield length_over_limit(HOST, self.port)
        print(f"\nTCP length prefix over the limit: {result}")
        self.assertEqual(self.closed(CloseReason.PROTOCOL_ERROR), 1)
        yield self.good.answered_more()

    @inlineCallbacks
    def test_connection_storm(self) -> Any:
        """5,000 handshakes in 2 s: all complete or are refused cleanly; the good client
        keeps getting answers."""
        result = yield storm(HOST, self.port)
        print(
            f"\nconnection storm: {result}; good client: {self.good.answers} answers, "
            f"slowest {self.good.slowest * 1000:.0f} ms"
        )
        outcomes = result["outcomes"]
        self.assertEqual(sum(outcomes.values()), 5000)
        self.assertLessEqual(
            set(outcomes), {"completed", "connect failed", "closed before the handshake answer"}
        )
        self.assertGreater(outcomes.get("completed", 0), 0)
        yield self.good.answered_more()
        self.assertEqual(len(self.sessions), 1)

    @inlineCallbacks
    def test_websocket_burst(self) -> Any:
        """20,000 requests as WebSocket messages in one write: handled in slices and the
        sender kicked, the good client answered meanwhile."""
        result = yield websocket_burst(HOST, self.port)
        print(f"\nWebSocket 20,000-request burst: {result}")
        self.assertEqual(self.closed(CloseReason.KICKED), 1)
        yield self.good.answered_more()
