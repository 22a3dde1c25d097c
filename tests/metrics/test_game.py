"""Metrics of the example game in memory: each metric moves as its events happen."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.discovery.membership import server_stats
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.metrics.listener import MetricsComponent
from pomelo_twisted.testing import GameConnection, GameHarness

from ..app.helpers import EXAMPLE_GAME, start_game
from .helpers import scrape, value

ENTRY = "connector.entryHandler.entry"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
CONNECTOR = "connector-server-1"


def game_without_metrics_ports(test: SynchronousTestCase) -> Path:
    """A copy of the example game whose servers have no metricsPort."""
    base = Path(tempfile.mkdtemp()) / "game"
    test.addCleanup(shutil.rmtree, base.parent, ignore_errors=True)
    shutil.copytree(EXAMPLE_GAME, base, ignore=shutil.ignore_patterns("logs", "__pycache__"))
    path = base / "config" / "servers.json"
    servers = json.loads(path.read_text())
    for entries in servers["development"].values():
        for entry in entries:
            entry.pop("metricsPort", None)
    path.write_text(json.dumps(servers))
    return base


class GameMetricsTests(SynchronousTestCase):
    """The example game: every server has a metricsPort, so metrics are on."""

    def setUp(self) -> None:
        self.game = start_game(self, EXAMPLE_GAME)
        self.connector = self.game.app(CONNECTOR)

    def registry(self, server_id: str = CONNECTOR) -> CollectorRegistry:
        component = self.game.app(server_id).components["metrics"]
        assert isinstance(component, MetricsComponent)
        return component.registry

    def samples(self, server_id: str = CONNECTOR) -> dict[Any, float]:
        return scrape(self.registry(server_id))

    def login(self, uid: str) -> GameConnection:
        conn = self.game.connect(CONNECTOR)
        self.assertEqual(conn.call(ENTRY, {"uid": uid, "rid": "r1"})["code"], 200)
        return conn

    def test_listens_on_the_metrics_port_of_each_entry(self) -> None:
        """Each server listens on its entry's metricsPort, on its host."""
        listened = {(port, interface) for port, _, _, interface in self.game.reactor.tcpServers}
        for port in (9150, 9151, 9250, 9251):
            self.assertIn((port, "127.0.0.1"), listened)

    def test_requests_by_route_and_outcome(self) -> None:
        """Local and forwarded requests count under their route and outcome."""
        conn = self.login("alice")
        self.assertEqual(conn.call(JOIN, {"rid": "r1"})["code"], 200)
        self.assertEqual(conn.call(JOIN, {})["code"], 500)
        self.assertEqual(conn.call("chat.chatHandler.nothing", {})["code"], 404)
        samples = self.samples()
        total = "pomelo_client_requests_total"
        self.assertEqual(value(samples, total, route=ENTRY, outcome="ok"), 1.0)
        self.assertEqual(value(samples, total, route=JOIN, outcome="ok"), 1.0)
        self.assertEqual(value(samples, total, route=JOIN, outcome="500"), 1.0)
        self.assertEqual(value(samples, total, route="unknown", outcome="404"), 1.0)
        self.assertEqual(
            value(samples, "pomelo_client_request_duration_seconds_count", route=JOIN), 2.0
        )

    def test_connections_sessions_and_close_reasons(self) -> None:
        """Connections and sessions open rise and fall; a close counts under its reason."""
        alice = self.login("alice")
        self.login("bob")
        samples = self.samples()
        self.assertEqual(value(samples, "pomelo_connections_open"), 2.0)
        self.assertEqual(value(samples, "pomelo_connections_opened_total"), 2.0)
        self.assertEqual(value(samples, "pomelo_sessions"), 2.0)
        alice.disconnect()
        samples = self.samples()
        self.assertEqual(value(samples, "pomelo_connections_open"), 1.0)
        self.assertEqual(value(samples, "pomelo_sessions"), 1.0)
        self.assertEqual(
            value(samples, "pomelo_connections_closed_total", reason="client closed"), 1.0
        )
        self.assertEqual(value(samples, "pomelo_slow_consumer_closes_total"), 0.0)
        self.assertEqual(value(samples, "pomelo_send_queue_bytes"), 0.0)
        self.assertEqual(value(samples, "pomelo_ordering_timeouts_total"), 0.0)
        self.assertEqual(value(samples, "pomelo_late_answers_total"), 0.0)

    def test_pushes_and_bytes(self) -> None:
        """A chat message pushed to two members counts two pushes and their bytes."""
        alice, bob = self.login("alice"), self.login("bob")
        for conn in (alice, bob):
            self.assertEqual(conn.call(JOIN, {"rid": "r1"})["code"], 200)
        got = bob.collect("onChat")
        self.assertEqual(alice.call(SEND, {"rid": "r1", "content": "hi"})["code"], 200)
        self.assertEqual(len(got), 1)
        samples = self.samples()
        self.assertEqual(value(samples, "pomelo_pushes_total"), 2.0)
        self.assertGreater(value(samples, "pomelo_push_bytes_total"), 2 * len(b"hi"))

    def test_process_and_runtime_metrics(self) -> None:
        """The registry has the process collector and the reactor lag, measured on the
        game's clock."""
        self.game.advance(1.0)
        samples = self.samples()
        self.assertIn(("process_cpu_seconds_total", ()), samples)
        self.assertGreaterEqual(value(samples, "pomelo_reactor_lag_seconds_count"), 1.0)

    def test_backend_has_no_client_series(self) -> None:
        """A backend has no request or connection series (in-process RPC is not hooked)."""
        samples = self.samples("chat-server-1")
        self.assertNotIn(("pomelo_connections_open", ()), samples)
        self.assertFalse(any(name.startswith("pomelo_client_") for name, _ in samples))

    def test_backends_count_the_requests_their_handlers_serve(self) -> None:
        """A forwarded request counts on the backend that handled it, by route and
        outcome, and its stats summary has it."""
        conn = self.login("alice")
        self.assertEqual(conn.call(JOIN, {"rid": "r1"})["code"], 200)
        self.assertEqual(conn.call(JOIN, {})["code"], 500)
        total = "pomelo_handled_requests_total"
        chats = ("chat-server-1", "chat-server-2")
        ok = sum(value(self.samples(c), total, route=JOIN, outcome="ok") or 0 for c in chats)
        failed = sum(value(self.samples(c), total, route=JOIN, outcome="500") or 0 for c in chats)
        self.assertEqual((ok, failed), (1.0, 1.0))
        counts = [server_stats(self.game.app(c))["requests"] for c in chats]
        self.assertEqual(sum(counts), 2)

    def test_server_stats_carry_the_summary(self) -> None:
        """server_stats adds requests, routes and rpc to the stats."""
        conn = self.login("alice")
        conn.call(JOIN, {"rid": "r1"})
        stats = server_stats(self.connector)
        self.assertEqual(stats["requests"], 2)
        self.assertEqual(set(stats["routes"]), {ENTRY, JOIN})
        self.assertEqual(stats["routes"][JOIN]["count"], 1)
        self.assertGreaterEqual(stats["routes"][JOIN]["p99"], stats["routes"][JOIN]["p50"])
        self.assertEqual(stats["rpc"], {"calls": 0, "errors": 0, "timeouts": 0})


