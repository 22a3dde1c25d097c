"""The fault cases of bench/scaleout.py (b, c, g; see its docstring), one function each."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from bench.cluster import load_report
from bench.faults import (
    Check,
    accepts,
    bot_summary,
    clean,
    grouped,
    probe_timeline,
    rooms_on,
    wait_bots,
)
from bench.scaleout_cases import log_check, log_problems
from bench.scaleout_clients import WHERE
from bench.scaleout_cluster import HOSTS, ScaleoutCluster

__all__ = ["case_chat_kill", "case_connector_kill", "case_etcd_stop"]


# -- b. kill -9 a chat server --------------------------------------------------------------


def chat_groups(
    cluster: ScaleoutCluster, bots: int, out: Path, case: str, duration: float, hot: str | None
) -> dict[str, Path]:
    """Start chat bots: ``bots`` in all, a quarter per (connector, chat server) pair, in
    rooms living on that chat server. Their reports by group name."""
    chats = cluster.ids("chat")
    per = max(1, bots // 4)
    reports: dict[str, Path] = {}
    for chat in chats:
        kind = "hot" if chat == hot else "cold"
        rooms = rooms_on(chat, chats, max(1, per // 10), f"{case}-{chat}-")
        for i, cid in enumerate(cluster.ids("connector")):
            name = f"{kind}@c{i + 1}" if hot else f"{chat}@c{i + 1}"
            report = out / f"{case}-{name}.json"
            reports[name] = report
            cluster.start_bots(
                cid,
                per,
                duration,
                report,
                f"{case}-{name}-",
                ramp_up=3.0,
                env={"POMELO_BOT_ROOMS": ",".join(rooms)},
            )
    return reports


def first_lines(
    cluster: ScaleoutCluster,
    peers: list[str],
    patterns: dict[str, str],
    since: dict[str, int],
    began: float,
    until: float,
) -> dict[str, dict[str, Any]]:
    """Per pattern name, per peer: (seconds after ``began``, the line) of the first line
    of the peer's log after ``since`` matching the pattern; polled every 0.05 s until all
    are found or ``until`` (monotonic)."""
    found: dict[str, dict[str, Any]] = {name: {} for name in patterns}
    compiled = {name: re.compile(pattern) for name, pattern in patterns.items()}
    while time.monotonic() < until and any(len(f) < len(peers) for f in found.values()):
        logs = cluster.logs()
        for peer in peers:
            log = f"logs/{peer}.log"
            lines = logs.get(log, "")[since.get(log, 0) :].splitlines()
            for name, pattern in compiled.items():
                if peer not in found[name]:
                    hit = next((ln for ln in lines if pattern.search(ln)), None)
                    if hit is not None:
                        found[name][peer] = (time.monotonic() - began, hit)
        time.sleep(0.05)
    return found


def case_chat_kill(cluster: ScaleoutCluster, bots: int, out: Path) -> list[Check]:
    """b. kill -9 chat-server-1 under bots: fast errors, peers drop it, restart, serve."""
    victim, other = cluster.ids("chat")
    hot_room = rooms_on(victim, cluster.ids("chat"), 1, "b-probe-")[0]
    duration = 30.0
    reports = chat_groups(cluster, bots, out, "b", duration, victim)
    probe_log = out / "b-probe.jsonl"
    probe_log.unlink(missing_ok=True)
    cluster.start_bots(
        cluster.ids("connector")[1],
        1,
        duration,
        out / "b-probe.json",
        "b-probe-",
        ramp_up=0.0,
        scenario="ProbeBot",
        env={
            "POMELO_BOT_ROOMS": hot_room,
            "POMELO_PROBE_LOG": str(probe_log),
            "POMELO_PROBE_ROUTE": WHERE,
            "POMELO_PROBE_INTERVAL": "0.1",
        },
    )
    time.sleep(10.0)
    pid = cluster.pids()[victim]
    since = cluster.log_offsets()
    killed, began = time.time(), time.monotonic()
    os.kill(pid, signal.SIGKILL)
    peers = [*cluster.ids("connector"), other]
    patterns = {
        "link": f"lost the connection to server {victim}\\b",
        "view": f"server {victim} is (removed|up)",
    }
    seen = first_lines(cluster, peers, patterns, since, began, began + cluster.ttl + 2.0)
    restarted = cluster.wait_new_pid(victim, pid) + (time.monotonic() - began)
    wait_bots(cluster)
    # Without its supervisor, the lease decides: kill 127.0.0.3's supervisor, then the server.
    os.kill(cluster.supervisors[HOSTS[victim]].pid, signal.SIGKILL)
    pid = cluster.pids()[victim]
    since = cluster.log_offsets()
    began = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    removed = first_lines(
        cluster,
        peers,
        {"removed": f"server {victim} is removed"},
        since,
        began,
        began + cluster.ttl + 5.0,
    )["removed"]
    limit = cluster.ttl + 1.0  # the lease, the 0.5 s removal grace, etcd's 0.5 s expiry tick
    got = {name: load_report(path) for name, path in reports.items()}
    timeline = [p for p in probe_timeline(probe_log) if p["route"] == WHERE]
    errors = [p for p in timeline if p["t"] >= killed - 1 and p["code"] != 200]
    served = [p for p in timeline if p["t"] > killed and p["code"] == 200]
    back = (served[0]["t"] + served[0]["latency"] - killed) if served else None
    worst = max((p["latency"] for p in errors), default=None)
    codes: dict[str, int] = {}
    for p in errors:
        codes[str(p["code"])] = codes.get(str(p["code"]), 0) + 1
    late = [p for p in timeline if p["t"] > killed + (back or 0) + 1 and p["code"] != 200]
    link, view = (
        ", ".join(f"{peer} {t:.2f} s" for peer, (t, _line) in sorted(seen[k].items()))
        for k in ("link", "view")
    )
    return [
        Check("b", "requests routed to it fail fast with an error response",
              bool(errors) and worst is not None and worst < 1.0
              and all(isinstance(p["code"], int) for p in errors),
              f"probe: {len(errors)} errors {codes}, max latency "
              f"{(worst or 0) * 1000:.1f} ms"),
        Check("b", f"it leaves every peer's view within the TTL ({cluster.ttl:g} s)",
              all(len(seen[k]) == len(peers) for k in seen)
              and all(t <= cluster.ttl for k in seen for t, _ in seen[k].values()),
              f"link dropped (calls fail fast): {link or 'none'}; membership updated "
              f"(removed, or replaced by the restarted process): {view or 'none'}",
              [f"{peer}: {line}" for k in seen for peer, (_t, line) in sorted(seen[k].items())]),
        Check("b", f"no supervisor (killed too): the lease drops it from every peer's view "
              f"within the TTL + grace ({limit:g} s)",
              len(removed) == len(peers) and all(t <= limit for t, _ in removed.values()),
              "removed: " + (", ".join(f"{peer} {t:.2f} s" for peer, (t, _) in
                                       sorted(removed.items())) or "nowhere")),
        Check("b", "its supervisor restarts it, and it serves again",
              back is not None and not late,
              f"new pid listed up {restarted:.2f} s after kill -9; probe served by it again "
              f"{back if back is None else round(back, 2)} s after; {len(late)} errors later"),
        Check("b", f"bots in rooms of {other}: 0 errors (both connectors)",
              clean(got["cold@c1"]) and clean(got["cold@c2"]),
              f"c1: {bot_summary(got['cold@c1'])} | c2: {bot_summary(got['cold@c2'])}"),
        Check("b", f"bots in rooms of {victim} (informative: the restart loses its rooms)",
              True, f"c1: {bot_summary(got['hot@c1'])} | c2: {bot_summary(got['hot@c2'])}"),
        log_check("b", cluster),
    ]  # fmt: skip


# -- c. kill -9 a connector ----------------------------------------------------------------


def case_connector_kill(cluster: ScaleoutCluster, bots: int, out: Path) -> list[Check]:
    """c. kill -9 connector-server-1 under bots: only its clients drop; it comes back."""
    c1, c2 = cluster.ids("connector")
    reports = {}
    per = max(1, bots // 2)
    for i, cid in enumerate((c1, c2)):
        reports[cid] = out / f"c-{cid}.json"
        cluster.start_bots(cid, per, 30.0, reports[cid], f"c{i}-", ramp_up=3.0)
    time.sleep(10.0)
    pid = cluster.pids()[c1]
    began = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    accepting = cluster.wait_for(
        lambda: accepts(cluster.target(c1)) and c1 in cluster.pids() and cluster.pids()[c1] != pid,
        40.0,
        "connector back",
    )
    cluster.wait_new_pid(c1, pid)
    listed = time.monotonic() - began
    wait_bots(cluster)
    dropped, kept = (load_report(reports[c]) for c in (c1, c2))
    return [
        Check("c", f"bots of {c2}: 0 errors", clean(kept), bot_summary(kept)),
        Check("c", f"bots of {c1} are disconnected: all of them; their only errors are "
              "requests in flight at the kill ('closed')",
              (dropped.get("counters") or {}).get("disconnected") == per
              and set(dropped.get("errors_by_kind") or {}) <= {"closed"}
              and not dropped.get("scenario_errors"),
              bot_summary(dropped)),
        Check("c", "it comes back", accepting > 0 and listed > 0,
              f"accepting clients {accepting:.2f} s after kill -9, listed up with a new pid "
              f"{listed:.2f} s after"),
        log_check("c", cluster),
    ]  # fmt: skip


# -- g. etcd stopped -----------------------------------------------------------------------


def case_etcd_stop(cluster: ScaleoutCluster, bots: int, out: Path) -> list[Check]:
    """g. SIGSTOP etcd for 10 s under bots: 0 errors; re-registration; one line per event."""
    reports = chat_groups(cluster, bots, out, "g", 35.0, None)
    time.sleep(8.0)
    etcd = cluster.services.etcd
    since = cluster.log_offsets()
    etcd.pause()
    try:
        time.sleep(10.0)
    finally:
        etcd.resume()
    resumed = time.monotonic()
    servers = list(HOSTS)

    def registered() -> dict[str, float]:
        found = {}
        for sid in servers:
            name = f"logs/{sid}.log"
            text = cluster.logs().get(name, "")[since.get(name, 0) :]
            if "registered in etcd" in text:
                found[sid] = 1.0
        return found

    again: dict[str, float] = {}
    while time.monotonic() - resumed < 20.0 and len(again) < len(servers):
        for sid in registered():
            again.setdefault(sid, time.monotonic() - resumed)
        time.sleep(0.05)
    cluster.wait_for(cluster.all_up, 30.0, "every server listed up")
    listed = time.monotonic() - resumed
    wait_bots(cluster)
    got = {name: load_report(path) for name, path in reports.items()}
    tracebacks, above, details = log_problems(cluster, since)
    per_server: dict[str, list[str]] = {}
    for name, text in cluster.logs().items():
        lines = [
            ln
            for ln in text[since.get(name, 0) :].splitlines()
            if "etcd" in ln.lower() or "lease" in ln.lower()
        ]
        if lines:
            per_server[name] = lines
    counts = {
        name.removeprefix("logs/").removesuffix(".log"): len(v) for name, v in per_server.items()
    }
    lines = [f"{n}: {ln}" for n, v in per_server.items() for ln in v]
    most = max((count for count, _line in grouped(lines)), default=0)
    return [
        Check("g", "requests keep being served while etcd is stopped (0 errors)",
              all(clean(r) for r in got.values()),
              " | ".join(f"{n}: {bot_summary(r)}" for n, r in got.items())),
        Check("g", "every server registers again after etcd is back",
              len(again) == len(servers),
              f"registered again {', '.join(f'{s} {t:.2f} s' for s, t in sorted(again.items()))}"
              f" after SIGCONT; list shows all up {listed:.2f} s after"),
        Check("g", "logs: no traceback, nothing above warn, one line per event",
              not tracebacks and not above and 0 < most <= 2,
              f"{tracebacks} tracebacks, {above} lines above warn; etcd/lease lines from the "
              f"stop on, per log {counts}, the same line at most {most} times in a log",
              details + lines),
    ]  # fmt: skip
