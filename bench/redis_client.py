"""Redis clients on Twisted, measured: ours (globalchannels.RedisClient) and txredisapi.

``python bench/redis_client.py [--count 2000] [--pipeline 1000]`` starts a throwaway
``redis-server`` (pomelo_twisted.testing.RedisServer), then for each client measures
round trips one at a time (SADD, SMEMBERS of a 100-member set, HSET) and pipelined
SADDs (``--pipeline`` commands in flight at once), printing operations per second.
txredisapi is measured only when it is installed (``pip install txredisapi``); it is
not a dependency (see the commit that added this file for why).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.task import react

from pomelo_twisted.globalchannels import RedisClient, RedisSettings
from pomelo_twisted.interfaces import IServerReactor
from pomelo_twisted.testing.redisserver import RedisServer

__all__ = ["main"]


class Ops:
    """The four operations measured, on one client."""

    def __init__(
        self,
        sadd: Callable[[str, list[str]], Deferred[Any]],
        smembers: Callable[[str], Deferred[Any]],
        hset: Callable[[str, str, str], Deferred[Any]],
    ) -> None:
        self.sadd = sadd
        self.smembers = smembers
        self.hset = hset


async def measure(name: str, ops: Ops, count: int, pipeline: int) -> None:
    """Print ops/s of each operation for the client ``name``."""
    await ops.sadd("big", [f"member-{i}" for i in range(100)])

    async def timed(label: str, run: Callable[[], Awaitable[int]]) -> None:
        start = time.perf_counter()
        done = await run()
        elapsed = time.perf_counter() - start
        print(f"{name:12} {label:26} {done / elapsed:>10.0f} ops/s")

    async def sequential(call: Callable[[int], Deferred[Any]]) -> int:
        for i in range(count):
            await call(i)
        return count

    async def pipelined() -> int:
        batches = max(1, count * 5 // pipeline)
        for b in range(batches):
            await gatherResults([ops.sadd(f"p{b}", [f"m{i}"]) for i in range(pipeline)])
        return batches * pipeline

    await timed("SADD one at a time", lambda: sequential(lambda i: ops.sadd("s", [f"m{i}"])))
    await timed("SMEMBERS (100) one at a time", lambda: sequential(lambda i: ops.smembers("big")))
    await timed("HSET one at a time", lambda: sequential(lambda i: ops.hset("h", f"f{i}", "v")))
    await timed(f"SADD {pipeline} in flight", pipelined)


async def run(reactor: Any, count: int, pipeline: int) -> None:
    """Measure every client against one redis-server."""
    server = RedisServer(tempfile.mkdtemp(prefix="redis-bench-"))
    server.start()
    try:
        ours = RedisClient(cast(IServerReactor, reactor), RedisSettings(server.url))
        ours.start()
        await ours.when_connected()
        await measure(
            "ours",
            Ops(ours.sadd, ours.smembers, lambda k, f, v: ours.hset(k, {f: v})),
            count,
            pipeline,
        )
        await ours.stop()
        server.command("FLUSHALL")
        try:
            import txredisapi  # type: ignore[import-untyped]
        except ImportError:
            print("txredisapi     not installed: pip install txredisapi to compare")
            return
        theirs = await txredisapi.Connection(server.host, server.port, reconnect=False)
        await measure("txredisapi", Ops(theirs.sadd, theirs.smembers, theirs.hset), count, pipeline)
        await theirs.disconnect()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse the options and run on the default reactor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--pipeline", type=int, default=1000)
    args = parser.parse_args(argv)
    react(lambda reactor: ensureDeferred(run(reactor, args.count, args.pipeline)))


if __name__ == "__main__":
    main()
