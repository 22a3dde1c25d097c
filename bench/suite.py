"""The benchmark suite: ours against pinus and the bare floors, in one run.

``python bench/suite.py [--scenarios a,b] [--rounds 3] [--duration 10] [--quick] [--json FILE]``

Every contender (:mod:`bench.contenders`: our cluster, pinus 1.7.4, the bare Twisted
Pomelo echo, the bare Node echo) is started once and pinned to CPU 1; the load
generator (``bench/loadgen/loadgen.js``, Node, independent of both) runs on CPU 0.
For each scenario the contenders are measured in alternation (A B C A B C ...) so
that drift cancels, and the report gives medians, min–max, the ratios ours/pinus and
ours/floor, latency percentiles from the generator's full histograms, every process's
CPU, and the correctness counters (mismatches, errors; missing, duplicate and
reordered pushes) that must all be 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.contenders import (
    LOADGEN,
    Floor,
    NodeFloor,
    OursCluster,
    PinusCluster,
    cpu_seconds,
    describe,
    new_workdir,
    rss_kb,
)

ECHO = "connector.entryHandler.echo"
CHAT_ECHO = "chat.chatHandler.echo"
ENTRY = "connector.entryHandler.entry"
LOAD_CPU = 0


def scenarios(quick: bool) -> dict[str, dict[str, Any]]:
    """Every scenario: what the generator does and which contenders it compares."""
    many = 300 if quick else 1000
    return {
        "echo-local-tcp-100": {
            "mode": "echo", "transport": "tcp", "clients": 100, "route": ECHO,
            "contenders": ["ours", "pinus", "floor", "node-floor"],
        },
        "echo-local-tcp-1000": {
            "mode": "echo", "transport": "tcp", "clients": many, "route": ECHO,
            "contenders": ["ours", "pinus", "floor", "node-floor"],
        },
        "echo-local-ws-100": {
            "mode": "echo", "transport": "ws", "clients": 100, "route": ECHO,
            "contenders": ["ours", "pinus", "node-floor-ws"],
        },
        "echo-forward-tcp-100": {
            "mode": "echo", "transport": "tcp", "clients": 100, "route": CHAT_ECHO,
            "entry": True, "contenders": ["ours", "pinus"],
        },
        "echo-forward-tcp-1000": {
            "mode": "echo", "transport": "tcp", "clients": many, "route": CHAT_ECHO,
            "entry": True, "contenders": ["ours", "pinus"],
        },
        "broadcast": {
            "mode": "broadcast", "members": 200, "senders": 5, "rate": 10,
            "contenders": ["ours", "pinus"],
        },
        "idle-5000": {
            "mode": "idle", "clients": 1000 if quick else 5000,
            "contenders": ["ours", "pinus", "floor"],
        },
        "broadcast-max": {
            "mode": "broadcast-max", "members": 300 if quick else 1000, "senders": 10,
            "rates": [1, 2, 4] if quick else [1, 2, 4, 8, 16], "p99_limit_ms": 50.0,
            "refine": 0 if quick else 2,
            "contenders": ["ours", "pinus"],
        },
        "cluster-2conn-forward": {
            "mode": "cluster", "transport": "tcp", "clients": 100, "route": CHAT_ECHO,
            "entry": True, "contenders": ["ours-2conn"],
        },
    }  # fmt: skip


def run_loadgen(args: list[str], timeout: float) -> dict[str, Any]:
    """``node loadgen.js ARGS`` on the load core; its JSON result."""
    argv = ["taskset", "-c", str(LOAD_CPU), "node", str(LOADGEN / "loadgen.js"), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _cpu(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in pids}


def measure(contender: Any, spec: dict[str, Any], duration: float, warmup: float) -> dict[str, Any]:
    """One run of ``spec`` against ``contender``, with the server's CPU and memory."""
    if spec["mode"] == "broadcast-max":
        return search_broadcast_max(contender, spec, duration, warmup)
    if spec["mode"] == "cluster":
        return measure_cluster(contender, spec, duration, warmup)
    port = str(contender.port)
    base = ["--host", "127.0.0.1", "--port", port, "--duration", str(duration)]
    mode = spec["mode"]
    if mode == "echo":
        args = ["echo", *base, "--warmup", str(warmup), "--transport", spec["transport"]]
        args += ["--clients", str(spec["clients"]), "--route", spec["route"]]
        if spec.get("entry"):
            args += ["--entry-route", ENTRY]
            if "uid_prefix" in spec:
                args += ["--entry-uid-prefix", spec["uid_prefix"]]
    elif mode == "broadcast":
        args = ["broadcast", *base, "--warmup", str(warmup), "--members", str(spec["members"])]
        args += ["--senders", str(spec["senders"]), "--rate", str(spec["rate"])]
        args += ["--room", f"bench-{int(time.time() * 1000)}"]
    else:
        args = ["idle", *base, "--clients", str(spec["clients"])]
    pids = contender.pids()
    before = _cpu(pids)
    rss_before = rss_kb(contender.frontend_pid())
    peak: list[int] = []
    sampler = None
    if mode == "idle":
        sampler = threading.Thread(target=_sample_rss, args=(contender, duration, peak))
        sampler.start()
    started = time.monotonic()
    result = run_loadgen(args, timeout=duration + warmup + 240)
    elapsed = time.monotonic() - started
    if sampler is not None:
        sampler.join()
    after = _cpu(pids)
    result["server_cpu"] = sum(after[p] - before[p] for p in pids) / max(elapsed, 1e-9)
    result["elapsed"] = elapsed
    if mode == "broadcast":  # the push latency is the one a player feels
        result["p50"], result["p99"] = result.get("push_p50"), result.get("push_p99")
    if mode == "idle":
        connected = max(1, int(result.get("connected", 0)))
        result["rss_before_kb"] = rss_before
        result["rss_peak_kb"] = max(peak or [rss_before])
        result["kb_per_connection"] = (result["rss_peak_kb"] - rss_before) / connected
    return result


