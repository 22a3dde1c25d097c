"""Issue 13's acceptance on real processes: three loopback "machines", etcd, Redis, no master.

``python bench/scaleout.py [--bots 200] [--only a,b,c,d,e,f,g] [--ttl 5] [--keep]``

One etcd and one Redis (``EtcdServer``, ``RedisServer``) serve the whole run; each case
gets a fresh copy of the example game (``bench/scaleout_cluster.py``): connector-server-1
on 127.0.0.1, connector-server-2 on 127.0.0.2, chat-server-1 and chat-server-2 on
127.0.0.3, ``discovery: etcd://.../scaleout-N`` with ``discoveryTtl`` = ``--ttl``,
``session_binding_ttl`` = ``--ttl``, ``config/redis.json``, auto-restart on, one
``pomelo-twisted start --host H`` supervisor per address. Cases:

a. the cluster serves: two rooms (one per chat server) with 3 members on each connector;
   every member gets every message exactly once; ``list --discovery`` shows every
   server on its host.
b. ``kill -9`` chat-server-1 under ``--bots`` chat bots (half in its rooms, half in
   chat-server-2's, on both connectors) and a probe (``where`` every 0.1 s in one of its
   rooms): the probe's failed requests fail fast (count, max latency); every peer drops
   it (its link and its membership, from each peer's log, time); its supervisor restarts
   it (new pid in ``list``); the probe is served by it again; chat-server-2's bots see 0
   errors. Then, its host's supervisor killed too, ``kill -9`` again: the lease alone
   removes it from every peer's view (time, against the TTL + 0.5 s removal grace).
c. ``kill -9`` connector-server-1 under bots: connector-server-2's bots see 0 errors;
   it comes back (accepting clients, up in ``list``).
d. ``route=consistent-hash``: ``--bots`` probes (each its own room, ``where`` every 1 s)
   while ``pomelo-twisted add`` starts chat-server-3: 0 failed requests; the fraction of
   the probes' rooms that move (from the hash ring before/after) and that every answer
   came from the ring's owner before the add and after it.
e. the same uid entering on connector-2 then connector-1: each older session is kicked
   with "another login"; then connector-server-1 is ``kill -9``'d while a uid is bound
   there and the uid enters on connector-2: the time until it succeeds (≤ TTL + grace).
f. the global channel "world" (every player who entered; ``chat.chatHandler.announce``):
   3 members per connector, announces from both chat servers: one push per member per
   announce, ``stats.rpcs`` grows by one per frontend per push.
g. etcd stopped (SIGSTOP) for 10 s under bots: 0 errors; every server registers again
   (time, from the logs and ``list``); every log: no traceback, nothing above warn, the
   etcd lines per server during the outage (one per event).

Prints one row per expectation (PASS/FAIL, figures), a summary per case, and exits 1 if
one fails.

One full run, ``--bots 200 --ttl 5`` (2026-12-07, 2 shared cores, etcd 3.4, exit 0, 29/29
checks PASS, 183 s):

a. 4 servers up on 127.0.0.1/.2/.3/.3 in ``list``; 12 members in 2 rooms (one per chat
   server, 3 per connector each), 5 messages each: 360 pushes, every member got each
   message exactly once, 0 failed sends.
b. probe: 10 errors, all 503, max latency 11.4 ms; links to it dropped on every peer
   0.05 s after the kill, membership replaced by the restarted process 1.01 s after; new
   pid listed up 1.91 s after, probe served by it again 1.02 s after, 0 errors later;
   chat-server-2's bots 1,555 + 1,554 requests, 0 errors; chat-server-1's bots 200 + 200
   errors (503 while down, then 500: the restart lost its in-memory rooms). Supervisor
   killed too, then the server: removed from every peer's view 5.21 s after (TTL 5 s).
c. connector-server-2's bots 3,095 requests, 0 errors; all 100 of connector-server-1's
   bots disconnected, 4 requests in flight failed "closed"; accepting clients again
   1.02 s after the kill, listed up 1.49 s after.
d. ``add`` exited 0 after 0.92 s; 6,194 requests, 0 failed; 74/200 rooms moved (37 %,
   1/3 expected), all to chat-server-3; 1,709 answers before and 3,701 after the add, each
   from the ring's owner. In 3 of 5 runs at ``--bots 200``, 1 to 4 requests failed (503,
   ~26 ms before chat-server-3's first answer): a new server is routed to as soon as
   discovery reports it, before the link to it has logged in (``PbTransport.call``
   fails fast for a peer not connected yet) — a known gap, not fixed here.
e. "another login" kicks c1's session, then c2's; connector-server-1 killed while the
   uid was bound there: the login on connector-server-2 succeeded 4.08 s after the kill
   (binding TTL 5 s).
f. 6 members (3 per connector), 3 announces (1 from chat-server-1, 2 from chat-server-2):
   each member got each exactly once; 3 pushes, 6 RPCs (2 per push = one per frontend),
   18 uids addressed.
g. etcd SIGSTOPped 10 s: 4 x ~1,804 bot requests, 0 errors (p99 ≤ 22 ms); every server
   registered again 0.05–0.27 s after SIGCONT, ``list`` all up 0.85 s after; 0
   tracebacks, nothing above warn, 5–13 etcd/lease lines per server log (each event
   once; the same line at most twice).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import time
from collections.abc import Callable, Sequence

from bench.faults import Check, print_table
from bench.scaleout_cases import case_announce, case_grow, case_serves, case_unique_login
from bench.scaleout_clients import stop as stop_clients
from bench.scaleout_cluster import ScaleoutCluster, Services
from bench.scaleout_faults import case_chat_kill, case_connector_kill, case_etcd_stop

__all__ = ["main"]

CASES: dict[str, tuple[str, Callable[..., list[Check]]]] = {
    "a": ("crc32", case_serves),
    "b": ("crc32", case_chat_kill),
    "c": ("crc32", case_connector_kill),
    "d": ("consistent-hash", case_grow),
    "e": ("crc32", case_unique_login),
    "f": ("crc32", case_announce),
    "g": ("crc32", case_etcd_stop),
}


def run_case(
    name: str,
    services: Services,
    number: int,
    ttl: float,
    keep: bool,
    body: Callable[[ScaleoutCluster], list[Check]],
    route: str,
) -> tuple[list[Check], float]:
    """One case on a fresh cluster, always cleaned up; a crash is a failed check."""
    began = time.monotonic()
    cluster = ScaleoutCluster(services, f"scaleout-{number}", ttl, route)
    try:
        cluster.start()
        checks = body(cluster)
    except Exception as exc:
        checks = [Check(name, "the case ran", False, f"{type(exc).__name__}: {exc}")]
    finally:
        if keep:
            print(f"case {name}: kept {cluster.workdir}")
        cluster.close(keep=keep)
    return checks, time.monotonic() - began


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cases; 0 when every expectation held."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=200, help="bots of cases b, c, d, g")
    parser.add_argument("--only", default=",".join(CASES), help="cases to run (a,...,g)")
    parser.add_argument("--ttl", type=float, default=5.0, help="discovery and binding TTL")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "scaleout",
        help="reports (default bench/results/scaleout)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the clusters' folders")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # the bots run in other working directories
    args.out.mkdir(parents=True, exist_ok=True)
    only = [c for c in args.only.split(",") if c]
    unknown = [c for c in only if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}: expected some of {','.join(CASES)}")
    services = Services()
    services.start()
    checks: list[Check] = []
    times: dict[str, float] = {}
    began = time.monotonic()
    try:
        for number, name in enumerate(only):
            route, case = CASES[name]

            def body(
                cluster: ScaleoutCluster, case: Callable[..., list[Check]] = case
            ) -> list[Check]:
                return case(cluster, args.bots, args.out)

            found, times[name] = run_case(name, services, number, args.ttl, args.keep, body, route)
            checks += found
            print_table(found)
            sys.stdout.flush()
    finally:
        services.stop()
        stop_clients()
    print(
        f"\nsummary (--bots {args.bots}, --ttl {args.ttl:g}, "
        f"{time.monotonic() - began:.0f} s in all)"
    )
    for name in only:
        mine = [c for c in checks if c.case == name]
        passed = sum(c.ok for c in mine)
        print(
            f"  {name}  {'PASS' if passed == len(mine) else 'FAIL'}  "
            f"{passed}/{len(mine)} checks  {times[name]:.0f} s"
        )
        for check in mine:
            if not check.ok:
                print(f"       failed: {check.what}")
    (args.out / "scaleout.json").write_text(json.dumps([c.__dict__ for c in checks], indent=2))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
