"""Plain-text report of the benchmark figures (the same dicts ``--json`` writes)."""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bench.common import cpu_ticks

__all__ = [
    "cpu_busy",
    "environment",
    "format_codec",
    "format_header",
    "format_loopback",
    "format_loopback_intro",
    "format_rate_table",
]

BUSY_WARNING = 0.2


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def cpu_busy(interval: float = 0.5) -> dict[str, float]:
    """How busy each CPU is over ``interval`` s before the benchmark (other load skews it)."""
    before = cpu_ticks()
    time.sleep(interval)
    after = cpu_ticks()
    busy: dict[str, float] = {}
    for name, (total, used) in after.items():
        total0, used0 = before.get(name, (total, used))
        if total > total0:
            busy[name] = (used - used0) / (total - total0)
    return busy


def environment(pinned: bool) -> dict[str, Any]:
    """Interpreter, library versions, CPUs, pinning and the load found before starting."""
    return {
        "cpu_busy_before": cpu_busy(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "twisted": _version("twisted"),
        "orjson": _version("orjson"),
        "cpus": os.cpu_count(),
        "pinned": pinned,
        "pinning": (
            "bench process on CPU 0, servers on CPU 1 (taskset)"
            if pinned
            else "not pinned (needs taskset and CPUs 0 and 1)"
        ),
    }


def format_header(env: dict[str, Any]) -> str:
    """The first lines of the report, with a warning when other processes use the CPUs."""
    busy = env["cpu_busy_before"]
    lines = [
        f"pomelo_twisted benchmarks: {env['implementation']} {env['python']}, "
        f"Twisted {env['twisted']}, orjson {env['orjson']}, {env['cpus']} CPUs; "
        f"{env['pinning']}",
        "CPU busy before starting: "
        + (", ".join(f"{name} {value:.0%}" for name, value in busy.items()) or "unknown"),
    ]
    if any(value > BUSY_WARNING for value in busy.values()):
        lines.append("WARNING: other processes are using the CPUs: the figures will be noisy")
    return "\n".join(lines)


def _range(summary: dict[str, float], digits: int = 0) -> str:
    return (
        f"{summary['median']:,.{digits}f} "
        f"({summary['min']:,.{digits}f}–{summary['max']:,.{digits}f})"
    )


def format_codec(codec: dict[str, Any]) -> str:
    """Section 1: one line per variant, msgs/s, µs per message and the ratio to bare."""
    lines = [
        "",
        "1. Codec throughput, in process (time.perf_counter, GC off while timing)",
        f"   {codec['message']}.",
        f"   Body: {codec['body_bytes']} B of JSON. The bare baseline frames the same bytes "
        "(no message layer, no JSON).",
        f"   {codec['messages_per_repeat']:,} messages × {codec['repeats']} repetitions; "
        "median (min–max); ratio = median / bare median.",
        "",
        f"   {'variant':<72} {'messages/s median (min–max)':>34} {'µs/msg':>7} {'vs bare':>8}",
    ]
    for result in codec["cases"].values():
        lines.append(
            f"   {result['description']:<72} {_range(result):>34} "
            f"{1e6 / result['median']:7.2f} {result['ratio_vs_bare']:7.3f}×"
        )
    cases = codec["cases"]
    full, bare = cases["ours_orjson"], cases["bare"]
    lines.append(
        f"   => ours (orjson) is {full['ratio_vs_bare']:.3f}× bare: bare is "
        f"{1 / full['ratio_vs_bare']:.1f}× faster; stdlib json instead of orjson: "
        f"{cases['ours_stdlib_json']['median'] / full['median']:.2f}× the orjson rate "
        f"(bare {1e6 / bare['median']:.2f} µs/msg, ours {1e6 / full['median']:.2f} µs/msg)"
    )
    return "\n".join(lines)


def format_loopback_intro(args: argparse.Namespace) -> str:
    """What section 2 is about to do."""
    return "\n".join(
        [
            "",
            "2. Loopback request/response rate (separate server process, client in this process)",
            "   ours: twistd pomelo --type echo (hybrid TCP+WS, heartbeat 0) <- "
            "pomelo_twisted.client, route connector.entryHandler.echo, ~100 B JSON body",
            "   bare: bench/bare_echo.py (Int32StringReceiver echo) <- Int32StringReceiver "
            "client, the same ~100 B payload",
            f"   {args.connections} connections × {args.inflight} requests in flight, "
            f"{args.duration:g} s per run, {args.runs} run(s) each, alternating ours/bare "
            "after a short warm-up; every response checked against its request",
        ]
    )


def _cpu(value: float | None, utilization: float | None) -> str:
    if value is None or utilization is None:
        return "n/a"
    return f"{value:6.1f} µs/req ({utilization:4.0%} of a CPU)"


def format_rate_table(
    summaries: Mapping[str, dict[str, Any]], baseline: str | None = None
) -> list[str]:
    """One line per summary (:func:`bench.loopback.summarize_runs`): rate, latency, CPU.

    With ``baseline``, a column gives each median rate over the baseline's.
    """
    width = max(6, *(len(kind) for kind in summaries))
    ratio_head = f" {'vs ' + baseline:>8}" if baseline else ""
    lines = [
        "",
        f"   {'server' if baseline is None else 'case':<{width}} {'req/s median (min–max)':>28}"
        f"{ratio_head} {'p50 ms':>7} {'p99 ms':>7} {'mismatches':>10} {'errors':>6}   "
        "client CPU / server CPU",
    ]
    for kind, s in summaries.items():
        lat = s["latency_ms"]
        ratio = (
            f" {s['rate']['median'] / summaries[baseline]['rate']['median']:7.3f}×"
            if baseline
            else ""
        )
        lines.append(
            f"   {kind:<{width}} {_range(s['rate']):>28}{ratio} "
            f"{lat['p50']:7.2f} {lat['p99']:7.2f} {s['mismatches']:>10} {s['errors']:>6}   "
            f"{_cpu(s['client_cpu_us_per_request'], s['client_cpu_utilization'])} / "
            f"{_cpu(s['server_cpu_us_per_request'], s['server_cpu_utilization'])}"
        )
    return lines


def format_loopback(loop: dict[str, Any]) -> str:
    """Section 2: rates, ratio, latency, CPU per request, mismatches."""
    lines = format_rate_table({kind: loop[kind] for kind in ("ours", "bare")})
    ratio = loop["ratio_ours_vs_bare"]
    lines.append(
        f"   => ours/bare = {ratio:.3f} (median rates; bare is {1 / ratio:.1f}× faster); "
        f"latency samples: ours {loop['ours']['latency_ms']['samples']:,}, "
        f"bare {loop['bare']['latency_ms']['samples']:,}"
    )
    other = max(loop[kind]["other_cpu_utilization_max"] for kind in ("ours", "bare"))
    lines.append(
        f"   CPU time no benchmark process accounts for (other processes, kernel): "
        f"up to {other:.0%} of a CPU in a run"
        + (": WARNING, the machine was busy, figures are noisy" if other > BUSY_WARNING else "")
    )
    limited = loop["ours"]["rate_limited"]
    if limited:
        lines.append(
            f"   NOTE: {limited:,} of ours' mismatches are code-429 answers: the server's default "
            "AgentConfig.request_rate (1000/s per connection, burst 2000) cut in"
        )
    for kind in ("ours", "bare"):
        for example in loop[kind]["examples"]:
            lines.append(f"   {kind} problem: {example}")
    return "\n".join(lines)