def search_broadcast_max(
    contender: Any, spec: dict[str, Any], duration: float, warmup: float
) -> dict[str, Any]:
    """The highest push rate ``contender`` delivers with push p99 under the limit and
    nothing missing: the sender rates of ``spec`` in turn until one fails, then
    ``spec["refine"]`` bisections between the last rate that held and the one that
    failed (a step fails only when it fails twice: noise happens)."""
    best: dict[str, Any] = {"push_rate": 0.0, "steps": []}

    def attempt(rate: float) -> bool:
        step = {"mode": "broadcast", "members": spec["members"], "senders": spec["senders"]}
        for _attempt in range(2):
            result = measure(contender, step | {"rate": rate}, duration, warmup)
            p99 = result.get("push_p99") or 1e9
            ok = p99 < spec["p99_limit_ms"] and not result.get("missing")
            if ok:
                break
        best["steps"].append(
            {"rate_per_sender": rate, "ok": ok}
            | {k: result.get(k) for k in ("push_rate", "push_p50", "push_p99", "missing")}
            | {"loadgen_cpu": result.get("loadgen_cpu")}
        )
        if ok:
            best.update({k: result.get(k) for k in ("push_rate", "p50", "p99", "server_cpu")})
            best["loadgen_cpu"] = result.get("loadgen_cpu")
        return ok

    held, failed = 0.0, None
    for rate in spec["rates"]:
        if not attempt(rate):
            failed = rate
            break
        held = rate
    if failed is not None and held:
        for _ in range(spec.get("refine", 0)):
            middle = (held + failed) / 2
            if attempt(middle):
                held = middle
            else:
                failed = middle
    return best


