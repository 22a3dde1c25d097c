"""Runtime benchmarks of the example chat game, against a bare Twisted echo in the same run.

``python bench/runtime.py [--quick] [--json FILE]`` starts ``twistd pomelo --app
example_game --type all`` (every server in one process, in-process RPC, heartbeats and
request rate limit off) and ``bench/bare_echo.py``, each pinned to CPU 1, the load on
CPU 0, and prints:

1. dispatch: ``connector.entryHandler.echo``, answered on the frontend;
2. forward: ``chat.chatHandler.echo``, frontend -> chat backend -> frontend;
   both as request/response rates of C connections × K in flight with a ~100-byte JSON
   body, alternating with the bare echo (same C × K, same payload), ratio = median rate
   over the bare median, every response checked;
3. broadcast: M members in one room, S senders each sending ``chat.chatHandler.send`` at
   R/s; pushes delivered per second, push latency, and missing / duplicate / reordered
   pushes per member. There is no bare equivalent: the ratio is delivered / expected.

Timings are only measured here, never asserted in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from bench.broadcast import BroadcastResult, Room
from bench.codec import progress
from bench.common import ROUTE, percentile, summarize
from bench.loopback import LoadCase, RunResult, run_alternating, run_reactor, summarize_runs
from bench.report import BUSY_WARNING, environment, format_header, format_rate_table
from bench.servers import (
    BENCH_CPU,
    ServerProcess,
    bare_argv,
    can_pin,
    free_port,
    game_argv,
    profiled_argv,
    start_server,
)

__all__ = [
    "FORWARD_ROUTE",
    "format_broadcast",
    "format_requests",
    "main",
    "round_ratios",
    "summarize_broadcast",
]

FORWARD_ROUTE = "chat.chatHandler.echo"
REQUEST_CASES = {"dispatch": ROUTE, "forward": FORWARD_ROUTE}
ROOM = "bench-room"
BENCH_CPU_WARNING = 0.7
"""Above this share of its CPU, the bench process may hold the broadcast back."""


# -- measuring ---------------------------------------------------------------------------


async def _measure(
    reactor: Any, servers: dict[str, ServerProcess], args: argparse.Namespace
) -> tuple[dict[str, list[RunResult]], list[BroadcastResult]]:
    game = servers["game"]
    requests: dict[str, list[RunResult]] = {}
    cases = {
        label: LoadCase(game, "ours", route)
        for label, route in REQUEST_CASES.items()
        if label in args.sections
    }
    if cases:
        cases["bare"] = LoadCase(servers["bare"], "bare")
        progress("\nrequest/response runs (alternating):")
        requests = await run_alternating(
            reactor,
            servers,
            args.connections,
            args.inflight,
            args.duration,
            args.runs,
            progress,
            cases,
        )
    results: list[BroadcastResult] = []
    if "broadcast" in args.sections:
        progress(f"\nbroadcast runs: opening a room of {args.members} members ...")
        room = await Room.open(reactor, game.port, args.members, ROOM)
        try:
            runs = [
                (0, min(1.0, args.duration / 5)),
                *((i, args.duration) for i in range(1, args.runs + 1)),
            ]
            for number, seconds in runs:
                result = await room.run(
                    reactor, number, args.senders, args.send_rate, seconds, game.cpu_seconds
                )
                if number:
                    results.append(result)
                    progress(_broadcast_line(result, args.runs))
        finally:
            await room.close()
    return requests, results


def _broadcast_line(r: BroadcastResult, runs: int) -> str:
    lat = sorted(r.latencies)
    return (
        f"  run {r.run}/{runs} broadcast: {r.rate:9,.0f} pushes/s ({r.delivered:,} of "
        f"{r.expected:,} in {r.seconds:.2f} s), p50 {percentile(lat, 0.5) * 1e3:.2f} ms, "
        f"p99 {percentile(lat, 0.99) * 1e3:.2f} ms; missing {r.missing}, duplicates "
        f"{r.duplicates}, reordered {r.reordered}, send errors {r.send_errors}; server CPU "
        f"{(r.server_cpu_s or 0.0) / r.cpu_wall_s:.0%}, "
        f"bench CPU {r.client_cpu_s / r.cpu_wall_s:.0%}"
    )


def round_ratios(runs: Sequence[RunResult], base: Sequence[RunResult]) -> list[float]:
    """Rate of each run over the rate of the baseline run of the same round (A B A B ...).

    Neighbouring runs share the machine's load of the moment, so these ratios vary less
    than the rates when other processes come and go.
    """
    return [r.rate / b.rate if b.rate else float("nan") for r, b in zip(runs, base, strict=True)]


def summarize_broadcast(results: Sequence[BroadcastResult]) -> dict[str, Any]:
    """Median and range of the push rates, pooled latency percentiles, integrity, CPU."""
    latencies = sorted(x for r in results for x in r.latencies)
    wall = sum(r.cpu_wall_s for r in results)
    delivered = sum(r.delivered for r in results)
    server = [r.server_cpu_s for r in results]
    server_cpu = None if None in server else sum(c or 0.0 for c in server)
    client_cpu = sum(r.client_cpu_s for r in results)
    expected = sum(r.expected for r in results)
    return {
        "rate": summarize([r.rate for r in results]),
        "expected_rate": results[0].expected_rate if results else 0.0,
        "delivered": delivered,
        "expected": expected,
        "delivered_ratio": delivered / expected if expected else float("nan"),
        **{
            key: sum(getattr(r, key) for r in results)
            for key in ("sent", "send_errors", "missing", "duplicates", "reordered", "stray")
        },
        "members_missing_max": max((r.members_missing for r in results), default=0),
        "drained": all(r.drained for r in results),
        "send_lag_max_ms": max((r.send_lag_max_s for r in results), default=0.0) * 1e3,
        "send_period_ms": 1e3 / results[0].send_rate if results else float("nan"),
        "latency_ms": {
            "p50": percentile(latencies, 0.50) * 1e3,
            "p99": percentile(latencies, 0.99) * 1e3,
            "max": (latencies[-1] if latencies else float("nan")) * 1e3,
            "samples": len(latencies),
        },
        "server_cpu_utilization": server_cpu / wall if server_cpu is not None and wall else None,
        "server_cpu_us_per_push": (
            server_cpu / delivered * 1e6 if server_cpu is not None and delivered else None
        ),
        "client_cpu_utilization": client_cpu / wall if wall else None,
        "client_cpu_us_per_push": client_cpu / delivered * 1e6 if delivered else None,
        "other_cpu_utilization_max": max(
            (r.other_cpu_s / r.cpu_wall_s for r in results), default=0.0
        ),
        "examples": [e for r in results for e in r.examples][:5],
        "runs": [r.to_dict() for r in results],
    }


def run_sections(args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    """Start both servers, measure, stop them whatever happens; the figures."""
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="pomelo-bench-") as tmp:
        try:
            port = free_port()
            argv = game_argv(port)
            if args.profile:
                argv = profiled_argv(argv, Path(args.profile).resolve())
            servers["game"] = start_server("game", argv, port, Path(tmp), pin)
            port = free_port()
            servers["bare"] = start_server("bare", bare_argv(port), port, Path(tmp), pin)
            ready = {kind: server.wait_ready() for kind, server in servers.items()}
            requests, broadcast = run_reactor(lambda reactor: _measure(reactor, servers, args))
        except BaseException:
            for server in servers.values():
                if server.proc.poll() is not None:
                    progress(f"{server.name} server output:\n{server.log_tail()}")
            raise
        finally:
            codes = {kind: server.stop() for kind, server in servers.items()}
    figures: dict[str, Any] = {"ready_s": ready, "exit_codes": codes}
    if requests:
        summaries = {kind: summarize_runs(runs) for kind, runs in requests.items()}
        base = summaries["bare"]["rate"]["median"]
        for kind, summary in summaries.items():
            summary["ratio_vs_bare"] = summary["rate"]["median"] / base
            summary["ratio_vs_bare_per_round"] = round_ratios(requests[kind], requests["bare"])
        figures["requests"] = summaries
    if broadcast:
        figures["broadcast"] = summarize_broadcast(broadcast)
    return figures


# -- report ------------------------------------------------------------------------------


def format_intro(args: argparse.Namespace) -> str:
    """What the run is about to do."""
    pushes = args.senders * args.send_rate * args.members
    return "\n".join(
        [
            "",
            "Runtime of the example chat game: twistd pomelo --app example_game --type all "
            "(heartbeat 0, request rate limit off, in-process RPC)",
            f"  1. dispatch  {ROUTE} (answered on the frontend)",
            f"  2. forward   {FORWARD_ROUTE} (frontend -> chat backend -> frontend)",
            "     bare: bench/bare_echo.py <- Int32StringReceiver client, the same ~100 B payload",
            f"     {args.connections} connections × {args.inflight} in flight, {args.duration:g} s "
            f"per run, {args.runs} run(s) each, alternating after a short warm-up; every "
            "response checked",
            f"  3. broadcast {args.members} members in one room, {args.senders} senders × "
            f"{args.send_rate:g} chat.chatHandler.send/s -> {pushes:,.0f} onChat pushes/s "
            f"expected; {args.duration:g} s per run, {args.runs} run(s) after a short warm-up",
        ]
    )


def format_requests(summaries: dict[str, dict[str, Any]]) -> str:
    """Sections 1 and 2: the rate table against bare and the ratios in words."""
    lines = ["", "1-2. Request/response rate (ratio = median / bare median)"]
    lines += format_rate_table(summaries, "bare")
    words = [
        f"{kind}/bare = {s['ratio_vs_bare']:.3f} (bare {1 / s['ratio_vs_bare']:.1f}× faster; "
        "per round " + ", ".join(f"{ratio:.3f}" for ratio in s["ratio_vs_bare_per_round"]) + ")"
        for kind, s in summaries.items()
        if kind != "bare"
    ]
    if "dispatch" in summaries and "forward" in summaries:
        d, f = summaries["dispatch"], summaries["forward"]
        words.append(f"forward/dispatch = {f['rate']['median'] / d['rate']['median']:.3f}")
        if d["server_cpu_us_per_request"] and f["server_cpu_us_per_request"]:
            extra = f["server_cpu_us_per_request"] - d["server_cpu_us_per_request"]
            words.append(f"forwarding costs {extra:+.1f} µs of server CPU per request")
    lines += [f"   => {w}" for w in words]
    other = max(s["other_cpu_utilization_max"] for s in summaries.values())
    lines.append(
        f"   CPU time no benchmark process accounts for: up to {other:.0%} of a CPU in a run"
        + (": WARNING, the machine was busy, figures are noisy" if other > BUSY_WARNING else "")
    )
    for kind, s in summaries.items():
        lines += [f"   {kind} problem: {example}" for example in s["examples"]]
    return "\n".join(lines)


def _share(utilization: float | None, per_push: float | None) -> str:
    if utilization is None or per_push is None:
        return "n/a"
    return f"{utilization:.0%} of a CPU ({per_push:.1f} µs per push)"


def _load_verdict(client: float, b: dict[str, Any]) -> str:
    lag, period = b["send_lag_max_ms"], b["send_period_ms"]
    problems = []
    if client > BENCH_CPU_WARNING:
        problems.append(f"the bench process used over {BENCH_CPU_WARNING:.0%} of its CPU")
    if lag > period:
        problems.append(
            f"a send fell {lag:.1f} ms behind schedule (over one period, {period:g} ms)"
        )
    if problems:
        return "MAY BE the bottleneck: " + "; ".join(problems)
    return (
        f"is not the bottleneck: the bench process used {client:.0%} of its CPU (under "
        f"{BENCH_CPU_WARNING:.0%}) and kept its send schedule (at most {lag:.1f} ms late, under "
        f"one period of {period:g} ms)"
    )


def format_broadcast(b: dict[str, Any]) -> str:
    """Section 3: push rate, delivered / expected, latency, integrity, CPU shares."""
    lat = b["latency_ms"]
    client = b["client_cpu_utilization"] or 0.0
    lines = [
        "",
        "3. Broadcast (no bare equivalent: a bare echo has no rooms; ratio = delivered / expected)",
        f"   pushes delivered/s median (min–max): {b['rate']['median']:,.0f} "
        f"({b['rate']['min']:,.0f}–{b['rate']['max']:,.0f}), expected "
        f"{b['expected_rate']:,.0f}/s; delivered / expected = {b['delivered']:,} / "
        f"{b['expected']:,} = {b['delivered_ratio']:.4f}",
        f"   push latency (send -> onChat received): p50 {lat['p50']:.2f} ms, p99 "
        f"{lat['p99']:.2f} ms, max {lat['max']:.2f} ms ({lat['samples']:,} samples); "
        f"latest send {b['send_lag_max_ms']:.1f} ms behind schedule",
        f"   missing {b['missing']} (members affected in the worst run: "
        f"{b['members_missing_max']}), duplicates {b['duplicates']}, reordered "
        f"{b['reordered']}, stray {b['stray']}; sends {b['sent']:,}, send errors "
        f"{b['send_errors']}; every run drained: {'yes' if b['drained'] else 'NO'}",
        f"   server process: {_share(b['server_cpu_utilization'], b['server_cpu_us_per_push'])}"
        f"; bench process (load): {_share(client, b['client_cpu_us_per_push'])}; other: up "
        f"to {b['other_cpu_utilization_max']:.0%}"
        + (
            " (WARNING: the machine was busy, figures are noisy)"
            if b["other_cpu_utilization_max"] > BUSY_WARNING
            else ""
        ),
        "   => the load generator " + _load_verdict(client, b),
    ]
    lines += [f"   broadcast problem: {example}" for example in b["examples"]]
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------

SECTIONS = ("dispatch", "forward", "broadcast")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shortens the runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("-c", "--connections", type=int, default=50)
    parser.add_argument("-k", "--inflight", type=int, default=2, help="in flight per connection")
    parser.add_argument("--duration", type=float, help="seconds per run")
    parser.add_argument("--runs", type=int, help="runs of each case")
    parser.add_argument("-m", "--members", type=int, default=200, help="broadcast room size")
    parser.add_argument("-s", "--senders", type=int, default=5, help="broadcast senders")
    parser.add_argument("-r", "--send-rate", type=float, default=10.0, help="sends/s per sender")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (bare runs with 1 and 2)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="run the game server under cProfile, stats to FILE"
    )
    args = parser.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if not 0 < args.senders <= args.members:
        parser.error("--senders must be between 1 and --members")
    if args.duration is None:
        args.duration = 1.0 if args.quick else 5.0
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, print, write ``--json``; 1 when a response mismatched or a push went wrong."""
    args = parse_args(argv)
    pin = can_pin()
    if pin:
        os.sched_setaffinity(0, {BENCH_CPU})
    env = environment(pin)
    print(format_header(env), flush=True)
    print(format_intro(args), flush=True)
    figures: dict[str, Any] = {"environment": env, "arguments": vars(args)}
    figures.update(run_sections(args, pin))
    if "requests" in figures:
        print(format_requests(figures["requests"]), flush=True)
    if "broadcast" in figures:
        print(format_broadcast(figures["broadcast"]), flush=True)
    if args.profile:
        print(f"\nthe game server ran under cProfile (slower): stats in {args.profile}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    bad = sum(s["mismatches"] + s["errors"] for s in figures.get("requests", {}).values())
    b = figures.get("broadcast")
    if b is not None:
        bad += sum(b[key] for key in ("send_errors", "missing", "duplicates", "reordered", "stray"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
