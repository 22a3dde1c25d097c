"""``--fail-if`` thresholds: parsing every form, and evaluating them against a summary."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.bots.report import summarize
from pomelo_twisted.bots.stats import Stats
from pomelo_twisted.bots.thresholds import METRICS, Threshold, evaluate, parse_thresholds

SEND = "chat.chatHandler.send"
ENTER = "connector.entryHandler.enter"


def one(spec: str) -> Threshold:
    (threshold,) = parse_thresholds(spec)
    return threshold


def summary(**changes: Any) -> dict[str, Any]:
    """A summary shaped like summarize()'s, with round numbers."""
    base: dict[str, Any] = {
        "duration": 10.0,
        "bots": {
            "started": 20,
            "connected": 18,
            "finished": 20,
            "connection_failures": 2,
            "kicks": 1,
        },
        "requests": 1000,
        "errors": 15,
        "error_rate": 1.5,
        "rate": 100.0,
        "latency_ms": {"p50": 3.5, "p90": 20.0, "p99": 63.2, "max": 120.0, "mean": 8.25},
        "errors_by_kind": {"500": 10, "timeout": 5},
        "routes": {
            SEND: {
                "count": 800,
                "rate": 80.0,
                "p50": 4.0,
                "p90": 25.0,
                "p99": 70.0,
                "max": 120.0,
                "mean": 9.0,
                "errors": {"500": 10, "timeout": 5},
            },
            ENTER: {
                "count": 200,
                "rate": 20.0,
                "p50": 1.0,
                "p90": 2.0,
                "p99": 3.0,
                "max": 4.0,
                "mean": 1.5,
                "errors": {},
            },
        },
        "notifies": {},
        "pushes": {"onChat": 300, "onAdd": 20},
        "pushes_total": 320,
        "scenario_errors": {"KeyError": 2},
    }
    base.update(changes)
    return base