def measure_cluster(
    contender: Any, spec: dict[str, Any], duration: float, warmup: float
) -> dict[str, Any]:
    """Echo ``spec`` through every frontend of ``contender`` at once (one generator
    each); the rates add up, the worst p99 counts."""
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def one(port: int) -> None:
        try:
            view = _PortView(contender, port)
            # Each generator's uids are its own: the example game lets a uid log in once in
            # the whole cluster, so the same uids on both frontends would kick each other.
            own = {"mode": "echo", "uid_prefix": f"lg{port}-"}
            results.append(measure(view, spec | own, duration, warmup))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=one, args=(int(f["clientPort"]),)) for f in contender.frontends
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    total: dict[str, Any] = {"rate": sum(r["rate"] for r in results), "per_frontend": results}
    total["p50"] = max(r["p50"] for r in results)
    total["p99"] = max(r["p99"] for r in results)
    total["server_cpu"] = max(r["server_cpu"] for r in results)
    total["loadgen_cpu"] = sum(r["loadgen_cpu"] for r in results)
    for key in ("mismatches", "errors", "timeouts", "closed"):
        total[key] = sum(int(r.get(key, 0) or 0) for r in results)
    return total


class _PortView:
    """A contender seen through one of its frontends' ports."""

    def __init__(self, contender: Any, port: int) -> None:
        self.contender = contender
        self.port = port

    def pids(self) -> list[int]:
        return list(self.contender.pids())

    def frontend_pid(self) -> int:
        return int(self.contender.frontend_pid())


def _sample_rss(contender: Any, duration: float, peak: list[int]) -> None:
    deadline = time.monotonic() + duration + 60
    pid = contender.frontend_pid()
    while time.monotonic() < deadline:
        peak.append(rss_kb(pid))
        time.sleep(0.5)
        if len(peak) > 4 and peak[-1] < peak[-2] * 0.9:  # the clients are leaving
            return


def key_figure(spec: dict[str, Any]) -> tuple[str, bool]:
    """The figure a scenario is judged on, and whether higher is better."""
    if spec["mode"] == "idle":
        return "kb_per_connection", False
    if spec["mode"] in ("broadcast", "broadcast-max"):
        return "push_rate", True
    return "rate", True


def _median(runs: list[dict[str, Any]], field: str) -> float | None:
    values = [r[field] for r in runs if isinstance(r.get(field), int | float)]
    return statistics.median(values) if values else None


