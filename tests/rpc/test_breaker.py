"""Circuit breakers: closed, open after consecutive failures, half-open probe, and the
breaker of each peer of a PbRpcTransport."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.app.application import Application
from pomelo_twisted.cluster.monitor import MonitorComponent
from pomelo_twisted.errors import (
    CircuitOpen,
    HandlerError,
    PeerUnavailable,
    RpcError,
    RpcTimeout,
)
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import RemoteDispatcher
from pomelo_twisted.rpc.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerBoard,
    BreakerSettings,
    CircuitBreaker,
)
from pomelo_twisted.rpc.pb import PbRpcTransport

from ..cluster.fakes import SECRET, ProcessReactor
from .helpers import ChatRemote
from .test_pb import CHAT, PbCase


def breaker(failures: int = 3, cool_down: float = 10.0) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker("chat-1", clock, BreakerSettings(failures, cool_down)), clock


class SettingsTests(SynchronousTestCase):
    """BreakerSettings and their validation."""

    def test_defaults(self) -> None:
        """5 failures and 5 seconds unless the settings say otherwise."""
        settings = BreakerSettings.from_settings({})
        self.assertEqual((settings.failures, settings.cool_down), (5, 5.0))
        settings = BreakerSettings.from_settings(
            {"rpc_breaker_failures": 2, "rpc_breaker_cool_down": 0.5}
        )
        self.assertEqual((settings.failures, settings.cool_down), (2, 0.5))

    def test_wrong_values_name_the_setting(self) -> None:
        """A non-positive or mistyped value is refused, naming the setting."""
        for bad in ({"rpc_breaker_failures": 0}, {"rpc_breaker_failures": True}):
            error = self.assertRaises(ValueError, BreakerSettings.from_settings, bad)
            self.assertIn("rpc_breaker_failures", str(error))
        for bad_cool in ({"rpc_breaker_cool_down": 0}, {"rpc_breaker_cool_down": "1"}):
            error = self.assertRaises(ValueError, BreakerSettings.from_settings, bad_cool)
            self.assertIn("rpc_breaker_cool_down", str(error))


class BreakerTests(SynchronousTestCase):
    """One breaker's states on a Clock."""

    def test_opens_after_consecutive_failures(self) -> None:
        """N consecutive failures open it; a success in between starts the count again."""
        b, _ = breaker(failures=3)
        b.failure()
        b.failure()
        b.success()
        b.failure()
        b.failure()
        self.assertEqual(b.state, CLOSED)
        b.failure()
        self.assertEqual((b.state, b.opened), (OPEN, 1))

    def test_open_rejects_until_the_cool_down(self) -> None:
        """Open, calls are refused (counted) until the cool-down; then one probe goes."""
        b, clock = breaker(failures=1, cool_down=10.0)
        b.failure()
        self.assertFalse(b.allow())
        clock.advance(9.9)
        self.assertFalse(b.allow())
        clock.advance(0.1)
        self.assertTrue(b.allow())
        self.assertEqual(b.state, HALF_OPEN)
        self.assertFalse(b.allow())  # the probe is in flight
        self.assertEqual(b.rejected, 3)

    def test_probe_success_closes(self) -> None:
        """The probe's success closes it: calls flow again."""
        b, clock = breaker(failures=1)
        b.failure()
        clock.advance(10)
        self.assertTrue(b.allow())
        b.success()
        self.assertEqual(b.state, CLOSED)
        self.assertTrue(b.allow())
        self.assertTrue(b.allow())

    def test_probe_failure_reopens(self) -> None:
        """The probe's failure opens it for another full cool-down."""
        b, clock = breaker(failures=1, cool_down=10.0)
        b.failure()
        clock.advance(10)
        self.assertTrue(b.allow())
        b.failure()
        self.assertEqual((b.state, b.opened), (OPEN, 2))
        clock.advance(9)
        self.assertFalse(b.allow())
        clock.advance(1)
        self.assertTrue(b.allow())

    def test_abandoned_probe_lets_the_next_call_probe(self) -> None:
        """A probe cancelled by its caller does not leave the breaker stuck half-open."""
        b, clock = breaker(failures=1)
        b.failure()
        clock.advance(10)
        self.assertTrue(b.allow())
        b.abandoned()
        self.assertTrue(b.allow())

    def test_reset_closes(self) -> None:
        """reset (the peer is up again) closes an open breaker at once."""
        b, _ = breaker(failures=1)
        b.failure()
        b.reset()
        self.assertEqual((b.state, b.consecutive), (CLOSED, 0))
        self.assertTrue(b.allow())

    def test_board(self) -> None:
        """A board keeps one breaker per peer; configure changes every breaker's settings."""
        board = BreakerBoard(Clock())
        self.assertIs(board.of("a"), board.of("a"))
        board.of("b").failure()
        board.configure(BreakerSettings(1, 1.0))
        board.of("b").failure()
        self.assertEqual(board.states(), {"a": CLOSED, "b": OPEN})
        self.assertEqual(board.snapshot()["b"]["opened"], 1)
        board.forget("b")
        self.assertEqual(list(board.states()), ["a"])


