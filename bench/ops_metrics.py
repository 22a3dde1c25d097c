"""Acceptance check of the Prometheus metrics on a real cluster of the example game.

``python bench/ops_metrics.py [--bots 200] [--duration 30] [--keep]`` starts a copy of
the example game on free loopback ports (master, 2 connectors, 2 chat servers, each with
a ``metricsPort``), runs the chat bots of ``bench/chatbot.py`` on the two connectors
(half each) for ``--duration`` seconds, then scrapes each connector's ``/metrics``,
parses it with prometheus_client's text parser and compares its client request counter
(``pomelo_client_requests_total``, summed, and per route) with the requests the bots
counted themselves. It also scrapes each chat server (RPCs served must be counted),
checks that the master wrote the ``file_sd`` target file naming all four servers, and
prints the log lines above info (the servers' logs and the master's).

Prints both numbers per connector and exits 1 on any mismatch (this is a functional
check, not a timing measurement).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.cluster import Cluster, load_report

REQUESTS = "pomelo_client_requests_total"


def scrape(host: str, port: int) -> str:
    """The text of ``http://host:port/metrics``."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with urllib.request.urlopen(f"http://{netloc}/metrics", timeout=10) as response:
        return str(response.read().decode("utf-8"))


def requests_by_route(text: str) -> Counter[str]:
    """The client requests of a scrape, by route (parsed with prometheus_client)."""
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS:
                found[sample.labels["route"]] += int(sample.value)
    return found


def settled(entry: dict[str, Any], timeout: float = 10.0) -> Counter[str]:
    """The connector's request counts once two scrapes a second apart agree (requests
    that were in flight when the bots stopped are answered by then)."""
    previous = requests_by_route(scrape(entry["host"], entry["metricsPort"]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.0)
        current = requests_by_route(scrape(entry["host"], entry["metricsPort"]))
        if current == previous:
            return current
        previous = current
    return previous


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=200, help="chat bots in all (default 200)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--ramp-up", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; 0 when every count matches."""
    args = parse_args(argv)
    cluster = Cluster()
    failed = False
    try:
        cluster.start()
        connectors = cluster.layout["servers"]["connector"]
        share, extra = divmod(args.bots, len(connectors))
        runs = []
        for number, entry in enumerate(connectors):
            report = cluster.workdir / f"bots-{entry['id']}.json"
            bots = share + (1 if number < extra else 0)
            process = cluster.start_bots(
                entry["id"], bots, args.duration, report, f"{entry['id']}-", args.ramp_up
            )
            runs.append((entry, report, process))
        for _, _, process in runs:
            process.wait(timeout=args.duration + args.ramp_up + 120)
        print(f"{'connector':<22}{'bots counted':>14}{'/metrics':>12}  result")
        for entry, report, _ in runs:
            summary = load_report(report)
            bot_routes = {route: r["count"] for route, r in summary.get("routes", {}).items()}
            counted = settled(entry)
            same = summary.get("requests") == sum(counted.values()) and bot_routes == dict(counted)
            failed = failed or not same or not summary.get("requests")
            print(
                f"{entry['id']:<22}{summary.get('requests', 0):>14,}{sum(counted.values()):>12,}"
                f"  {'PASS' if same else 'FAIL'}"
            )
            for route in sorted(set(bot_routes) | set(counted)):
                print(f"  {route:<28}{bot_routes.get(route, 0):>10,}{counted.get(route, 0):>12,}")
        for entry in cluster.layout["servers"]["chat"]:
            text = scrape(entry["host"], entry["metricsPort"])
            served = sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "pomelo_rpc_served_total"
            )
            print(f"{entry['id']:<22}{'rpc served':>14}{served:>12,.0f}")
            failed = failed or served <= 0
        targets_path = cluster.game / "logs" / "prometheus-targets.json"
        targets = {g["labels"]["server_id"] for g in json.loads(targets_path.read_text())}
        ok = targets == set(cluster.ids())
        print(f"file_sd targets: {', '.join(sorted(targets))}  {'PASS' if ok else 'FAIL'}")
        failed = failed or not ok
        problems = cluster.problems()
        tracebacks = sum(len(found[0]) for found in problems.values())
        above_info = sum(len(found[1]) for found in problems.values())
        print(f"logs: {tracebacks} traceback lines, {above_info} lines above info")
        for name, (traces, lines) in problems.items():
            for line in [*traces, *lines][:5]:
                print(f"  {name}: {line[:160]}")
    finally:
        cluster.close(keep=args.keep)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
