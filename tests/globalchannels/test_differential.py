"""FakeRedis and redis-server agree on random command sequences (seeded, repeatable)."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from pomelo_twisted.globalchannels import FakeRedis, IRedis, RedisCommandError

from .test_redis_client import RealRedisCase

KEYS = ["s1", "s2", "h1", "h2"]
WORDS = ["a", "b", "c", "d", "é"]


def random_command(rng: random.Random) -> tuple[str, tuple[Any, ...]]:
    """One IRedis call on a small space of keys and words (type clashes included)."""
    key = rng.choice(KEYS)
    some = rng.sample(WORDS, rng.randint(1, 3))
    return rng.choice(
        [
            ("sadd", (key, some)),
            ("srem", (key, some)),
            ("smembers", (key,)),
            ("scard", (key,)),
            ("hset", (key, {w: rng.choice(WORDS) for w in some})),
            ("hgetall", (key,)),
            ("hdel", (key, some)),
            ("hdel_if", (key, some[0], rng.choice(WORDS))),
            ("delete", (rng.sample(KEYS, rng.randint(1, 2)),)),
            ("expire", (key, 100)),
        ]
    )


async def outcome(redis: IRedis, name: str, args: tuple[Any, ...]) -> object:
    """The result of one call, or the kind of its failure."""
    d: Deferred[Any] = getattr(redis, name)(*args)
    try:
        return await d
    except RedisCommandError:
        return "WRONGTYPE"


class DifferentialTests(RealRedisCase):
    """Same commands, same answers."""

    async def test_random_sequences(self) -> None:
        """Three seeded sequences of 300 commands give identical results on both."""
        for seed in (1, 2, 3):
            await self.redis.delete(KEYS)
            fake = FakeRedis(Clock())
            rng = random.Random(seed)
            for step in range(300):
                name, args = random_command(rng)
                expected = await outcome(fake, name, args)
                actual = await outcome(self.redis, name, args)
                self.assertEqual(actual, expected, f"seed {seed} step {step}: {name}{args}")
