"""The benchmark's codec paths still produce correct output (no timing is checked here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from bench.broadcast import BroadcastResult, PushLedger, push_content, send_schedule
from bench.codec import (
    BareCodec,
    ConnectionCodec,
    OursCodec,
    codec_cases,
    stdlib_dumps,
    time_codec,
)
from bench.common import BODY, ROUTE, BareSplitter, bare_frame, bare_payload, body_for
from bench.loopback import RunResult, summarize_runs
from bench.runtime import format_broadcast, format_requests, round_ratios, summarize_broadcast
from bench.runtime import parse_args as runtime_args
from bench.servers import game_argv, profiled_argv
from bench.suite import format_summary as format_suite_summary
from bench.suite import summarize as summarize_suite
from bench.wsframe import format_report as format_wsframe_report
from bench.wsframe import run_cases as run_wsframe_cases
from pomelo_twisted.serializers import JsonSerializer


class CodecSmokeTests(SynchronousTestCase):
    """One round of each codec variant of ``bench/codec.py``."""

    def setUp(self) -> None:
        self.json = JsonSerializer()

    def test_body_size(self) -> None:
        """The benchmark body is about 100 bytes of JSON and the bare payload is its JSON."""
        encoded = self.json.encode(BODY)
        self.assertTrue(90 <= len(encoded) <= 110, len(encoded))
        self.assertEqual(bare_payload(7), self.json.encode(body_for(7)))

    def test_ours_request_path(self) -> None:
        """The server side decodes the id, the route and the body the client side encoded."""
        codec = OursCodec(BODY, self.json.encode, self.json.decode)
        data = codec.client_request(300, BODY)
        self.assertEqual(codec.server_receive(data), [(300, ROUTE, BODY)])

    def test_ours_round_trip(self) -> None:
        """A round trip with orjson, stdlib json or no JSON returns the id and the body."""
        body_bytes = self.json.encode(BODY)
        for codec, expected in [
            (OursCodec(BODY, self.json.encode, self.json.decode), BODY),
            (OursCodec(BODY, stdlib_dumps, json.loads), BODY),
            (OursCodec(body_bytes), body_bytes),
        ]:
            for msg_id in (1, 127, 128, 70000):
                self.assertEqual(codec.round_trip(msg_id), (msg_id, expected))

    def test_connection_round_trip(self) -> None:
        """The state-machine variant answers each request with its id and body."""
        codec = ConnectionCodec(BODY)
        self.assertEqual(
            [codec.round_trip(i) for i in (1, 2, 500)], [(i, BODY) for i in (1, 2, 500)]
        )

    def test_bare_round_trip(self) -> None:
        """The baseline returns the same bytes, framed as a 4-byte length and the payload."""
        payload = self.json.encode(BODY)
        frame = bare_frame(payload)
        self.assertEqual(frame[:4], len(payload).to_bytes(4, "big"))
        self.assertEqual(BareCodec(payload).round_trip(1), payload)

    def test_bare_splitter_chunks(self) -> None:
        """Frames split across and within chunks come out whole and in order."""
        stream = bare_frame(b"first") + bare_frame(b"") + bare_frame(b"third")
        splitter = BareSplitter()
        frames = [f for i in range(len(stream)) for f in splitter.feed(stream[i : i + 1])]
        self.assertEqual(frames, [b"first", b"", b"third"])

    def test_every_case_runs(self) -> None:
        """The timing loop runs every variant the benchmark reports (the values go unchecked)."""
        cases = codec_cases(BODY)
        self.assertIn("bare", cases)
        for key, (_description, make) in cases.items():
            rates = time_codec(make, messages=20, repeats=2)
            self.assertEqual([type(rate) for rate in rates], [float, float], key)


def _broadcast_result(run: int, latencies: list[float], **changes: Any) -> BroadcastResult:
    figures: dict[str, Any] = {
        "run": run,
        "members": 4,
        "senders": 2,
        "send_rate": 5.0,
        "sent": 10,
        "send_ok": 10,
        "send_errors": 0,
        "expected": 40,
        "delivered": 40,
        "seconds": 1.0,
        "rate": 40.0,
        "expected_rate": 40.0,
        "missing": 0,
        "members_missing": 0,
        "duplicates": 0,
        "reordered": 0,
        "stray": 0,
        "drained": True,
        "send_lag_max_s": 0.001,
        "cpu_wall_s": 1.0,
        "client_cpu_s": 0.25,
        "server_cpu_s": 0.5,
        "other_cpu_s": 0.0,
        "examples": [],
        "latencies": latencies,
    }
    figures.update(changes)
    return BroadcastResult(**figures)


def _run_result(kind: str, rate: float) -> RunResult:
    return RunResult(
        kind=kind,
        requests=int(rate),
        seconds=1.0,
        rate=rate,
        mismatches=0,
        rate_limited=0,
        errors=0,
        client_cpu_s=0.5,
        server_cpu_s=0.5,
        other_cpu_s=0.0,
        examples=[],
        latencies=[0.001, 0.002],
    )


class RuntimeSmokeTests(SynchronousTestCase):
    """The pure parts of ``bench/runtime.py`` and ``bench/broadcast.py`` (no server, no timing)."""

    def test_send_schedule(self) -> None:
        """Each sender sends rate × duration times, one period apart, staggered evenly."""
        schedule = send_schedule(senders=2, rate=10.0, duration=0.5)
        self.assertEqual([len(times) for times in schedule], [5, 5])
        self.assertEqual(schedule[0][:2], [0.0, 0.1])
        self.assertAlmostEqual(schedule[1][0], 0.05)
        self.assertEqual(send_schedule(senders=1, rate=10.0, duration=0.01), [[0.0]])

    def test_push_content(self) -> None:
        """The content of a send names its run, sender, sequence number and send time."""
        self.assertEqual(push_content(3, 1, 7, 2.5), {"r": 3, "s": 1, "n": 7, "t": 2.5})

    def test_ledger_in_order(self) -> None:
        """Every push once and in order: nothing missing, duplicated or reordered."""
        ledger = PushLedger(members=2, senders=2)
        for member in (0, 1):
            for seq in (1, 2, 3):
                for sender in (0, 1):
                    ledger.record(member, sender, seq)
        self.assertEqual(ledger.received, 12)
        self.assertEqual(ledger.missing([3, 3]), [0, 0])
        self.assertEqual((ledger.duplicates, ledger.reordered, ledger.stray), ([0, 0], [0, 0], 0))

    def test_ledger_problems(self) -> None:
        """Missing, duplicate, reordered and stray pushes are each counted per member."""
        ledger = PushLedger(members=2, senders=1)
        for seq in (1, 3, 2, 3):  # 2 after 3: reordered; 3 again: duplicate
            ledger.record(0, 0, seq)
        ledger.record(1, 0, 1)
        ledger.record(1, 5, 1)  # no such sender
        ledger.record(1, 0, "x")  # not a sequence number
        self.assertEqual(ledger.received, 4)
        self.assertEqual(ledger.duplicates, [1, 0])
        self.assertEqual(ledger.reordered, [1, 0])
        self.assertEqual(ledger.stray, 2)
        self.assertEqual(ledger.missing([3]), [0, 2])
        self.assertEqual(ledger.missing([4]), [1, 3])

    def test_round_ratios(self) -> None:
        """Each run's rate over the baseline run of the same round."""
        runs = [_run_result("dispatch", rate) for rate in (10.0, 30.0)]
        base = [_run_result("bare", rate) for rate in (20.0, 60.0)]
        self.assertEqual(round_ratios(runs, base), [0.5, 0.5])

    def test_summarize_and_format_broadcast(self) -> None:
        """Runs pool into one summary, and the report prints it."""
        results = [
            _broadcast_result(1, [0.001, 0.003]),
            _broadcast_result(2, [0.002], rate=30.0, delivered=39, missing=1, members_missing=1),
        ]
        summary = summarize_broadcast(results)
        self.assertEqual(summary["rate"], {"median": 35.0, "min": 30.0, "max": 40.0})
        self.assertEqual((summary["delivered"], summary["expected"]), (79, 80))
        self.assertEqual((summary["missing"], summary["members_missing_max"]), (1, 1))
        self.assertEqual(summary["latency_ms"]["p50"], 2.0)
        self.assertEqual(summary["server_cpu_utilization"], 0.5)
        self.assertEqual(len(summary["runs"]), 2)
        json.dumps(summary)
        text = format_broadcast(summary)
        self.assertIn("delivered / expected = 79 / 80", text)
        self.assertIn("is not the bottleneck", text)
        late = summarize_broadcast([_broadcast_result(1, [0.1], send_lag_max_s=0.5)])
        self.assertIn("MAY BE the bottleneck", format_broadcast(late))

    def test_format_requests(self) -> None:
        """The request table has one row per case and a ratio against bare."""
        summaries = {
            kind: summarize_runs([_run_result(kind, rate)])
            for kind, rate in (("dispatch", 10.0), ("forward", 5.0), ("bare", 20.0))
        }
        for summary in summaries.values():
            summary["ratio_vs_bare"] = summary["rate"]["median"] / 20.0
            summary["ratio_vs_bare_per_round"] = [summary["ratio_vs_bare"]]
        text = format_requests(summaries)
        self.assertIn("dispatch/bare = 0.500", text)
        self.assertIn("forward/dispatch = 0.500", text)

    def test_arguments(self) -> None:
        """Defaults match the documented sizes; --quick shortens the runs."""
        args = runtime_args([])
        self.assertEqual(
            (args.connections, args.inflight, args.duration, args.runs), (50, 2, 5.0, 3)
        )
        self.assertEqual((args.members, args.senders, args.send_rate), (200, 5, 10.0))
        quick = runtime_args(["--quick", "--sections", "broadcast"])
        self.assertEqual((quick.duration, quick.runs, quick.sections), (1.0, 1, ["broadcast"]))

    def test_game_argv(self) -> None:
        """The game server runs every server type, heartbeats and rate limit off."""
        argv = game_argv(4321)
        self.assertIn("tcp:4321:interface=127.0.0.1", argv)
        self.assertEqual(argv[argv.index("--type") + 1], "all")
        self.assertEqual(argv[argv.index("--request-rate") + 1], "0")
        profiled = profiled_argv(argv, Path("/tmp/x.prof"))
        self.assertEqual(profiled[1:4], ["-m", "cProfile", "-o"])
        self.assertEqual(profiled[5:], argv)


