"""An in-memory Redis for deterministic tests: :class:`IRedis` without a server.

It passes the same contract tests as the real client (``tests/globalchannels/``).
Expiry follows the clock it is given. Set :attr:`FakeRedis.available` to False to play
an outage: every command then fails with ``RedisUnavailable`` (the data survive, as
they would on a Redis that restarts with persistence; :meth:`flush` loses them).
:attr:`FakeRedis.commands` counts the commands served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from .interfaces import IRedis, RedisCommandError, RedisUnavailable

__all__ = ["FakeRedis"]

_T = TypeVar("_T")


@implementer(IRedis)
class FakeRedis:
    """Sets and hashes in dicts, on ``clock`` (for ``EXPIRE``)."""

    def __init__(self, clock: IReactorTime, name: str = "fake") -> None:
        self.name = name
        self._clock = clock
        self._data: dict[str, set[str] | dict[str, str]] = {}
        self._expires: dict[str, float] = {}
        self.available = True
        self.commands = 0

    def __repr__(self) -> str:
        return f"<FakeRedis {self.name}: {len(self._data)} keys>"

    def flush(self) -> None:
        """Forget every key (a Redis restarted without persistence)."""
        self._data.clear()
        self._expires.clear()

    def keys(self) -> list[str]:
        """Every key that exists now, sorted."""
        return sorted(key for key in list(self._data) if self._live(key))

    def _live(self, key: str) -> bool:
        deadline = self._expires.get(key)
        if deadline is not None and self._clock.seconds() >= deadline:
            del self._expires[key]
            self._data.pop(key, None)
        return key in self._data

    def _run(self, command: Callable[[], _T]) -> Deferred[_T]:
        if not self.available:
            return fail(RedisUnavailable(f"redis at {self.name} is not connected"))
        self.commands += 1
        try:
            return succeed(command())
        except RedisCommandError as e:
            return fail(e)

    def _set(self, key: str, create: bool = False) -> set[str]:
        value = self._data.get(key) if self._live(key) else None
        if value is None:
            value = set()
            if create:
                self._data[key] = value
        if not isinstance(value, set):
            raise RedisCommandError(f"redis at {self.name}: WRONGTYPE {key!r} is not a set")
        return value

    def _hash(self, key: str, create: bool = False) -> dict[str, str]:
        value = self._data.get(key) if self._live(key) else None
        if value is None:
            value = {}
            if create:
                self._data[key] = value
        if not isinstance(value, dict):
            raise RedisCommandError(f"redis at {self.name}: WRONGTYPE {key!r} is not a hash")
        return value

    def _drop_if_empty(self, key: str) -> None:
        if key in self._data and not self._data[key]:
            del self._data[key]
            self._expires.pop(key, None)

    # -- IRedis ---------------------------------------------------------------

    def ping(self) -> Deferred[bool]:
        return self._run(lambda: True)

    def sadd(self, key: str, members: Sequence[str]) -> Deferred[int]:
        _nonempty(members, "SADD")

        def sadd() -> int:
            value = self._set(key, create=True)
            before = len(value)
            value.update(members)
            return len(value) - before

        return self._run(sadd)

    def srem(self, key: str, members: Sequence[str]) -> Deferred[int]:
        _nonempty(members, "SREM")

        def srem() -> int:
            value = self._set(key)
            removed = len(value & set(members))
            value.difference_update(members)
            self._drop_if_empty(key)
            return removed

        return self._run(srem)

    def smembers(self, key: str) -> Deferred[set[str]]:
        return self._run(lambda: set(self._set(key)))

    def scard(self, key: str) -> Deferred[int]:
        return self._run(lambda: len(self._set(key)))

    def hset(self, key: str, mapping: Mapping[str, str]) -> Deferred[int]:
        _nonempty(list(mapping), "HSET")

        def hset() -> int:
            value = self._hash(key, create=True)
            new = len(set(mapping) - set(value))
            value.update(mapping)
            return new

        return self._run(hset)

    def hgetall(self, key: str) -> Deferred[dict[str, str]]:
        return self._run(lambda: dict(self._hash(key)))

    def hdel(self, key: str, fields: Sequence[str]) -> Deferred[int]:
        _nonempty(fields, "HDEL")

        def hdel() -> int:
            value = self._hash(key)
            removed = sum(1 for field in set(fields) if value.pop(field, None) is not None)
            self._drop_if_empty(key)
            return removed

        return self._run(hdel)

    def hdel_if(self, key: str, field: str, value: str) -> Deferred[int]:
        def hdel_if() -> int:
            fields = self._hash(key)
            if fields.get(field) != value:
                return 0
            del fields[field]
            self._drop_if_empty(key)
            return 1

        return self._run(hdel_if)

    def delete(self, keys: Sequence[str]) -> Deferred[int]:
        _nonempty(keys, "DEL")

        def delete() -> int:
            existed = 0
            for key in set(keys):
                if self._live(key):
                    del self._data[key]
                    self._expires.pop(key, None)
                    existed += 1
            return existed

        return self._run(delete)

    def expire(self, key: str, seconds: int) -> Deferred[bool]:
        def expire() -> bool:
            if not self._live(key):
                return False
            if seconds <= 0:
                del self._data[key]
                self._expires.pop(key, None)
            else:
                self._expires[key] = self._clock.seconds() + seconds
            return True

        return self._run(expire)


def _nonempty(items: Sequence[str], command: str) -> None:
    if isinstance(items, str) or not items:
        raise ValueError(f"{command} needs a non-empty sequence of strings, not {items!r}")