def summarize(results: dict[str, list[dict[str, Any]]], spec: dict[str, Any]) -> dict[str, Any]:
    """Medians, ranges and ratios of one scenario's runs."""
    figure, _ = key_figure(spec)
    summary: dict[str, Any] = {"figure": figure, "contenders": {}}
    for name, runs in results.items():
        values = [r[figure] for r in runs if isinstance(r.get(figure), int | float)]
        # A process keeps the memory of earlier rounds (freed blocks are reused), so only
        # its first idle round shows the growth: the headline is the largest round.
        headline = max if spec["mode"] == "idle" else statistics.median
        summary["contenders"][name] = {
            "median": headline(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "p50_ms": _median(runs, "p50"),
            "p99_ms": _median(runs, "p99"),
            "server_cpu": _median(runs, "server_cpu"),
            "loadgen_cpu": _median(runs, "loadgen_cpu"),
            "server_us_per_op": _server_us_per_op(runs, figure),
            "generator_bound": _generator_bound(runs),
            "correctness": {
                key: sum(int(r.get(key, 0) or 0) for r in runs)
                for key in (
                    "mismatches",
                    "errors",
                    "timeouts",
                    "closed",
                    "missing",
                    "duplicates",
                    "reordered",
                    "dropped",
                    "connect_failures",
                )
            },
        }
    ours = summary["contenders"].get("ours", {}).get("median")
    for other in ("pinus", "floor"):
        theirs = summary["contenders"].get(other, {}).get("median")
        if ours and theirs:
            summary[f"ours/{other}"] = ours / theirs
    return summary


def _server_us_per_op(runs: list[dict[str, Any]], figure: str) -> float | None:
    """Median server CPU µs per request or push (None for memory figures)."""
    if figure not in ("rate", "push_rate"):
        return None
    values = [
        r["server_cpu"] / r[figure] * 1e6
        for r in runs
        if r.get(figure) and isinstance(r.get("server_cpu"), int | float)
    ]
    return statistics.median(values) if values else None


def _generator_bound(runs: list[dict[str, Any]]) -> bool:
    """Whether a broadcast-max search stopped where the generator's core was full (≥ 90 %):
    then the ceiling found is the generator's, not the server's."""
    for run in runs:
        failed = [step for step in run.get("steps", []) if not step["ok"]]
        if failed and all((step.get("loadgen_cpu") or 0) >= 0.9 for step in failed):
            return True
    return False


def format_summary(name: str, summary: dict[str, Any]) -> str:
    """One scenario's table."""
    figure = summary["figure"]
    lines = [f"{name}  ({figure})"]
    for contender, row in summary["contenders"].items():
        if row["median"] is None:
            lines.append(f"  {contender:14} no result")
            continue
        bad = {k: v for k, v in row["correctness"].items() if v}
        lines.append(
            f"  {contender:14} {row['median']:>12,.1f}  ({row['min']:,.1f}–{row['max']:,.1f})"
            f"  p50 {_ms(row['p50_ms'])}  p99 {_ms(row['p99_ms'])}"
            f"  server CPU {_pct(row['server_cpu'])}  load CPU {_pct(row['loadgen_cpu'])}"
            + (
                f"  {row['server_us_per_op']:.1f} µs server CPU each"
                if row["server_us_per_op"]
                else ""
            )
            + ("  (GENERATOR-BOUND: its core was full)" if row["generator_bound"] else "")
            + (f"  PROBLEMS {bad}" if bad else "")
        )
    ratios = [f"{k} = {v:.2f}×" for k, v in summary.items() if k.startswith("ours/")]
    if ratios:
        lines.append("  => " + ", ".join(ratios))
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def main(argv: list[str] | None = None) -> int:
    """Run the suite; exit status 1 when a correctness counter is not 0."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenarios", default="", help="comma-separated names (default all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, fewer clients")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument(
        "--contenders", default="", help="comma-separated subset of each scenario's contenders"
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="our contenders with Prometheus metrics on (a metricsPort on every server)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3.0, 1.0
    table = scenarios(args.quick)
    chosen = [s for s in args.scenarios.split(",") if s] or list(table)
    unknown = [s for s in chosen if s not in table]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(table)}")
    only = {c for c in args.contenders.split(",") if c}
    if only:
        for spec in table.values():
            spec["contenders"] = [c for c in spec["contenders"] if c in only]
    needed = {c for s in chosen for c in table[s]["contenders"]}
    if not (LOADGEN / "node_modules" / "ws").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LOADGEN, check=True)
    workdir = new_workdir()
    started: dict[str, Any] = {}
    record: dict[str, Any] = {"args": vars(args), "scenarios": {}}
    failed = False
    makers: dict[str, Callable[[], Any]] = {
        "ours": lambda: OursCluster(workdir, metrics=args.metrics),
        "pinus": lambda: PinusCluster(workdir),
        "floor": lambda: Floor(workdir),
        "node-floor": lambda: NodeFloor(workdir),
        "node-floor-ws": lambda: NodeFloor(workdir, ws=True),
        "ours-2conn": lambda: OursCluster(workdir, env="development", metrics=args.metrics),
    }
    try:
        for name in sorted(needed):
            started[name] = makers[name]()
            print(f"started {name} on port {started[name].port}", flush=True)
        record["contenders"] = [describe(c) for c in started.values()]
        for scenario in chosen:
            spec = table[scenario]
            names = spec["contenders"]
            results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            for round_ in range(args.rounds):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for contender in order:
                    run = measure(started[contender], spec, args.duration, args.warmup)
                    results[contender].append(run)
                    figure, _ = key_figure(spec)
                    print(
                        f"  {scenario} round {round_ + 1} {contender}: {figure} {run.get(figure)}",
                        flush=True,
                    )
            summary = summarize(results, spec)
            record["scenarios"][scenario] = {"spec": spec, "runs": results, "summary": summary}
            print(format_summary(scenario, summary), flush=True)
            failed = failed or any(
                any(row["correctness"].values()) for row in summary["contenders"].values()
            )
    finally:
        for contender in started.values():
            contender.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
