"""Soak the example game's cluster: N chat bots for D minutes, the RSS of every server sampled.

``python bench/soak.py [--bots 1000] [--minutes 30] [--interval 10] [--out DIR]`` copies
the example game onto free loopback ports, starts the cluster (master, 2 connectors, 2
chat servers), runs half the bots on each connector (``bench/chatbot.py``: rooms of
10, one message every 0.5–1.5 s per bot, every push checked for order and gaps),
samples the RSS of every server process (and the master) every ``interval`` seconds
from ``/proc/<pid>/status``, writes ``rss.csv`` and ``soak.json`` into ``--out``, and prints
per server the first, last and highest RSS and the least-squares slope in KiB/min
(over the whole run and over its second half, after the warm-up), then the bots'
report: requests, errors by code, p50/p99 latency and the scenario's own checks.

Exits 1 when a bot saw an error, a gap or a connection failure, or a log holds a
traceback or a line above info.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import csv
import json
import time
from collections.abc import Sequence
from typing import Any

from bench.cluster import Cluster, load_report, rss_kb

__all__ = ["main", "merge_reports", "slope_per_minute", "summarize_run", "summarize_series"]


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, KiB) points, in KiB per minute (None if < 2 points)."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 60.0


def summarize_series(
    samples: Sequence[tuple[float, str, int, int]], warmup: float = 180.0
) -> dict[str, dict[str, Any]]:
    """Per server: start/end/max RSS (KiB), the RSS once warmed up (first sample at or
    after ``warmup`` seconds), the slope over the run, over its second half and after the
    warm-up, and how many pids it had (a restart shows as 2)."""
    by_server: dict[str, list[tuple[float, int, int]]] = {}
    for t, server, pid, rss in samples:
        by_server.setdefault(server, []).append((t, pid, rss))
    summary: dict[str, dict[str, Any]] = {}
    for server, rows in by_server.items():
        points = [(t, float(rss)) for t, _, rss in rows]
        half = points[0][0] + (points[-1][0] - points[0][0]) / 2
        steady = [p for p in points if p[0] >= warmup]
        summary[server] = {
            "samples": len(rows),
            "pids": len({pid for _, pid, _ in rows}),
            "start_kb": rows[0][2],
            "end_kb": rows[-1][2],
            "max_kb": max(rss for _, _, rss in rows),
            "slope_kb_min": slope_per_minute(points),
            "slope_2nd_half_kb_min": slope_per_minute([p for p in points if p[0] >= half]),
            "warm_kb": int(steady[0][1]) if steady else None,
            "slope_warm_kb_min": slope_per_minute(steady),
        }
    return summary


def merge_reports(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The bots' reports of both connectors, added up (latency percentiles per process)."""
    merged: dict[str, Any] = {
        "requests": 0,
        "errors": 0,
        "errors_by_route": {},
        "errors_by_kind": {},
        "scenario_errors": {},
        "counters": {},
        "pushes_total": 0,
        "bots": {},
        "latency_ms": [],
    }
    for report in reports:
        merged["requests"] += report.get("requests", 0)
        merged["errors"] += report.get("errors", 0)
        merged["pushes_total"] += report.get("pushes_total", 0)
        merged["latency_ms"].append(report.get("latency_ms"))
        for key in ("errors_by_kind", "scenario_errors", "counters", "bots"):
            for name, value in (report.get(key) or {}).items():
                merged[key][name] = merged[key].get(name, 0) + value
        for route, stats in (report.get("routes") or {}).items():
            for code, count in (stats.get("errors") or {}).items():
                by_code = merged["errors_by_route"].setdefault(route, {})
                by_code[code] = by_code.get(code, 0) + count
    return merged


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def print_summary(series: dict[str, dict[str, Any]], bots: dict[str, Any]) -> None:
    """The RSS table and the bots' report, for people."""
    print(
        f"{'server':<20} {'start MiB':>9} {'warm MiB':>8} {'end MiB':>8} {'max MiB':>8} "
        f"{'slope KiB/min':>13} {'2nd half':>9} {'warm':>7} {'pids':>4}"
    )
    for server in sorted(series):
        row = series[server]
        warm = "-" if row["warm_kb"] is None else f"{row['warm_kb'] / 1024:.1f}"
        print(
            f"{server:<20} {row['start_kb'] / 1024:>9.1f} {warm:>8} {row['end_kb'] / 1024:>8.1f} "
            f"{row['max_kb'] / 1024:>8.1f} {_fmt(row['slope_kb_min']):>13} "
            f"{_fmt(row['slope_2nd_half_kb_min']):>9} {_fmt(row['slope_warm_kb_min']):>7} "
            f"{row['pids']:>4}"
        )
    print(
        f"bots: {bots['bots']}; requests {bots['requests']}, errors {bots['errors']} "
        f"by route/code {bots['errors_by_route']}, by kind {bots['errors_by_kind']}; "
        f"pushes {bots['pushes_total']}; scenario errors {bots['scenario_errors']}; "
        f"checks {bots['counters'] or '{} (no gap, none missing)'}"
    )
    for latency in bots["latency_ms"]:
        print(f"latency ms (one bot process): {latency}")


