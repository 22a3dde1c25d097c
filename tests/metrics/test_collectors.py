"""The framework's counters, read at scrape time: RPC peers, breakers and call counters."""

from __future__ import annotations

from typing import Any, cast

from prometheus_client import CollectorRegistry
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.interfaces import IServerReactor
from pomelo_twisted.metrics.collectors import FrameworkCollector
from pomelo_twisted.rpc.breaker import BreakerSettings
from pomelo_twisted.rpc.pb import PbRpcTransport

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
