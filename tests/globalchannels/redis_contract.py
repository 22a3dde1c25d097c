"""The IRedis contract, written once: the fake and the real client must both pass it.

A test case mixes :class:`RedisContract` in and provides ``redis`` (a fresh, empty
store) in ``setUp``. Each test is a coroutine (trial runs it on the reactor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface.verify import verifyObject

from pomelo_twisted.globalchannels import IRedis, RedisCommandError

if TYPE_CHECKING:
    from twisted.trial.unittest import TestCase

    _Base = TestCase
else:
    _Base = object

__all__ = ["RedisContract"]


class RedisContract(_Base):
    """Every IRedis command as Redis answers it."""

    redis: IRedis

    def test_provides_the_interface(self) -> None:
        """The store provides IRedis."""
        self.assertTrue(verifyObject(IRedis, self.redis))

    async def test_ping(self) -> None:
        """PING answers True."""
        self.assertIs(await self.redis.ping(), True)

    async def test_sets(self) -> None:
        """SADD counts new members, SMEMBERS/SCARD read them, SREM counts removals."""
        self.assertEqual(await self.redis.sadd("s", ["a", "b", "a"]), 2)
        self.assertEqual(await self.redis.sadd("s", ["b", "c"]), 1)
        self.assertEqual(await self.redis.smembers("s"), {"a", "b", "c"})
        self.assertEqual(await self.redis.scard("s"), 3)
        self.assertEqual(await self.redis.srem("s", ["a", "zz"]), 1)
        self.assertEqual(await self.redis.smembers("s"), {"b", "c"})

    async def test_missing_keys_are_empty(self) -> None:
        """Missing sets and hashes read as empty; removing from them removes nothing."""
        self.assertEqual(await self.redis.smembers("nope"), set())
        self.assertEqual(await self.redis.scard("nope"), 0)
        self.assertEqual(await self.redis.hgetall("nope"), {})
        self.assertEqual(await self.redis.srem("nope", ["a"]), 0)
        self.assertEqual(await self.redis.hdel("nope", ["a"]), 0)
        self.assertEqual(await self.redis.hdel_if("nope", "a", "x"), 0)
        self.assertEqual(await self.redis.delete(["nope"]), 0)
        self.assertIs(await self.redis.expire("nope", 10), False)

    async def test_emptied_set_is_gone(self) -> None:
        """A set whose last member is removed no longer exists."""
        await self.redis.sadd("s", ["a"])
        await self.redis.srem("s", ["a"])
        self.assertEqual(await self.redis.delete(["s"]), 0)

    async def test_hashes(self) -> None:
        """HSET counts new fields (overwrites are not new), HGETALL reads, HDEL removes."""
        self.assertEqual(await self.redis.hset("h", {"u1": "f1", "u2": "f2"}), 2)
        self.assertEqual(await self.redis.hset("h", {"u1": "f3", "u3": "f1"}), 1)
        self.assertEqual(await self.redis.hgetall("h"), {"u1": "f3", "u2": "f2", "u3": "f1"})
        self.assertEqual(await self.redis.hdel("h", ["u2", "zz"]), 1)
        self.assertEqual(await self.redis.hgetall("h"), {"u1": "f3", "u3": "f1"})

    async def test_hdel_if(self) -> None:
        """hdel_if removes a field only while it holds the given value."""
        await self.redis.hset("h", {"u1": "f1", "u2": "f2"})
        self.assertEqual(await self.redis.hdel_if("h", "u1", "f2"), 0)
        self.assertEqual(await self.redis.hdel_if("h", "u1", "f1"), 1)
        self.assertEqual(await self.redis.hgetall("h"), {"u2": "f2"})
        self.assertEqual(await self.redis.hdel_if("h", "u2", "f2"), 1)
        self.assertEqual(await self.redis.delete(["h"]), 0)  # emptied: gone

    async def test_delete(self) -> None:
        """DEL removes keys of any type and counts those that existed."""
        await self.redis.sadd("s", ["a"])
        await self.redis.hset("h", {"a": "b"})
        self.assertEqual(await self.redis.delete(["s", "h", "nope"]), 2)
        self.assertEqual(await self.redis.smembers("s"), set())

    async def test_expire_existing(self) -> None:
        """EXPIRE on an existing key answers True and keeps the data (until it expires)."""
        await self.redis.sadd("s", ["a"])
        self.assertIs(await self.redis.expire("s", 100), True)
        self.assertEqual(await self.redis.smembers("s"), {"a"})

    async def test_unicode(self) -> None:
        """Keys, members and values round-trip as UTF-8."""
        await self.redis.hset("hé", {"ü": "日本"})
        await self.redis.sadd("sé", ["ñ\x00x"])
        self.assertEqual(await self.redis.hgetall("hé"), {"ü": "日本"})
        self.assertEqual(await self.redis.smembers("sé"), {"ñ\x00x"})

    async def test_wrong_type_is_a_command_error(self) -> None:
        """A set command on a hash fails with RedisCommandError."""
        await self.redis.hset("h", {"a": "b"})
        with self.assertRaises(RedisCommandError):
            await self.redis.sadd("h", ["x"])
        with self.assertRaises(RedisCommandError):
            await self.redis.smembers("h")

    def test_empty_arguments_refused(self) -> None:
        """Commands that need members, fields or keys refuse none (and a bare str)."""
        self.assertRaises(ValueError, self.redis.sadd, "s", [])
        self.assertRaises(ValueError, self.redis.srem, "s", "ab")
        self.assertRaises(ValueError, self.redis.hset, "h", {})
        self.assertRaises(ValueError, self.redis.hdel, "h", [])
        self.assertRaises(ValueError, self.redis.delete, [])
