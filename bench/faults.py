"""Faults under load on a real cluster of the example game, with a result table.

``python bench/faults.py [--bots 100] [--only a,b,c,d] [--keep]`` runs each case on a
fresh copy of the example game (free loopback ports; master, 2 connectors, 2 chat
servers) with chat bots (``bench/chatbot.py``) running throughout:

a. kill -9 the master: the servers keep serving (the bots' requests keep succeeding);
   the master started again adopts them (``pomelo-twisted list`` shows them up, same pids).
b. kill -9 connector-server-1 (auto-restart turned on in the copy): only its clients
   drop (the bots of connector-server-2 see 0 errors); it comes back.
c. SIGSTOP chat-server-1 for 15 s: a probe client and bots in rooms that live on it
   get an error answer within their 10 s deadline (counted, with latency); bots in
   rooms of chat-server-2, on both connectors, see 0 errors; after SIGCONT the probe
   is answered again within a few seconds.
d. restart every server one by one (``pomelo-twisted restart ID``), first idle
   (start, restarts, ``stop``) then under load: every log (the master's and
   ``logs/*.log``) is grepped for tracebacks and lines above info (target 0).

Prints one row per expectation (PASS/FAIL, the figures) and exits 1 if one fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import Cluster, load_report

__all__ = ["Check", "grouped", "main", "rooms_on"]

STOP_SECONDS = 15.0
DEADLINE = 10.0  # the bots' request timeout


@dataclass
class Check:
    """One expectation of one case and what was measured."""

    case: str
    what: str
    ok: bool
    figures: str
    details: list[str] = field(default_factory=list)


def rooms_on(server_id: str, servers: Sequence[str], count: int, prefix: str) -> list[str]:
    """``count`` room names that the example's ``route_by_room`` sends to ``server_id``
    (``default_route``: crc32 of the room over the sorted ids)."""
    ordered = sorted(servers)
    found: list[str] = []
    k = 0
    while len(found) < count:
        rid = f"{prefix}room-{k}"
        if ordered[zlib.crc32(rid.encode()) % len(ordered)] == server_id:
            found.append(rid)
        k += 1
    return found


def accepts(target: str) -> bool:
    """Whether a TCP client endpoint ``tcp:HOST:PORT`` accepts a connection."""
    _, host, port = target.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def bot_summary(report: dict[str, Any]) -> str:
    """A report in one line: requests, errors by kind, scenario errors, checks, p99."""
    if not report:
        return "no report"
    latency = report.get("latency_ms") or {}
    return (
        f"{report.get('requests', 0)} req, {report.get('errors', 0)} err "
        f"{report.get('errors_by_kind') or ''} scen {report.get('scenario_errors') or {}} "
        f"checks {report.get('counters') or {}} bots {report.get('bots')} "
        f"p50 {latency.get('p50')} p99 {latency.get('p99')} ms"
    ).replace("  ", " ")


def clean(report: dict[str, Any]) -> bool:
    """No error, no scenario error, no gap or missing message, no connection failure."""
    return bool(report) and not (
        report.get("errors")
        or report.get("scenario_errors")
        or report.get("counters")
        or report.get("bots", {}).get("connection_failures")
    )


def wait_bots(cluster: Cluster, timeout: float = 120.0) -> None:
    """Wait for every bot process of the cluster to finish."""
    for process in cluster.bots:
        process.wait(timeout)


def log_check(case: str, cluster: Cluster, strict: bool = True) -> Check:
    """Tracebacks and lines above info in every log (a failure only when ``strict``: a
    fault may deserve a warning)."""
    found = cluster.problems()
    tracebacks = sum(len(t) for t, _ in found.values())
    above = sum(len(a) for _, a in found.values())
    details = [f"{name}: {line}" for name, (t, a) in found.items() for line in (*t, *a)]
    return Check(
        case,
        "logs: no traceback, nothing above info" + ("" if strict else " (informative)"),
        (tracebacks == 0 and above == 0) or not strict,
        f"{tracebacks} tracebacks, {above} lines above info", details,
    )  # fmt: skip


def case_master(cluster: Cluster, bots: int, out: Path) -> list[Check]:
    """a. kill -9 the master under load; start it again: it adopts the servers."""
    reports = [out / "a-c0.json", out / "a-c1.json"]
    for i, cid in enumerate(cluster.ids("connector")):
        cluster.start_bots(cid, bots, 35.0, reports[i], f"a{i}-", ramp_up=3.0)
    time.sleep(8.0)
    before = cluster.pids()
    assert cluster.master is not None
    os.kill(cluster.master.pid, signal.SIGKILL)
    cluster.master.wait()
    time.sleep(8.0)
    alive = cluster.pids()
    began = time.monotonic()
    cluster.start(timeout=60.0)
    adopted_in = time.monotonic() - began
    states = cluster.listing()
    after = cluster.pids()
    wait_bots(cluster)
    got = [load_report(r) for r in reports]
    log = cluster.master_log().read_text(errors="replace")
    return [
        Check("a", "servers survive the master's kill -9", alive == before,
              f"{len(alive)}/{len(before)} server pids alive 8 s later"),
        Check("a", "bots keep succeeding (both connectors)", all(clean(r) for r in got),
              "; ".join(bot_summary(r) for r in got)),
        Check("a", "a restarted master adopts them (list: up, same pids)",
              all(states.get(s) == "up" for s in cluster.ids()) and after == before,
              f"list {states}; adopted in {adopted_in:.1f} s; "
              f"{log.count('adopting it')} 'adopting it' lines; pids unchanged {after == before}"),
        log_check("a", cluster, strict=False),
    ]  # fmt: skip


def case_connector(cluster: Cluster, bots: int, out: Path) -> list[Check]:
    """b. kill -9 connector-server-1 under load: only its clients drop; it comes back."""
    victim, other = cluster.ids("connector")
    reports = [out / "b-victim.json", out / "b-other.json"]
    cluster.start_bots(victim, bots, 30.0, reports[0], "b0-", ramp_up=3.0)
    cluster.start_bots(other, bots, 30.0, reports[1], "b1-", ramp_up=3.0)
    time.sleep(8.0)
    pid = cluster.pids()[victim]
    os.kill(pid, signal.SIGKILL)
    back_in = cluster.wait_for(
        lambda: cluster.pids().get(victim, pid) != pid and accepts(cluster.target(victim)),
        30.0,
        f"{victim} to come back",
    )
    listed = time.monotonic()
    states = cluster.listing()
    list_took = time.monotonic() - listed
    wait_bots(cluster)
    dropped, kept = (load_report(r) for r in reports)
    return [
        Check("b", "bots of the other connector: 0 errors", clean(kept), bot_summary(kept)),
        Check("b", "bots of the killed connector drop (informative)", True, bot_summary(dropped)),
        Check("b", "auto-restart brings it back", states.get(victim) == "up",
              f"accepting clients {back_in:.1f} s after kill -9 "
              f"(`list` then took {list_took:.1f} s); list {states}"),
        log_check("b", cluster, strict=False),
    ]  # fmt: skip


def probe_timeline(path: Path) -> list[dict[str, Any]]:
    """The probe's JSON lines."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def case_sigstop(cluster: Cluster, bots: int, out: Path) -> list[Check]:
    """c. SIGSTOP chat-server-1 for 15 s under load: fast errors, others unaffected, recovery."""
    chats = cluster.ids("chat")
    victim = chats[0]
    hot = rooms_on(victim, chats, max(1, bots // 10), "c-hot-")
    cold = rooms_on(chats[1], chats, max(1, bots // 10), "c-cold-")
    c1, c2 = cluster.ids("connector")
    duration = 45.0
    probe_log = out / "c-probe.jsonl"
    probe_log.unlink(missing_ok=True)
    runs = {
        "hot@c1": (c1, out / "c-hot.json", {"POMELO_BOT_ROOMS": ",".join(hot)}),
        "cold@c1": (c1, out / "c-cold1.json", {"POMELO_BOT_ROOMS": ",".join(cold)}),
        "cold@c2": (c2, out / "c-cold2.json", {"POMELO_BOT_ROOMS": ",".join(cold)}),
    }
    for name, (cid, report, env) in runs.items():
        cluster.start_bots(cid, bots, duration, report, f"{name}-", ramp_up=3.0, env=env)
    cluster.start_bots(
        c2, 1, duration, out / "c-probe.json", "probe-", ramp_up=0.0, scenario="ProbeBot",
        env={"POMELO_BOT_ROOMS": hot[0], "POMELO_PROBE_LOG": str(probe_log)},
    )  # fmt: skip
    time.sleep(10.0)
    pid = cluster.pids()[victim]
    stopped = time.time()
    os.kill(pid, signal.SIGSTOP)
    time.sleep(STOP_SECONDS)
    resumed = time.time()
    os.kill(pid, signal.SIGCONT)
    wait_bots(cluster)
    got = {name: load_report(report) for name, (_, report, _) in runs.items()}
    timeline = probe_timeline(probe_log)
    sends = [p for p in timeline if p["route"].endswith(".send")]
    errors = [p for p in sends if stopped - 6 <= p["t"] <= resumed and p["code"] != 200]
    late = [p for p in sends if p["t"] + p["latency"] > stopped and p["t"] < resumed]
    timed_out = [p for p in late if not isinstance(p["code"], int)]
    fast = [p for p in errors if p["latency"] < 1.0]
    first_fast = min((p["t"] + p["latency"] - stopped for p in fast), default=None)
    back = [p for p in sends if p["t"] >= resumed and p["code"] == 200]
    recovered = (back[0]["t"] + back[0]["latency"] - resumed) if back else None
    after_errors = [p for p in sends if p["code"] != 200 and p["t"] >= resumed + 5.0]
    lat = sorted(p["latency"] for p in errors)
    codes: dict[str, int] = {}
    for p in errors:
        codes[str(p["code"])] = codes.get(str(p["code"]), 0) + 1
    hot_report = got["hot@c1"]
    hot_timeouts = (hot_report.get("errors_by_kind") or {}).get("timeout", 0)
    lat_text = (
        f"latency median {statistics.median(lat):.3f} s, max {lat[-1]:.3f} s" if lat else "none"
    )
    return [
        Check("c", "requests to the stopped server: an error within the 10 s deadline",
              bool(errors) and not timed_out and lat[-1] < DEADLINE and not hot_timeouts,
              f"probe: {len(errors)} error answers {codes}, {lat_text}; first fast (<1 s) "
              f"error {first_fast if first_fast is None else round(first_fast, 2)} s after "
              f"SIGSTOP; {len(timed_out)} timeouts; bots in its rooms: "
              f"{bot_summary(hot_report)}"),
        Check("c", "rooms of the other chat server: 0 errors (both connectors)",
              clean(got["cold@c1"]) and clean(got["cold@c2"]),
              f"c1: {bot_summary(got['cold@c1'])} | c2: {bot_summary(got['cold@c2'])}"),
        Check("c", "after SIGCONT it serves again within 5 s",
              recovered is not None and recovered < 5.0 and not after_errors,
              f"probe's first success {recovered if recovered is None else round(recovered, 2)}"
              f" s after SIGCONT; {len(after_errors)} errors from SIGCONT+5 s on; "
              f"{len(sends)} probe sends in all"),
        log_check("c", cluster, strict=False),
    ]  # fmt: skip


def restart_all(cluster: Cluster) -> list[str]:
    """``pomelo-twisted restart ID`` for every server in turn, each back up before the next."""
    notes = []
    for server in cluster.ids():
        old = cluster.pids().get(server)
        began = time.monotonic()
        code, text = cluster.cli("restart", server)
        cluster.wait_for(
            lambda s=server, o=old: (
                cluster.pids().get(s, o) != o and cluster.listing().get(s) == "up"
            ),
            60.0,
            f"{server} up again",
        )
        notes.append(f"{server}: exit {code}, up in {time.monotonic() - began:.1f} s")
        if code != 0:
            notes.append(text.strip())
    return notes


def case_restarts(cluster: Cluster, bots: int, out: Path, loaded: bool) -> list[Check]:
    """d. restart every server one by one, then stop the cluster; grep every log."""
    name = "d-load" if loaded else "d-idle"
    reports = [out / f"{name}-c0.json", out / f"{name}-c1.json"]
    if loaded:
        for i, cid in enumerate(cluster.ids("connector")):
            cluster.start_bots(cid, bots, 60.0, reports[i], f"{name}{i}-", ramp_up=3.0)
        time.sleep(5.0)
    notes = restart_all(cluster)
    if loaded:
        wait_bots(cluster)
    code, _ = cluster.cli("stop", timeout=60.0)
    assert cluster.master is not None
    try:
        exit_code: int | None = cluster.master.wait(30)
    except subprocess.TimeoutExpired:
        exit_code = None
    checks = [
        Check(name, "every server restarted and up again", all(" exit 0," in n for n in notes),
              "; ".join(notes) + f"; stop: exit {code}, master exit {exit_code}"),
        log_check(name, cluster),
    ]  # fmt: skip
    if loaded:
        got = [load_report(r) for r in reports]
        checks.append(
            Check(name, "bots during restarts (informative)", True,
                  " | ".join(bot_summary(r) for r in got))
        )  # fmt: skip
    return checks


def enable_auto_restart(cluster: Cluster, server_id: str) -> None:
    """Turn ``auto-restart`` on for one server in the copy's servers.json."""
    path = cluster.game / "config" / "servers.json"
    config = json.loads(path.read_text())
    for env in config.values():
        for group in env.values():
            for entry in group:
                if entry["id"] == server_id:
                    entry["auto-restart"] = True
    path.write_text(json.dumps(config, indent=2))


def run_case(
    name: str, body: Callable[[Cluster], list[Check]], keep: bool, prepare: Any = None
) -> list[Check]:
    """One case on a fresh cluster, always cleaned up; a crash is a failed check."""
    cluster = Cluster()
    try:
        if prepare is not None:
            prepare(cluster)
        cluster.start()
        return body(cluster)
    except Exception as exc:
        return [Check(name, "the case ran", False, f"{type(exc).__name__}: {exc}")]
    finally:
        if keep:
            print(f"case {name}: kept {cluster.workdir}")
        cluster.close(keep=keep)


def grouped(lines: Sequence[str]) -> list[tuple[int, str]]:
    """Log lines without their timestamps, numbers and addresses, counted (most first)."""
    counts: dict[str, int] = {}
    for line in lines:
        name, _, text = line.partition(": ")
        text = re.sub(r"^\S+ ", "", text)  # the timestamp
        text = re.sub(r"(?<![\w-])\d+(\.\d+)*(:\d+)?", "N", text)  # not in server ids
        key = f"{name}: {text}"
        counts[key] = counts.get(key, 0) + 1
    return sorted(((n, key) for key, n in counts.items()), reverse=True)


def print_table(checks: Sequence[Check]) -> None:
    """One row per check; the offending log lines after it, grouped and counted."""
    for check in checks:
        print(f"{check.case:<7} {'PASS' if check.ok else 'FAIL'}  {check.what}")
        print(f"{'':<14}{check.figures}")
        for count, line in grouped(check.details):
            print(f"{'':<16}{count} x {line}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases; 0 when every expectation held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=100, help="bots per group (100)")
    parser.add_argument("--only", default="a,b,c,d", help="cases to run (a,b,c,d)")
    parser.add_argument("--out", type=Path, default=Path("faults-out"), help="reports folder")
    parser.add_argument("--keep", action="store_true", help="keep the clusters' folders")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    bots, out, keep = args.bots, args.out, args.keep
    checks: list[Check] = []
    if "a" in only:
        checks += run_case("a", lambda c: case_master(c, bots, out), keep)
    if "b" in only:
        checks += run_case(
            "b",
            lambda c: case_connector(c, bots, out),
            keep,
            lambda c: enable_auto_restart(c, c.ids("connector")[0]),
        )
    if "c" in only:
        checks += run_case("c", lambda c: case_sigstop(c, bots // 2, out), keep)
    if "d" in only:
        checks += run_case("d-idle", lambda c: case_restarts(c, bots, out, False), keep)
        checks += run_case("d-load", lambda c: case_restarts(c, bots, out, True), keep)
    print_table(checks)
    (out / "faults.json").write_text(json.dumps([c.__dict__ for c in checks], indent=2))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