class TransportBreakerTests(PbCase):
    """The breakers of PbRpcTransport's peers, on the in-memory network."""

    def setUp(self) -> None:
        super().setUp()
        self.connector.breakers.configure(BreakerSettings(failures=2, cool_down=5.0))
        self.connector.add_peer(CHAT)
        self.flush()

    def time_out(self) -> None:
        d = self.call("later", timeout=1.0)
        self.clock.advance(1.0)
        self.failureResultOf(d, RpcTimeout)

    def test_timeouts_open_it_and_calls_fail_fast(self) -> None:
        """Two timeouts open chat-1's breaker: the next call fails at once with CircuitOpen
        (an RpcError, a PeerUnavailable) and never reaches the remote."""
        self.time_out()
        self.time_out()
        self.assertEqual(self.connector.breakers.states(), {"chat-1": OPEN})
        received = len(self.remote.received)
        failure = self.failureResultOf(self.call("record", 1), CircuitOpen)
        self.assertIsInstance(failure.value, PeerUnavailable)
        self.assertIn("circuit breaker is open", str(failure.value))
        self.assertEqual(len(self.remote.received), received)
        self.assertEqual(self.connector.counters("chat-1").failures, 1)

    def test_application_errors_do_not_count(self) -> None:
        """Errors of the remote (HandlerError, exceptions) are answers: the breaker stays
        closed."""
        for _ in range(3):
            self.failureResultOf(self.call("refuse", 500, "no"), HandlerError)
            self.failureResultOf(self.call("boom", "bang"), RpcError)
        self.flushLoggedErrors(ValueError)
        self.assertEqual(self.connector.breakers.states(), {"chat-1": CLOSED})

    def test_half_open_probe_closes(self) -> None:
        """After the cool-down one probe goes through; its answer closes the breaker."""
        self.time_out()
        self.time_out()
        self.clock.advance(5.0)
        probe = self.connector.call("chat-1", "chatRemote", "echo", (1,), 10.0)
        self.failureResultOf(self.call("echo", 2), CircuitOpen)
        self.flush()
        self.assertEqual(self.successResultOf(probe), [1])
        self.assertEqual(self.connector.breakers.states(), {"chat-1": CLOSED})
        self.assertEqual(self.successResultOf(self.call("echo", 3)), [3])

    def test_failed_probe_reopens(self) -> None:
        """A probe that times out opens the breaker again."""
        self.time_out()
        self.time_out()
        self.clock.advance(5.0)
        self.time_out()
        self.assertEqual(self.connector.breakers.snapshot()["chat-1"]["opened"], 2)
        self.failureResultOf(self.call("echo"), CircuitOpen)

    def test_down_peer_counts_and_reconnect_closes(self) -> None:
        """Calls refused because the peer is down count as failures; when its connection
        logs in again the breaker closes."""
        self.network.unlisten(CHAT.rpc_client_endpoint)
        self.network.drop(CHAT.rpc_client_endpoint)
        self.flush()
        for _ in range(2):
            failure = self.failureResultOf(self.call("echo"), PeerUnavailable)
            self.assertNotIsInstance(failure.value, CircuitOpen)
        self.assertEqual(self.connector.breakers.states(), {"chat-1": OPEN})
        self.failureResultOf(self.call("echo"), CircuitOpen)
        self.serve(self.chat, CHAT)
        self.connector.reconnect("chat-1")
        self.flush()
        self.assertEqual(self.connector.breakers.states(), {"chat-1": CLOSED})
        self.assertEqual(self.successResultOf(self.call("echo", 1)), [1])

    def test_removed_peer_forgets_its_breaker(self) -> None:
        """A peer removed from the cluster leaves no breaker behind."""
        self.connector.remove_peer("chat-1")
        self.flush()
        self.assertEqual(self.connector.breakers.states(), {})


class StatsTests(SynchronousTestCase):
    """What ``pomelo-twisted list`` learns of the breakers from a server's stats."""

    def test_stats_list_breakers_not_closed(self) -> None:
        """A server's stats name the peers whose breaker is not closed (none: no key)."""
        reactor = ProcessReactor()
        transport = PbRpcTransport(reactor, "connector-1", SECRET)
        info = ServerInfo("connector-1", "connector", frontend=True, client_port=1)
        app = Application(info, reactor=reactor, rpc=transport, servers={"connector": [info]})
        monitor = MonitorComponent(app, "tcp:127.0.0.1:1", SECRET, stop_process=lambda: None)
        self.assertNotIn("breakers", monitor.stats())
        transport.breakers.configure(BreakerSettings(failures=1))
        transport.breakers.of("chat-1").failure()
        transport.breakers.of("chat-2")
        self.assertEqual(monitor.stats()["breakers"], {"chat-1": OPEN})


class RealPbBreakerTests(TestCase):
    """A breaker opening over a real PB connection on loopback."""

    timeout = 30

    @inlineCallbacks
    def test_timeouts_open_the_breaker(self) -> Any:
        """Two calls that time out over TCP open the breaker; the next call fails at once
        with CircuitOpen while the connection itself stays up."""
        remote = ChatRemote("chat-1")
        dispatcher = RemoteDispatcher()
        dispatcher.add("chatRemote", remote)
        chat = PbRpcTransport(global_reactor, "chat-1", SECRET)
        chat.register("chat-1", dispatcher)
        port = yield chat.listen("tcp:0:interface=127.0.0.1")
        self.addCleanup(chat.stop)
        info = ServerInfo("chat-1", "chat", host="127.0.0.1", port=port.getHost().port)
        connector = PbRpcTransport(
            global_reactor, "connector-1", SECRET, breaker=BreakerSettings(2, 60.0)
        )
        self.addCleanup(connector.stop)
        connector.add_peer(info)
        self.assertEqual((yield connector.when_peers_up(10.0)), [])
        self.assertEqual((yield connector.call("chat-1", "chatRemote", "echo", [1], 5.0)), [1])
        for _ in range(2):
            with self.assertRaises(RpcTimeout):
                yield connector.call("chat-1", "chatRemote", "later", [], 0.2)
        d = connector.call("chat-1", "chatRemote", "echo", [2], 5.0)
        self.failureResultOf(d, CircuitOpen)
        self.assertEqual(connector.peer_state("chat-1"), "up")
        self.assertEqual(connector.breakers.states(), {"chat-1": OPEN})
        for pending in remote.pending:
            pending.callback(None)
