"""FakeRedis passes the IRedis contract, and plays expiry and outages on its clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.globalchannels import FakeRedis, RedisUnavailable

from .redis_contract import RedisContract


class FakeRedisContractTests(RedisContract, TestCase):
    """The contract, in memory."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.redis = FakeRedis(self.clock)


class FakeRedisTests(SynchronousTestCase):
    """What only the fake does: a clock for expiry, an availability switch."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.redis = FakeRedis(self.clock)

    def test_expiry_follows_the_clock(self) -> None:
        """A key expires when the clock passes its expiry, not before."""
        self.redis.sadd("s", ["a"])
        self.assertIs(self.successResultOf(self.redis.expire("s", 10)), True)
        self.clock.advance(9.9)
        self.assertEqual(self.redis.keys(), ["s"])
        self.clock.advance(0.1)
        self.assertEqual(self.redis.keys(), [])
        self.assertEqual(self.successResultOf(self.redis.scard("s")), 0)

    def test_outage(self) -> None:
        """While unavailable every command fails with RedisUnavailable; data survive."""
        self.redis.sadd("s", ["a"])
        self.redis.available = False
        self.failureResultOf(self.redis.smembers("s"), RedisUnavailable)
        self.redis.available = True
        self.assertEqual(self.successResultOf(self.redis.smembers("s")), {"a"})

    def test_flush_and_count(self) -> None:
        """flush forgets every key; commands counts the commands served."""
        self.redis.sadd("s", ["a"])
        self.redis.hset("h", {"a": "b"})
        self.assertEqual(self.redis.commands, 2)
        self.redis.flush()
        self.assertEqual(self.redis.keys(), [])