class ParseTests(SynchronousTestCase):
    """parse_thresholds."""

    def test_spec_from_the_flag(self) -> None:
        """The example "p99>50ms,errors>0" gives two global thresholds."""
        self.assertEqual(
            parse_thresholds("p99>50ms,errors>0"),
            [
                Threshold("p99", ">", 50.0, None, "p99>50ms"),
                Threshold("errors", ">", 0.0, None, "errors>0"),
            ],
        )

    def test_every_metric(self) -> None:
        """Every documented metric parses, with its default unit."""
        self.assertEqual(
            set(METRICS),
            {
                "p50",
                "p90",
                "p99",
                "max",
                "mean",
                "errors",
                "error_rate",
                "rate",
                "requests",
                "connection_failures",
                "kicks",
                "pushes",
                "scenario_errors",
            },
        )
        for metric in METRICS:
            threshold = one(f"{metric}>7")
            self.assertEqual((threshold.metric, threshold.value), (metric, 7.0))

    def test_every_operator(self) -> None:
        """>, >=, < and <= are read (two-character ones not mistaken for one)."""
        for op in (">", ">=", "<", "<="):
            self.assertEqual(one(f"p90{op}5").op, op)

    def test_latency_units(self) -> None:
        """Latencies default to ms and convert s, us and µs to ms; case does not matter."""
        cases = {
            "p99>50": 50.0,
            "p99>50ms": 50.0,
            "p99>0.25s": 250.0,
            "p99>1500us": 1.5,
            "p99>1500µs": 1.5,
            "P99 > 2 MS": 2.0,
            "max>.5s": 500.0,
            "mean>3.": 3.0,
        }
        for spec, value in cases.items():
            self.assertAlmostEqual(one(spec).value, value, places=9, msg=spec)

    def test_rate_and_error_rate_units(self) -> None:
        """error_rate is in percent ("%" optional); rate in requests/s ("/s" optional)."""
        self.assertEqual(one("error_rate>1%").value, 1.0)
        self.assertEqual(one("error_rate>0.5").value, 0.5)
        self.assertEqual(one("rate<100").value, 100.0)
        self.assertEqual(one("rate<100/s").value, 100.0)

    def test_route_prefix(self) -> None:
        """ "ROUTE:metric..." limits latency, errors, error_rate, rate, requests to a route."""
        for metric in ("p50", "p90", "p99", "max", "mean", "errors", "error_rate", "rate"):
            threshold = one(f"{SEND}:{metric}>1")
            self.assertEqual((threshold.route, threshold.metric), (SEND, metric))
        self.assertEqual(one(f" {ENTER} : requests < 10 ").route, ENTER)

    def test_whitespace_tolerated(self) -> None:
        """Spaces around every part are ignored; text keeps the threshold as written."""
        thresholds = parse_thresholds("  p99 > 50 ms ,  errors >= 1 ")
        self.assertEqual([t.metric for t in thresholds], ["p99", "errors"])
        self.assertEqual([t.text for t in thresholds], ["p99 > 50 ms", "errors >= 1"])
        self.assertEqual(thresholds[0].value, 50.0)

    def test_empty_spec(self) -> None:
        """An empty or blank spec means no thresholds."""
        self.assertEqual(parse_thresholds(""), [])
        self.assertEqual(parse_thresholds("   "), [])

    def test_errors_name_the_bad_part(self) -> None:
        """Each malformed threshold raises ValueError quoting the part that is wrong."""
        cases = {
            "p95>50ms": "unknown metric 'p95'",
            "p99 50ms": "'p99 50ms' has no comparison",
            "p99=50ms": "'=' is not a comparison",
            "p99==50": "'=' is not a comparison",
            ">50": "no metric before '>'",
            "p99>": "bad value ''",
            "p99>fast": "bad value 'fast'",
            "p99>-5ms": "bad value '-5ms'",
            "p99>50 ms extra": "bad value '50 ms extra'",
            "p99>50min": "unit 'min' does not fit metric 'p99'",
            "errors>1ms": "unit 'ms' does not fit metric 'errors'",
            "error_rate>1ms": "unit 'ms' does not fit metric 'error_rate'",
            "rate<5%": "unit '%' does not fit metric 'rate'",
            "kicks>0%": "(units: none)",
            "p99>50ms,,errors>0": "empty threshold",
            "p99>50ms,": "empty threshold",
            ":p99>5": "empty route",
            "a:b:p99>5": "more than one ':'",
            "area:kicks>0": "'kicks' cannot be limited to a route",
            "area:pushes>0": "'pushes' cannot be limited to a route",
        }
        for spec, fragment in cases.items():
            with self.assertRaises(ValueError, msg=spec) as caught:
                parse_thresholds(spec)
            self.assertIn(fragment, str(caught.exception), spec)


