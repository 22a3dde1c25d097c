"""Route picks: microseconds per pick of the consistent-hash route against crc32 mod n.

``python bench/routing.py [--servers N] [--picks K]`` picks a server for K distinct uids
among N servers (the same membership every time, as between cluster changes) with
:func:`~pomelo_twisted.rpc.router.default_route` and with
:func:`~pomelo_twisted.rpc.hashring.consistent_hash_route`, through the
:class:`~pomelo_twisted.rpc.router.Router` as a forwarded request does, and prints the
best of five runs of each. Timings are only measured here, never asserted in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import time

from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc.hashring import consistent_hash_route
from pomelo_twisted.rpc.router import Router, default_route


def per_pick(router: Router, uids: list[str], servers: list[ServerInfo]) -> float:
    """Microseconds per ``router.pick`` over ``uids``, best of five runs."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for uid in uids:
            router.pick("chat", uid, servers)
        best = min(best, time.perf_counter() - start)
    return best / len(uids) * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--picks", type=int, default=100_000)
    args = parser.parse_args(argv)
    servers = [ServerInfo(f"chat-{i}", "chat") for i in range(1, args.servers + 1)]
    uids = [f"uid-{n}" for n in range(args.picks)]
    crc = Router(default_route)
    ring = Router(consistent_hash_route())
    print(f"{args.servers} servers, {args.picks} picks, best of 5")
    print(f"crc32 mod n      {per_pick(crc, uids, servers):.2f} us/pick")
    print(f"consistent hash  {per_pick(ring, uids, servers):.2f} us/pick")


if __name__ == "__main__":
    main()