def summarize_run(folder: Path, warmup: float) -> int:
    """Print the summary of the run whose ``rss.csv`` and bots' reports are in ``folder``."""
    with (folder / "rss.csv").open(newline="") as f:
        samples = [
            (float(r["seconds"]), r["server"], int(r["pid"]), int(r["rss_kb"]))
            for r in csv.DictReader(f)
        ]
    reports = sorted(folder.glob("bots-*.json"))
    print_summary(
        summarize_series(samples, warmup), merge_reports([load_report(r) for r in reports])
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak; 0 when nothing went wrong."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=1000, help="bots in all (1000)")
    parser.add_argument("--minutes", type=float, default=30.0, help="run length (30)")
    parser.add_argument("--interval", type=float, default=10.0, help="RSS sample period, s (10)")
    parser.add_argument("--ramp-up", type=float, default=30.0, help="seconds to start the bots")
    parser.add_argument("--out", type=Path, default=Path("soak-out"), help="result folder")
    parser.add_argument("--warmup", type=float, default=180.0, help="seconds of warm-up (180)")
    parser.add_argument(
        "--summarize", metavar="DIR", type=Path, help="print the summary of a finished run"
    )
    args = parser.parse_args(argv)
    if args.summarize is not None:
        return summarize_run(args.summarize, args.warmup)
    args.out.mkdir(parents=True, exist_ok=True)
    duration = args.minutes * 60.0
    cluster = Cluster()
    samples: list[tuple[float, str, int, int]] = []
    try:
        cluster.start()
        connectors = cluster.ids("connector")
        reports = [args.out / f"bots-{cid}.json" for cid in connectors]
        share = [
            args.bots // len(connectors) + (i < args.bots % len(connectors))
            for i in range(len(connectors))
        ]
        bots = [
            cluster.start_bots(cid, n, duration, report, f"c{i}-", ramp_up=args.ramp_up)
            for i, (cid, n, report) in enumerate(zip(connectors, share, reports, strict=True))
        ]
        began = time.monotonic()
        master_pid = cluster.master.pid if cluster.master else 0
        with (args.out / "rss.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["seconds", "server", "pid", "rss_kb"])
            while any(b.poll() is None for b in bots):
                now = round(time.monotonic() - began, 1)
                pids = dict(cluster.pids(), master=master_pid)
                for server, pid in sorted(pids.items()):
                    rss = rss_kb(pid)
                    if rss is not None:
                        samples.append((now, server, pid, rss))
                        writer.writerow([now, server, pid, rss])
                f.flush()
                next_at = began + (now // args.interval + 1) * args.interval
                while time.monotonic() < next_at and any(b.poll() is None for b in bots):
                    time.sleep(0.5)
        series = summarize_series(samples, args.warmup)
        merged = merge_reports([load_report(r) for r in reports])
        problems = {name: found for name, found in cluster.problems().items() if any(found)}
        (args.out / "soak.json").write_text(
            json.dumps(
                {
                    "bots": args.bots,
                    "minutes": args.minutes,
                    "rss": series,
                    "report": merged,
                    "log_problems": problems,
                },
                indent=2,
            )
        )
        print_summary(series, merged)
        print(f"log tracebacks / lines above info: {problems or 'none'}")
        failed = (
            merged["errors"]
            or merged["scenario_errors"]
            or merged["counters"]
            or merged["bots"].get("connection_failures")
            or problems
        )
        return 1 if failed else 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