class EvaluateTests(SynchronousTestCase):
    """evaluate: a threshold crosses when its condition holds."""

    def check(self, spec: str, data: dict[str, Any] | None = None) -> list[str]:
        return evaluate(parse_thresholds(spec), summary() if data is None else data)

    def test_crossed_latency(self) -> None:
        """p99 63.2 ms with --fail-if p99>50ms fails, described with both numbers."""
        self.assertEqual(self.check("p99>50ms"), ["p99 = 63.2 ms > 50 ms"])
        self.assertEqual(self.check("p99>0.05s"), ["p99 = 63.2 ms > 50 ms"])

    def test_not_crossed(self) -> None:
        """Thresholds whose condition is false pass: the list is empty."""
        spec = "p99>100ms, p50>=4, mean<8, max<=119.9, errors>15, requests<1000, rate<100"
        self.assertEqual(self.check(spec), [])

    def test_operators_at_the_boundary(self) -> None:
        """>= and <= cross at equality, > and < do not."""
        self.assertEqual(self.check("errors>15, errors<15"), [])
        self.assertEqual(
            self.check("errors>=15, errors<=15"), ["errors = 15 >= 15", "errors = 15 <= 15"]
        )

    def test_every_global_metric(self) -> None:
        """Counts come from the summary's totals, bots section, pushes and scenario errors."""
        spec = (
            "p50>1,p90>1,max>1,mean>1,errors>0,requests>999,rate>=100/s,"
            "connection_failures>1,kicks>0,pushes>=320,scenario_errors>1"
        )
        self.assertEqual(
            self.check(spec),
            [
                "p50 = 3.5 ms > 1 ms",
                "p90 = 20 ms > 1 ms",
                "max = 120 ms > 1 ms",
                "mean = 8.25 ms > 1 ms",
                "errors = 15 > 0",
                "requests = 1000 > 999",
                "rate = 100/s >= 100/s",
                "connection_failures = 2 > 1",
                "kicks = 1 > 0",
                "pushes = 320 >= 320",
                "scenario_errors = 2 > 1",
            ],
        )

    def test_error_rate(self) -> None:
        """error_rate is errors / requests in percent: 15 of 1000 is 1.5%."""
        self.assertEqual(self.check("error_rate>1%"), ["error_rate = 1.5% > 1%"])
        self.assertEqual(self.check("error_rate>1.5%"), [])
        self.assertEqual(self.check("error_rate>0.5%", summary(errors=0)), [])

    def test_per_route(self) -> None:
        """A route prefix reads that route's latency, errors, error_rate, rate and count."""
        self.assertEqual(
            self.check(
                f"{SEND}:p99>50ms,{ENTER}:p99>50ms,{SEND}:errors>10,{ENTER}:errors>0,"
                f"{SEND}:error_rate>1%,{ENTER}:rate<25,{SEND}:requests<1000"
            ),
            [
                f"{SEND} p99 = 70 ms > 50 ms",
                f"{SEND} errors = 15 > 10",
                f"{SEND} error_rate = 1.875% > 1%",
                f"{ENTER} rate = 20/s < 25/s",
                f"{SEND} requests = 800 < 1000",
            ],
        )

    def test_missing_route_crosses(self) -> None:
        """A per-route threshold on a route without requests fails: "no requests on ROUTE"."""
        self.assertEqual(
            self.check("area.playerHandler.move:p99>50ms, area.playerHandler.move:errors>0"),
            [
                "area.playerHandler.move:p99>50ms: no requests on area.playerHandler.move",
                "area.playerHandler.move:errors>0: no requests on area.playerHandler.move",
            ],
        )

    def test_no_data_crosses(self) -> None:
        """Latency thresholds without responses and error_rate without requests fail."""
        routes = summary()["routes"]
        routes[ENTER].update(p50=None, p90=None, p99=None, max=None, mean=None)
        empty_latency = dict.fromkeys(["p50", "p90", "p99", "max", "mean"])
        data = summary(requests=0, errors=0, latency_ms=empty_latency, routes=routes)
        self.assertEqual(
            self.check(f"p99>50ms, error_rate>1%, errors>0, {ENTER}:p99>1", data),
            [
                "p99>50ms: no responses",
                "error_rate>1%: no requests",
                f"{ENTER}:p99>1: no responses on {ENTER}",
            ],
        )

    def test_against_a_real_summary(self) -> None:
        """evaluate reads summarize()'s output, also after a JSON round trip."""
        stats = Stats()
        for i in range(1, 101):
            stats.record_response(SEND, i / 1000)
        stats.record_response(SEND, None, "timeout")
        data = json.loads(json.dumps(summarize(stats, 10.0)))
        # p99 is 99 ms, reported as the midpoint of its 64 µs bucket [98.944, 99.008) ms.
        self.assertEqual(self.check("p99>50ms,p99>100ms", data), ["p99 = 98.975 ms > 50 ms"])
        self.assertEqual(self.check(f"errors>0,{SEND}:rate<11", data)[0], "errors = 1 > 0")
        self.assertEqual(self.check(f"{SEND}:rate<11", data), [f"{SEND} rate = 10.1/s < 11/s"])
