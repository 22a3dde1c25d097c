"""The request and RPC hooks count and time each request and call as it ends."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import HandlerError, RpcTimeout
from pomelo_twisted.interfaces import IRequestHooks, IRpcHooks
from pomelo_twisted.metrics.hooks import OTHER, UNKNOWN_ROUTE, RequestMetrics, RpcMetrics
from pomelo_twisted.metrics.series import Latency
from pomelo_twisted.metrics.summary import bucket_quantile, metrics_summary

from .helpers import scrape, value

AGENT: Any = None
SERVER = ("connector-server-1", "connector")
BUCKETS = (0.1, 0.5, 1.0)


def failed(exc: Exception) -> Failure:
    try:
        raise exc
    except Exception:
        return Failure()


class RequestMetricsTests(SynchronousTestCase):
    """RequestMetrics: requests and notifies by route and outcome, request latency."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.registry = CollectorRegistry()
        self.hooks = RequestMetrics(self.registry, SERVER, self.clock.seconds, BUCKETS, 3)

    def request(self, route: str, outcome: object, took: float = 0.0, notify: bool = False) -> None:
        context, end = self.hooks.request_started(AGENT, route, notify, {"rid": "r"})
        self.assertEqual(context, {"rid": "r"})
        assert end is not None
        self.clock.advance(took)
        end(outcome)

    def test_provides_the_interface(self) -> None:
        """RequestMetrics is an IRequestHooks."""
        self.assertTrue(verifyObject(IRequestHooks, self.hooks))

    def test_counts_by_route_and_outcome_when_the_request_ends(self) -> None:
        """Each request is counted under its route and outcome once it ends, not before."""
        _, end = self.hooks.request_started(AGENT, "chat.chatHandler.send", False, None)
        total = "pomelo_client_requests_total"
        self.assertEqual(value(scrape(self.registry), total, route="chat.chatHandler.send"), 0)
        assert end is not None
        end({"code": 200})
        self.request("chat.chatHandler.send", failed(HandlerError(500, "no room")))
        self.request("chat.chatHandler.send", {"code": 200})
        samples = scrape(self.registry)
        self.assertEqual(value(samples, total, route="chat.chatHandler.send", outcome="ok"), 2.0)
        self.assertEqual(value(samples, total, route="chat.chatHandler.send", outcome="500"), 1.0)

    def test_latency_histogram(self) -> None:
        """The time from start to end is observed in the route's latency histogram."""
        self.request("connector.entryHandler.entry", {}, took=0.3)
        self.request("connector.entryHandler.entry", {}, took=0.05)
        samples = scrape(self.registry)
        name = "pomelo_client_request_duration_seconds"
        route = "connector.entryHandler.entry"
        self.assertEqual(value(samples, f"{name}_bucket", route=route, le="0.1"), 1.0)
        self.assertEqual(value(samples, f"{name}_bucket", route=route, le="0.5"), 2.0)
        self.assertEqual(value(samples, f"{name}_count", route=route), 2.0)
        self.assertAlmostEqual(value(samples, f"{name}_sum", route=route), 0.35)

    def test_notifies_counted_apart(self) -> None:
        """A notify counts in pomelo_client_notifies_total, not as a request."""
        self.request("chat.chatHandler.send", None, notify=True)
        samples = scrape(self.registry)
        route = "chat.chatHandler.send"
        self.assertEqual(
            value(samples, "pomelo_client_notifies_total", route=route, outcome="ok"), 1.0
        )
        self.assertEqual(
            value(samples, "pomelo_client_requests_total", route=route, outcome="ok"), 0.0
        )

    def test_unknown_routes_share_one_label(self) -> None:
        """Requests answered 404 count under the route 'unknown', whatever they named."""
        self.request("no.such.route", {"code": 404, "msg": "x"})
        self.request("made.up.too", failed(HandlerError(404, "x")))
        samples = scrape(self.registry)
        total = "pomelo_client_requests_total"
        self.assertEqual(value(samples, total, route=UNKNOWN_ROUTE, outcome="404"), 2.0)
        self.assertEqual(value(samples, total, route="no.such.route", outcome="404"), 0.0)

    def test_routes_past_the_limit_count_as_other(self) -> None:
        """Past max_labels distinct routes, new routes count under 'other'."""
        for route in ("a.b.c", "a.b.d", "a.b.e", "a.b.f", "a.b.g"):
            self.request(route, {})
        samples = scrape(self.registry)
        total = "pomelo_client_requests_total"
        self.assertEqual(value(samples, total, route="a.b.e", outcome="ok"), 1.0)
        self.assertEqual(value(samples, total, route="a.b.f", outcome="ok"), 0.0)
        self.assertEqual(value(samples, total, route=OTHER, outcome="ok"), 2.0)

    def test_series_are_labelled_with_the_server(self) -> None:
        """Every series carries server_id and server_type."""
        self.request("a.b.c", {})
        sample = self.registry.get_sample_value(
            "pomelo_client_requests_total",
            {
                "server_id": "connector-server-1",
                "server_type": "connector",
                "route": "a.b.c",
                "outcome": "ok",
            },
        )
        self.assertEqual(sample, 1.0)


