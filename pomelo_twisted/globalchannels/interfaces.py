"""The Redis commands the global channels and the online status use, as an interface.

:class:`~pomelo_twisted.globalchannels.client.RedisClient` speaks them to a real
server, :class:`~pomelo_twisted.globalchannels.fake.FakeRedis` keeps them in memory;
both pass the same tests (``tests/globalchannels/redis_contract.py``). Keys, members,
fields and values are ``str`` (UTF-8 on the wire). Every method returns a Deferred that
fails with :class:`RedisUnavailable` when the server cannot be reached and with
:class:`RedisCommandError` when it refuses the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from twisted.internet.defer import Deferred
from zope.interface import Interface

__all__ = ["IRedis", "RedisCommandError", "RedisError", "RedisUnavailable"]


class RedisError(Exception):
    """A Redis command did not succeed."""


class RedisUnavailable(RedisError):
    """The Redis server cannot be reached (not connected, connection lost, timed out)."""


class RedisCommandError(RedisError):
    """The Redis server answered a command with an error reply."""


class IRedis(Interface):
    """The few Redis commands this package needs (names and results as in Redis)."""

    def ping() -> Deferred[bool]:
        """``PING``: fires with True."""

    def sadd(key: str, members: Sequence[str]) -> Deferred[int]:
        """``SADD key member...`` (a non-empty sequence of str): how many were new."""

    def srem(key: str, members: Sequence[str]) -> Deferred[int]:
        """``SREM key member...``: how many were removed."""

    def smembers(key: str) -> Deferred[set[str]]:
        """``SMEMBERS key``: a ``set`` of str (empty when the key does not exist)."""

    def scard(key: str) -> Deferred[int]:
        """``SCARD key``: the number of members."""

    def hset(key: str, mapping: Mapping[str, str]) -> Deferred[int]:
        """``HSET key field value...`` (a non-empty mapping): how many fields were new."""

    def hgetall(key: str) -> Deferred[dict[str, str]]:
        """``HGETALL key``: a ``dict`` of str to str (empty when the key does not exist)."""

    def hdel(key: str, fields: Sequence[str]) -> Deferred[int]:
        """``HDEL key field...``: how many were removed."""

    def hdel_if(key: str, field: str, value: str) -> Deferred[int]:
        """Atomically ``HDEL key field`` only while its value is ``value``: 1 or 0."""

    def delete(keys: Sequence[str]) -> Deferred[int]:
        """``DEL key...``: how many keys existed."""

    def expire(key: str, seconds: int) -> Deferred[bool]:
        """``EXPIRE key seconds``: True if the key exists (its expiry is set)."""
