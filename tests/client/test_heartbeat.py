"""Heartbeats as the reference client does them, on a task.Clock."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client import ConnectionClosed
from pomelo_twisted.protocol import Heartbeat, Push

from .helpers import FakeServer

H = 3.0
EPS = 2**-10  # exact in binary, so clock arithmetic is exact


class HeartbeatTests(SynchronousTestCase):
    """Scheduling of client heartbeats and detection of a dead server."""

    def setUp(self) -> None:
        self.fake = FakeServer(self)
        self.client = self.fake.handshake(heartbeat=H)
        self.clock = self.fake.clock

    def sent_heartbeats(self) -> int:
        events = self.fake.receive()
        self.assertTrue(all(isinstance(e, Heartbeat) for e in events), events)
        return len(events)

    def test_no_heartbeat_before_server_heartbeat(self) -> None:
        """The client sends nothing until the server's first heartbeat."""
        self.clock.advance(10 * H)
        self.assertEqual(self.sent_heartbeats(), 0)
        self.assertTrue(self.client.connected)

    def test_sent_exactly_h_after_server_heartbeat(self) -> None:
        """A server heartbeat makes the client send one heartbeat exactly H later."""
        self.clock.advance(1)
        self.fake.send(Heartbeat())
        self.clock.advance(H - EPS)
        self.assertEqual(self.sent_heartbeats(), 0)
        self.clock.advance(EPS)
        self.assertEqual(self.sent_heartbeats(), 1)

    def test_one_pending_at_a_time(self) -> None:
        """Several server heartbeats before the client's is due still give one heartbeat."""
        self.fake.send(Heartbeat())
        self.clock.advance(1)
        self.fake.send(Heartbeat(), Heartbeat())
        self.clock.advance(H)
        self.assertEqual(self.sent_heartbeats(), 1)
        self.clock.advance(10 * H)
        self.assertEqual(self.sent_heartbeats(), 0)

    def test_steady_exchange(self) -> None:
        """A server answering every heartbeat keeps the connection up, one heartbeat per H."""
        self.fake.send(Heartbeat())
        for _ in range(20):
            self.clock.advance(H)
            self.assertEqual(self.sent_heartbeats(), 1)
            self.clock.advance(0.5)
            self.fake.send(Heartbeat())
        self.assertTrue(self.client.connected)

    def test_dead_server(self) -> None:
        """2×H of silence after a client heartbeat closes with "heartbeat timeout"."""
        d = self.client.request("a.b.c", {}, timeout=0)
        self.fake.receive()
        closed = self.client.closed
        self.fake.send(Heartbeat())
        self.clock.advance(H)
        self.assertEqual(self.sent_heartbeats(), 1)
        self.clock.advance(2 * H - EPS)
        self.assertTrue(self.client.connected)
        self.clock.advance(EPS)
        self.assertFalse(self.client.connected)
        self.assertTrue(self.fake.transport.disconnecting)
        self.assertEqual(
            self.failureResultOf(d, ConnectionClosed).value.reason, "heartbeat timeout"
        )
        self.fake.lose()
        self.assertEqual(self.successResultOf(closed), "heartbeat timeout")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_any_package_resets_dead_timer(self) -> None:
        """Any package from the server restarts the 2×H dead-server countdown."""
        self.fake.send(Heartbeat())
        self.clock.advance(H)  # client heartbeat sent at t = H
        self.clock.advance(1)
        self.fake.send(Push("onMove", b"{}"))  # t = H + 1
        self.clock.advance(2 * H - 1)  # t = 3H: would have been dead without the push
        self.assertTrue(self.client.connected)
        self.clock.advance(1)  # t = 3H + 1 = push + 2H
        self.assertEqual(self.client.close_reason, "heartbeat timeout")

    def test_partial_package_does_not_reset(self) -> None:
        """Bytes that do not complete a package do not count as a sign of life."""
        self.fake.send(Heartbeat())
        self.clock.advance(H)
        self.fake.protocol.dataReceived(b"\x04\x00")
        self.clock.advance(2 * H)
        self.assertEqual(self.client.close_reason, "heartbeat timeout")

    def test_close_cancels_timers(self) -> None:
        """Closing leaves no heartbeat timer behind."""
        self.fake.send(Heartbeat())
        self.clock.advance(H)
        self.client.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_interval_no_heartbeats(self) -> None:
        """Without sys.heartbeat the client never sends heartbeats nor watches for silence."""
        fake = FakeServer(self)
        fake.handshake()
        fake.send(Heartbeat())
        self.assertEqual(fake.clock.getDelayedCalls(), [])
        fake.clock.advance(1000)
        self.assertEqual(fake.receive(), [])
        self.assertTrue(fake.client.connected)