class RpcMetricsTests(SynchronousTestCase):
    """RpcMetrics: calls made and served by peer, remote and outcome, with latency."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.registry = CollectorRegistry()
        self.hooks = RpcMetrics(self.registry, SERVER, self.clock.seconds, BUCKETS, 2)

    def call(self, outcome: Failure | None, took: float = 0.0, served: bool = False) -> None:
        start = self.hooks.serve_started if served else self.hooks.call_started
        context, end = start("chat-server-1", "chatRemote", "add", None)
        self.assertIsNone(context)
        assert end is not None
        self.clock.advance(took)
        end(outcome)

    def test_provides_the_interface(self) -> None:
        """RpcMetrics is an IRpcHooks."""
        self.assertTrue(verifyObject(IRpcHooks, self.hooks))

    def test_calls_by_outcome(self) -> None:
        """A call answered is ok, one whose deadline passed a timeout, any other an error."""
        self.call(None, took=0.2)
        self.call(failed(RpcTimeout("late")), took=1.0)
        self.call(failed(ValueError("remote raised")))
        samples = scrape(self.registry)
        labels = {"peer": "chat-server-1", "remote": "chatRemote.add"}
        for outcome in ("ok", "timeout", "error"):
            self.assertEqual(
                value(samples, "pomelo_rpc_calls_total", outcome=outcome, **labels), 1.0
            )
        name = "pomelo_rpc_call_duration_seconds"
        self.assertEqual(value(samples, f"{name}_count", **labels), 3.0)
        self.assertAlmostEqual(value(samples, f"{name}_sum", **labels), 1.2)
        self.assertEqual(value(samples, "pomelo_rpc_served_total", outcome="ok", **labels), 0.0)

    def test_served_calls(self) -> None:
        """A call served counts in pomelo_rpc_served_total with its latency."""
        self.call(None, took=0.4, served=True)
        samples = scrape(self.registry)
        labels = {"peer": "chat-server-1", "remote": "chatRemote.add"}
        self.assertEqual(value(samples, "pomelo_rpc_served_total", outcome="ok", **labels), 1.0)
        name = "pomelo_rpc_serve_duration_seconds"
        self.assertEqual(value(samples, f"{name}_bucket", le="0.5", **labels), 1.0)

    def test_pairs_past_the_limit_count_as_other(self) -> None:
        """Past max_labels peer and remote pairs, new pairs count under 'other'."""
        for method in ("a", "b", "c", "d"):
            _, end = self.hooks.call_started("p", "s", method, None)
            assert end is not None
            end(None)
        samples = scrape(self.registry)
        self.assertEqual(
            value(samples, "pomelo_rpc_calls_total", peer=OTHER, remote=OTHER, outcome="ok"), 2.0
        )
        self.assertEqual(
            value(samples, "pomelo_rpc_calls_total", peer="p", remote="s.b", outcome="ok"), 1.0
        )

    def test_summary(self) -> None:
        """The stats summary sums calls, errors and timeouts, and has per-route quantiles."""
        self.call(None)
        self.call(failed(RpcTimeout("late")))
        self.call(failed(ValueError("no")))
        requests = RequestMetrics(self.registry, SERVER, self.clock.seconds, BUCKETS, 10)
        for took in (0.05, 0.05, 0.3, 0.7):
            _, end = requests.request_started(AGENT, "a.b.c", False, None)
            assert end is not None
            self.clock.advance(took)
            end({})
        summary = metrics_summary(requests, self.hooks)
        self.assertEqual(set(summary), {"requests", "routes", "rpc"})
        self.assertEqual(summary["requests"], 4)
        self.assertEqual(summary["rpc"], {"calls": 3, "errors": 1, "timeouts": 1})
        route = summary["routes"]["a.b.c"]
        self.assertEqual(route["count"], 4)
        self.assertAlmostEqual(route["p50"], 0.1)  # 2 of 4 in the first bucket: its top
        self.assertAlmostEqual(route["p99"], 0.5 + 0.5 * (3.96 - 3) / 1)
        backend = metrics_summary(None, self.hooks)
        self.assertEqual((backend["requests"], backend["routes"]), (0, {}))


class BucketQuantileTests(SynchronousTestCase):
    """bucket_quantile interpolates within cumulative buckets."""

    def test_interpolation(self) -> None:
        """Linear within the bucket holding the rank; 0.0 without observations; the
        highest finite bound in the +Inf bucket."""
        inf = float("inf")
        self.assertEqual(bucket_quantile(0.5, [(1.0, 0.0), (inf, 0.0)]), 0.0)
        self.assertAlmostEqual(bucket_quantile(0.5, [(1.0, 10.0), (inf, 10.0)]), 0.5)
        self.assertAlmostEqual(bucket_quantile(0.75, [(1.0, 2.0), (3.0, 4.0), (inf, 4.0)]), 2.0)
        self.assertEqual(bucket_quantile(0.99, [(1.0, 1.0), (inf, 10.0)]), 1.0)


class LatencyTests(SynchronousTestCase):
    """Latency: Prometheus' 'le' buckets as plain counts."""

    def test_bucket_bounds_are_inclusive(self) -> None:
        """A value equal to a bound counts in that bound's bucket; above all, in +Inf."""
        latency = Latency((0.1, 0.5))
        for seconds in (0.1, 0.10001, 0.5, 7.0):
            latency.observe(seconds)
        self.assertEqual(latency.cumulative(), [(0.1, 1), (0.5, 3), (float("inf"), 4)])
        self.assertEqual(latency.count, 4)
        self.assertAlmostEqual(latency.total, 7.70001)