class WsFrameBenchSmokeTests(SynchronousTestCase):
    """``bench/wsframe.py``: every case echoes the right frame (its own check) and reports."""

    def test_every_case_runs_and_echoes(self) -> None:
        """A tiny run of every case completes (a wrong echo raises) and formats a report."""
        figures = run_wsframe_cases(messages=20, repeats=1)
        self.assertEqual(set(figures["cases"]), {"ours", "ours_transport", "autobahn"})
        report = format_wsframe_report({"cpu_busy_before": {"cpu0": 0.1}, **figures})
        self.assertIn("ours/autobahn", report)


class SuiteSummaryTests(SynchronousTestCase):
    """``bench/suite.py``'s summary of the runs of one scenario (no server is started)."""

    def test_medians_ratio_cost_and_problems(self) -> None:
        """Medians and ranges, ours/pinus, server µs per request, summed correctness counters."""
        spec = {"mode": "echo", "contenders": ["ours", "pinus"]}
        runs = {
            "ours": [
                {"rate": r, "server_cpu": 0.9, "p50": 1.0, "p99": 2.0} for r in (30e3, 45e3, 40e3)
            ],
            "pinus": [{"rate": 20e3, "server_cpu": 1.0, "mismatches": 1}],
        }
        summary = summarize_suite(runs, spec)
        ours = summary["contenders"]["ours"]
        self.assertEqual((ours["median"], ours["min"], ours["max"]), (40e3, 30e3, 45e3))
        self.assertAlmostEqual(summary["ours/pinus"], 2.0)
        self.assertAlmostEqual(ours["server_us_per_op"], 0.9 / 40e3 * 1e6)
        self.assertEqual(summary["contenders"]["pinus"]["correctness"]["mismatches"], 1)
        self.assertIn("PROBLEMS {'mismatches': 1}", format_suite_summary("echo", summary))

    def test_broadcast_max_generator_bound(self) -> None:
        """A search whose failed steps all had the generator's core full is flagged."""
        spec = {"mode": "broadcast-max", "contenders": ["ours"]}

        def run(failed_load: float) -> dict[str, Any]:
            steps = [
                {"ok": True, "loadgen_cpu": 0.5},
                {"ok": False, "loadgen_cpu": failed_load},
            ]
            return {"push_rate": 40e3, "server_cpu": 0.5, "steps": steps}

        bound = summarize_suite({"ours": [run(0.97)]}, spec)["contenders"]["ours"]
        free = summarize_suite({"ours": [run(0.60)]}, spec)["contenders"]["ours"]
        self.assertEqual((bound["generator_bound"], free["generator_bound"]), (True, False))
        self.assertAlmostEqual(bound["server_us_per_op"], 12.5)