class WithoutMetricsTests(SynchronousTestCase):
    """No metricsPort and no 'metrics' setting: no metrics at all."""

    def test_nothing_installed(self) -> None:
        """No component, no request hooks (the connector's handler is not wrapped), no
        listener beyond the client ports, no stats keys."""
        game = start_game(self, game_without_metrics_ports(self))
        for app in game.service.apps:
            self.assertNotIn("metrics", app.components)
            self.assertIsNone(app.instruments.requests)
            self.assertIsNone(app.instruments.rpc)
            self.assertNotIn("requests", server_stats(app))
        self.assertEqual(sorted(port for port, *_ in game.reactor.tcpServers), [3010, 3011])

    def test_setting_without_port(self) -> None:
        """The 'metrics' setting alone collects metrics without listening."""
        game = start_game(self, game_without_metrics_ports(self), settings={"metrics": True})
        conn = game.connect(CONNECTOR)
        conn.call(ENTRY, {"uid": "alice"})
        self.assertEqual(server_stats(game.app(CONNECTOR))["requests"], 1)
        self.assertEqual(sorted(port for port, *_ in game.reactor.tcpServers), [3010, 3011])

    def test_bad_setting_names_the_server(self) -> None:
        """A bad metrics setting fails the build naming the server and the setting."""
        with self.assertRaises(ConfigError) as caught:
            GameHarness(EXAMPLE_GAME, settings={"metrics_max_labels": -1})
        self.assertIn("metrics_max_labels", str(caught.exception))
        self.assertIn("server-", str(caught.exception))
