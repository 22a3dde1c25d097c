"""RPC metrics: the framework's peer counters read at scrape time, and the hooks' counts
over real (in-memory network) Perspective Broker transports."""

from __future__ import annotations

from typing import Any, cast

from prometheus_client import CollectorRegistry
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import RpcTimeout
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.instruments import Instruments
from pomelo_twisted.interfaces import IServerReactor
from pomelo_twisted.metrics.collectors import FrameworkCollector
from pomelo_twisted.metrics.hooks import RpcMetrics
from pomelo_twisted.rpc.breaker import BreakerSettings
from pomelo_twisted.rpc.pb import PbRpcTransport

from ..rpc.test_pb import PbCase
from .helpers import scrape, value

SERVER = ("connector-1", "connector")


class PeerCollectorTests(SynchronousTestCase):
    """Over a network transport: each peer's link, breaker and counters."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.transport = PbRpcTransport(
            cast(IServerReactor, self.reactor),
            "connector-1",
            b"secret",
            breaker=BreakerSettings(failures=1, cool_down=5.0),
        )
        for number in (1, 2):
            self.transport.add_peer(
                ServerInfo(id=f"chat-{number}", type="chat", port=4250 + number)
            )
        self.addCleanup(self.transport.stop)
        self.registry = CollectorRegistry()
        self.registry.register(FrameworkCollector(SERVER, lambda: None, None, self.transport))

    def test_peer_link_state(self) -> None:
        """A peer still connecting is not up."""
        samples = scrape(self.registry)
        self.assertEqual(value(samples, "pomelo_rpc_peer_up", peer="chat-1"), 0.0)
        self.assertIn(("pomelo_rpc_peer_up", (("peer", "chat-2"),)), samples)

    def test_breaker_state_and_refused_calls(self) -> None:
        """An open breaker reads 2, a closed one 0; a call it refuses counts as a call
        and a failure of that peer."""
        self.transport.breakers.of("chat-1").failure()
        failures: list[Any] = []
        self.transport.call("chat-1", "chatRemote", "add", (), 1.0).addErrback(failures.append)
        self.assertEqual(len(failures), 1)
        samples = scrape(self.registry)
        self.assertEqual(value(samples, "pomelo_rpc_breaker_state", peer="chat-1"), 2.0)
        self.assertEqual(value(samples, "pomelo_rpc_breaker_state", peer="chat-2"), 0.0)
        self.assertEqual(value(samples, "pomelo_rpc_peer_calls_total", peer="chat-1"), 1.0)
        self.assertEqual(value(samples, "pomelo_rpc_peer_failures_total", peer="chat-1"), 1.0)
        self.assertEqual(value(samples, "pomelo_rpc_peer_calls_total", peer="chat-2"), 0.0)
        self.reactor.advance(5.0)  # cooled down: the next call is let through to try
        self.assertTrue(self.transport.breakers.of("chat-1").allow())
        samples = scrape(self.registry)
        self.assertEqual(value(samples, "pomelo_rpc_breaker_state", peer="chat-1"), 1.0)

    def test_no_client_series_on_a_backend(self) -> None:
        """Without an agent pool or sessions, no connection or session series."""
        names = {name for name, _ in scrape(self.registry)}
        self.assertFalse({"pomelo_connections_open", "pomelo_sessions"} & names)


class PbRpcMetricsTests(PbCase):
    """RpcMetrics as the hooks of two Perspective Broker transports on a memory network."""

    def setUp(self) -> None:
        super().setUp()
        self.caller_registry, self.callee_registry = CollectorRegistry(), CollectorRegistry()
        caller = Instruments(self.connector)
        caller.add_rpc_hooks(
            RpcMetrics(self.caller_registry, SERVER, self.clock.seconds, (0.5, 1.0), 10)
        )
        callee = Instruments(self.chat)
        callee.add_rpc_hooks(
            RpcMetrics(self.callee_registry, ("chat-1", "chat"), self.clock.seconds, (0.5,), 10)
        )
        self.join()

    def test_calls_and_serves_counted_on_each_side(self) -> None:
        """A call answered, one refused by the remote and one past its deadline count on the caller
        by peer and remote; the callee counts what it served, by calling peer."""
        self.assertEqual(self.successResultOf(self.call("echo", 1)), [1])
        self.failureResultOf(self.call("refuse", 409, "no"))
        late = self.call("later", timeout=1.0)
        self.clock.advance(1.0)
        self.flush()
        self.failureResultOf(late, RpcTimeout)
        calls = scrape(self.caller_registry)
        for remote, outcome in (("echo", "ok"), ("refuse", "error"), ("later", "timeout")):
            labels = {"peer": "chat-1", "remote": f"chatRemote.{remote}", "outcome": outcome}
            self.assertEqual(value(calls, "pomelo_rpc_calls_total", **labels), 1.0, labels)
        self.assertEqual(
            value(
                calls,
                "pomelo_rpc_call_duration_seconds_bucket",
                peer="chat-1",
                remote="chatRemote.later",
                le="1.0",
            ),
            1.0,
        )
        served = scrape(self.callee_registry)
        labels = {"peer": "connector-1", "remote": "chatRemote.echo", "outcome": "ok"}
        self.assertEqual(value(served, "pomelo_rpc_served_total", **labels), 1.0)
        labels = {"peer": "connector-1", "remote": "chatRemote.refuse", "outcome": "error"}
        self.assertEqual(value(served, "pomelo_rpc_served_total", **labels), 1.0)
