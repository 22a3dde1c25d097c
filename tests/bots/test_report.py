"""Load-test reports: the JSON summary, the text report and the progress line."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.bots.report import format_progress, format_report, summarize
from pomelo_twisted.bots.stats import Stats

SEND = "chat.chatHandler.send"
ENTER = "connector.entryHandler.enter"


def known_stats() -> Stats:
    """Latencies in whole tenths of a millisecond below 2.048 ms, where buckets are exact."""
    stats = Stats()
    for k in range(1, 21):
        stats.record_response(SEND, k / 10_000)  # 0.1 .. 2.0 ms
    stats.record_response(SEND, None, "timeout")
    stats.record_response(ENTER, 0.0005)
    stats.record_response(ENTER, 0.0005, "500")
    stats.record_response(ENTER, 0.0015)
    stats.record_response(ENTER, 0.0019)
    for _ in range(5):
        stats.record_bot_started()
    for _ in range(4):
        stats.record_bot_connected()
    for _ in range(3):
        stats.record_bot_finished()
    stats.record_connection_failure()
    stats.record_connection_failure()
    stats.record_kick()
    for route in ("onChat", "onChat", "onChat", "onAdd"):
        stats.record_push(route)
    stats.record_notify("chat.chatHandler.typing")
    stats.record_scenario_error("KeyError")
    return stats


def row(text: str, first: str) -> list[str]:
    """The cells of the line of ``text`` whose first cell is ``first``."""
    for line in text.splitlines():
        if line.strip().startswith(first):
            return [first, *line.strip()[len(first) :].split()]
    raise AssertionError(f"no line starting with {first!r} in:\n{text}")


class SummarizeTests(SynchronousTestCase):
    """summarize()."""

    def test_known_numbers(self) -> None:
        """Totals, rates, error rate and merged-histogram latencies of a known run."""
        summary = summarize(known_stats(), 5.0)
        self.assertEqual(summary["duration"], 5.0)
        self.assertEqual(
            summary["bots"],
            {
                "started": 5,
                "connected": 4,
                "finished": 3,
                "connection_failures": 2,
                "kicks": 1,
                "kick_reasons": {},
            },
        )
        self.assertEqual((summary["requests"], summary["errors"]), (25, 2))
        self.assertEqual(summary["error_rate"], 8.0)
        self.assertEqual(summary["rate"], 5.0)
        self.assertEqual(
            summary["latency_ms"],
            {"p50": 1.0, "p90": 1.9, "p99": 2.0, "max": 2.0, "mean": 1.058},
        )
        self.assertEqual(summary["errors_by_kind"], {"500": 1, "timeout": 1})
        self.assertEqual(summary["notifies"], {"chat.chatHandler.typing": 1})
        self.assertEqual(summary["pushes"], {"onAdd": 1, "onChat": 3})
        self.assertEqual(summary["pushes_total"], 4)
        self.assertEqual(summary["scenario_errors"], {"KeyError": 1})

    def test_routes(self) -> None:
        """Each route has its count, rate, percentiles, max, mean and errors by kind."""
        routes = summarize(known_stats(), 5.0)["routes"]
        self.assertEqual(list(routes), [SEND, ENTER])
        self.assertEqual(
            routes[SEND],
            {
                "count": 21,
                "rate": 4.2,
                "p50": 1.0,
                "p90": 1.8,
                "p99": 2.0,
                "max": 2.0,
                "mean": 1.05,
                "errors": {"timeout": 1},
            },
        )
        self.assertEqual(
            routes[ENTER],
            {
                "count": 4,
                "rate": 0.8,
                "p50": 0.5,
                "p90": 1.9,
                "p99": 1.9,
                "max": 1.9,
                "mean": 1.1,
                "errors": {"500": 1},
            },
        )

    def test_json_able(self) -> None:
        """The summary goes through JSON unchanged."""
        summary = summarize(known_stats(), 5.0)
        self.assertEqual(json.loads(json.dumps(summary)), summary)

    def test_empty_run(self) -> None:
        """Without requests: rate 0, latencies and error rate None, no routes."""
        summary = summarize(Stats(), 0.0)
        self.assertEqual((summary["requests"], summary["errors"], summary["rate"]), (0, 0, 0.0))
        self.assertIsNone(summary["error_rate"])
        self.assertEqual(set(summary["latency_ms"].values()), {None})
        self.assertEqual(summary["routes"], {})

    def test_route_without_latency(self) -> None:
        """A route whose requests all timed out has a count but no latencies."""
        stats = Stats()
        stats.record_response(SEND, None, "timeout")
        route = summarize(stats, 1.0)["routes"][SEND]
        self.assertEqual((route["count"], route["p99"], route["errors"]), (1, None, {"timeout": 1}))


class FormatReportTests(SynchronousTestCase):
    """format_report()."""

    def setUp(self) -> None:
        self.text = format_report(summarize(known_stats(), 5.0))

    def test_header(self) -> None:
        """The first lines give duration, bots, requests, rate, errors and latencies."""
        first, second = self.text.splitlines()[:2]
        for part in ("5.0s", "5 started", "3 finished", "requests 25", "rate 5.0/s"):
            self.assertIn(part, first)
        self.assertIn("errors 2 (8.00%)", first)
        self.assertEqual(second, "latency ms  p50 1.00  p90 1.90  p99 2.00  max 2.00  mean 1.06")

    def test_route_table(self) -> None:
        """One row per route and one for all routes: count, rate/s, p50/p90/p99/max, errors."""
        self.assertEqual(
            row(self.text, "route"),
            [
                "route",
                "count",
                "rate/s",
                "p50",
                "ms",
                "p90",
                "ms",
                "p99",
                "ms",
                "max",
                "ms",
                "errors",
            ],
        )
        self.assertEqual(
            row(self.text, SEND), [SEND, "21", "4.2", "1.00", "1.80", "2.00", "2.00", "1"]
        )
        self.assertEqual(
            row(self.text, ENTER), [ENTER, "4", "0.8", "0.50", "1.90", "1.90", "1.90", "1"]
        )
        self.assertEqual(
            row(self.text, "all routes"),
            ["all routes", "25", "5.0", "1.00", "1.90", "2.00", "2.00", "2"],
        )

    def test_table_aligned(self) -> None:
        """The route table's lines are as long as each other: columns line up."""
        lines = self.text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("route"))
        table = lines[start : start + 4]
        self.assertEqual(len({len(line) for line in table}), 1, "\n".join(table))
        header, send = table[0], table[1]
        self.assertEqual(header.index("count") + len("count"), send.index(" 21 ") + len(" 21"))

    def test_errors_pushes_and_counters(self) -> None:
        """Errors by route and code, pushes and notifies per route, scenario errors,
        connection failures and kicks are listed.
        """
        self.assertIn("errors by code", self.text)
        self.assertIn([SEND, "timeout", "1"], [line.split() for line in self.text.splitlines()])
        self.assertIn([ENTER, "500", "1"], [line.split() for line in self.text.splitlines()])
        lines = [line.split() for line in self.text.splitlines()]
        self.assertIn("pushes received", self.text)
        for cells in (["onChat", "3"], ["onAdd", "1"], ["total", "4"]):
            self.assertIn(cells, lines)
        self.assertIn(["chat.chatHandler.typing", "1"], lines)
        self.assertIn(["KeyError", "1"], lines)
        self.assertIn("connection failures 2", self.text.splitlines())
        self.assertIn("kicks 1", self.text.splitlines())

    def test_empty_run(self) -> None:
        """An empty run prints dashes for latencies and no route table."""
        text = format_report(summarize(Stats(), 0.0))
        self.assertIn("errors 0 (-)", text)
        self.assertIn("latency ms  p50 -  p90 -  p99 -  max -  mean -", text)
        self.assertNotIn("route", text)
        self.assertNotIn("pushes received", text)
        self.assertTrue(text.endswith("kicks 0\n"))

    def test_large_numbers_grouped(self) -> None:
        """Counts get thousands separators."""
        stats = Stats()
        for _ in range(1234):
            stats.record_response(SEND, 0.001)
        text = format_report(summarize(stats, 1.0))
        self.assertIn("requests 1,234  rate 1,234.0/s", text)
        self.assertEqual(row(text, SEND)[1:3], ["1,234", "1,234.0"])


class FormatProgressTests(SynchronousTestCase):
    """format_progress()."""

    def test_first_line(self) -> None:
        """Without a previous snapshot the rate counts from the start of the run."""
        self.assertEqual(
            format_progress(12.0, known_stats(), None, 5.0),
            "12.0s  bots 4/5  req/s 5  p50 1.0ms  p99 2.0ms  errors 2"
            "  connection failures 2  kicks 1",
        )

    def test_rate_since_previous(self) -> None:
        """req/s is the difference with the previous snapshot over the interval."""
        stats = Stats()
        stats.record_bot_started()
        stats.record_bot_connected()
        for _ in range(100):
            stats.record_response(SEND, 0.0002)
        previous = stats.copy()
        for _ in range(2468):
            stats.record_response(SEND, 0.0002)
        self.assertEqual(
            format_progress(3.0, stats, previous, 2.0),
            "3.0s  bots 1/1  req/s 1,234  p50 0.20ms  p99 0.20ms  errors 0",
        )

    def test_no_data(self) -> None:
        """No latencies yet: dashes; a zero interval: no rate."""
        self.assertEqual(
            format_progress(0.0, Stats(), None, 0.0),
            "0.0s  bots 0/0  req/s -  p50 -  p99 -  errors 0",
        )
