"""Hot reload under load: 200 chat bots see no error while both chat servers reload a
changed handler, and the new reply appears.

``python bench/ops_reload.py [--bots 100] [--duration 30] [--out DIR] [--keep]``
copies the example game onto free ports and starts it (master, 2 connectors, 2 chat
servers); runs ``--bots`` chat bots on each connector (``bench/chatbot.py``
PrefixedChatBot: enter, join, send, every push checked for order, gaps and missing
ones) and a few probe clients asking ``chat.chatHandler.where`` every 0.25 s (each in
its own room, so both chat servers answer them). A third of the way in, it rewrites
``where``'s reply in the copy's ``servers/chat/handler/chatHandler.py`` and runs
``pomelo-twisted reload`` on both chat servers. Expected: every reload answers, the bots
and the probes see 0 errors, every probe answer after the reloads carries the new reply
(on both chat servers), and no log holds a traceback or a line above info.

Prints one row per expectation with its figures; exits 1 if one fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from bench.cluster import Cluster, load_report
from bench.faults import Check, bot_summary, clean, log_check, print_table, wait_bots

__all__ = ["main"]

OLD_REPLY = 'return {"code": 200, "server": self.app.server_id}'
NEW_REPLY = 'return {"code": 200, "server": self.app.server_id + " (reloaded)"}'
PROBES = 8


def probe_records(path: Path) -> list[dict[str, Any]]:
    """The probes' answers (one JSON object a line; none if the file is missing)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(cluster: Cluster, bots: int, duration: float, out: Path) -> list[Check]:
    """Bots and probes on the cluster; rewrite and reload the chat handler mid-run."""
    reports = [out / f"bots-{cid}.json" for cid in cluster.ids("connector")]
    for i, cid in enumerate(cluster.ids("connector")):
        cluster.start_bots(cid, bots, duration, reports[i], f"r{i}-", ramp_up=3.0)
    probe_log = out / "probe.jsonl"
    probe_log.unlink(missing_ok=True)
    cluster.start_bots(
        cluster.ids("connector")[0],
        PROBES,
        duration,
        out / "probes.json",
        "probe-",
        ramp_up=1.0,
        scenario="ProbeBot",
        env={
            "POMELO_PROBE_LOG": str(probe_log.resolve()),
            "POMELO_PROBE_ROUTE": "chat.chatHandler.where",
            "POMELO_PROBE_OWN_ROOM": "1",
        },
    )
    time.sleep(duration / 3)
    handler = cluster.game / "servers" / "chat" / "handler" / "chatHandler.py"
    source = handler.read_text(encoding="utf-8")
    assert OLD_REPLY in source, f"{handler} has no {OLD_REPLY!r} any more"
    handler.write_text(source.replace(OLD_REPLY, NEW_REPLY), encoding="utf-8")
    reloads: list[tuple[str, int, float, str]] = []
    for chat in cluster.ids("chat"):
        began = time.monotonic()
        code, text = cluster.cli("reload", chat, timeout=30.0)
        reloads.append((chat, code, time.monotonic() - began, text.strip()))
    reloaded_at = time.time()
    wait_bots(cluster, timeout=duration + 60.0)
    got = [load_report(r) for r in reports]
    probes = probe_records(probe_log)
    answers = [p for p in probes if p["route"] == "chat.chatHandler.where"]
    failed = [p for p in probes if p["code"] != 200]
    after = [p for p in answers if p["t"] > reloaded_at + 1.0]  # sent after both answered
    before = [p for p in answers if p["t"] < reloaded_at - 5.0]
    servers_after = sorted({str(p.get("server")) for p in after})
    new_on = sorted({s.split()[0] for s in servers_after if s.endswith(" (reloaded)")})
    requests = sum(int(r.get("requests", 0)) for r in got)
    return [
        Check("reload", "both chat servers reload (pomelo-twisted reload)",
              all(code == 0 for _, code, _, _ in reloads),
              "; ".join(f"exit {code} in {took:.2f} s: {' '.join(text.split())}"
                        for _, code, took, text in reloads)),
        Check("reload", f"{2 * bots} chat bots: 0 errors, 0 gaps or missing pushes",
              all(clean(r) for r in got),
              f"{requests} requests; " + "; ".join(bot_summary(r) for r in got)),
        Check("reload", "probes: every request answered 200", bool(answers) and not failed,
              f"{len(probes)} probe requests, {len(failed)} not 200"),
        Check("reload", "old reply before, new reply after, on both chat servers",
              bool(before) and all(not str(p.get("server")).endswith(" (reloaded)")
                                   for p in before)
              and bool(after) and servers_after == [f"{c} (reloaded)" for c in cluster.ids("chat")],
              f"{len(before)} answers before (old reply), {len(after)} after: "
              f"servers {servers_after}; new reply from {new_on}"),
        log_check("reload", cluster),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenario; 0 when every expectation held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=100, help="chat bots per connector (100)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (30)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "ops-reload",
        help="reports (default bench/results/ops-reload)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the cluster's folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cluster = Cluster()
    try:
        cluster.start()
        checks = run(cluster, args.bots, args.duration, args.out)
    finally:
        cluster.close(keep=args.keep)
    print_table(checks)
    (args.out / "ops_reload.json").write_text(json.dumps([c.__dict__ for c in checks], indent=2))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
