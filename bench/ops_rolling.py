"""Rolling restart and drain under load on a real cluster of the example game.

``python bench/ops_rolling.py [--bots 200] [--keep]`` on a fresh copy of the example game
(master, 2 connectors, 2 chat servers, free loopback ports):

1. ``--bots`` chat bots (``bench/chatbot.py``, half on each connector) chat in rooms on
   both chat servers; meanwhile ``pomelo-twisted restart --rolling chat`` restarts both
   chat servers one by one. Expected: 0 failed requests, 0 missing pushes, 0 gaps (the
   bots' own report), 0 disconnections, and both chat servers have new pids.
2. Half as many bots on connector-server-1, then ``pomelo-twisted drain
   connector-server-1``: every bot connected to it is kicked, each with the reason
   "server restarting"; the connector leaves the cluster.
3. Every log is grepped for tracebacks and lines above info.

Prints one row per expectation (PASS/FAIL, the figures) and exits 1 if one fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from bench.cluster import Cluster, load_report
from bench.faults import Check, bot_summary, clean, log_check, print_table, wait_bots

__all__ = ["main"]

#: Seconds the bots of the rolling restart run (long enough for two chat restarts).
ROLLING_RUN = 45.0
#: Seconds the bots of the drain run would run (the drain ends them sooner).
DRAIN_RUN = 40.0


def rolling(cluster: Cluster, bots: int, out: Path) -> list[Check]:
    """1. restart --rolling chat under load."""
    reports = [out / "rolling-c0.json", out / "rolling-c1.json"]
    half = max(1, bots // 2)
    for i, cid in enumerate(cluster.ids("connector")):
        cluster.start_bots(cid, half, ROLLING_RUN, reports[i], f"r{i}-", ramp_up=3.0)
    time.sleep(8.0)
    old = {sid: cluster.pids().get(sid) for sid in cluster.ids("chat")}
    began = time.monotonic()
    code, text = cluster.cli("restart", "--rolling", "chat", timeout=120.0)
    took = time.monotonic() - began
    new = {sid: cluster.pids().get(sid) for sid in cluster.ids("chat")}
    wait_bots(cluster, timeout=ROLLING_RUN + 60.0)
    cluster.bots.clear()
    got = [load_report(r) for r in reports]
    requests = sum(r.get("requests", 0) for r in got)
    errors = sum(r.get("errors", 0) for r in got)
    pushes = sum(sum((r.get("pushes") or {}).values()) for r in got)
    counters: dict[str, int] = {}
    for report in got:
        for name, n in (report.get("counters") or {}).items():
            counters[name] = counters.get(name, 0) + n
    restarted = all(old[s] is not None and new[s] not in (None, old[s]) for s in old)
    p99 = max(((r.get("latency_ms") or {}).get("p99") or 0) for r in got) if got else 0
    return [
        Check("rolling", "restart --rolling chat succeeded, new pids", code == 0 and restarted,
              f"exit {code} in {took:.1f} s; pids {old} -> {new}; {text.strip()[:200]}"),
        Check("rolling", "0 failed requests, 0 missing pushes (bots' report)",
              all(clean(r) for r in got) and errors == 0,
              f"{requests} requests, {errors} errors, {pushes} pushes received, "
              f"checks {counters or 'all 0'}, p99 {p99} ms",
              [bot_summary(r) for r in got]),
    ]  # fmt: skip


def drain(cluster: Cluster, bots: int, out: Path) -> list[Check]:
    """2. drain connector-server-1 with bots on it."""
    report_path = out / "drain-c0.json"
    half = max(1, bots // 2)
    cid = cluster.ids("connector")[0]
    cluster.start_bots(cid, half, DRAIN_RUN, report_path, "d0-", ramp_up=2.0)
    time.sleep(6.0)
    code, text = cluster.cli("drain", cid, "--grace", "5", timeout=60.0)
    wait_bots(cluster, timeout=DRAIN_RUN + 30.0)
    cluster.bots.clear()
    report = load_report(report_path)
    summary: dict[str, Any] = report.get("bots") or {}
    kicks = summary.get("kicks", 0)
    reasons = summary.get("kick_reasons") or {}
    gone = cid not in cluster.listing()
    return [
        Check("drain", f"drain {cid} succeeded and it left the cluster", code == 0 and gone,
              f"exit {code}: {text.strip()[:200]}"),
        Check("drain", 'every bot kicked, each with "server restarting"',
              kicks == half and reasons == {"server restarting": half},
              f"{kicks} kicks of {half} bots, reasons {reasons}", [bot_summary(report)]),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run both phases on one cluster; print the table; 1 if an expectation failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=200, help="bots of the rolling restart")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's folder")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="pomelo-ops-rolling-"))
    cluster = Cluster()
    checks: list[Check] = []
    try:
        cluster.start()
        checks += rolling(cluster, args.bots, out)
        checks += drain(cluster, args.bots, out)
        checks.append(log_check("logs", cluster))
    except Exception as exc:
        checks.append(Check("run", "the benchmark ran", False, f"{type(exc).__name__}: {exc}"))
    finally:
        if args.keep:
            print(f"kept {cluster.workdir} and {out}")
        cluster.close(keep=args.keep)
    print_table(checks)
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
