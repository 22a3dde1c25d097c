"""Global channels: channels whose members live on any frontend, kept in Redis.

Any server of the cluster may add members, push, and read counts; the membership is
in Redis (:mod:`~pomelo_twisted.globalchannels.keys` for the layout), not in one
backend's memory. A push reads the members, groups them by frontend and makes one
``push`` RPC per frontend with its uids (the frontend encodes the message once for all
of them), exactly as a local :class:`~pomelo_twisted.channels.Channel` does.

When Redis cannot be reached every operation fails with
:class:`~pomelo_twisted.globalchannels.interfaces.RedisUnavailable` naming the server,
counted in :attr:`GlobalChannelService.stats` and logged once per interval with a count
of the repeats (no traceback); the client reconnects by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, FirstError, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..channels import call_frontends, group_by_frontend
from ..interfaces import IComponent
from ..rpc.logagg import RepeatedWarning
from ..session.backend import RpcCall
from .interfaces import IRedis, RedisError
from .keys import RedisKeys

__all__ = ["GlobalChannelService", "GlobalChannelStats", "gather"]

log = Logger()

_T = TypeVar("_T")


@dataclass
class GlobalChannelStats:
    """What a :class:`GlobalChannelService` did, since it was made."""

    pushes: int = 0
    """Pushes that reached the frontend RPC stage (a channel without members counts)."""
    rpcs: int = 0
    """``push`` RPCs made to frontends (one per frontend per push)."""
    rpc_errors: int = 0
    """Those RPCs that failed (the frontend was down or refused)."""
    pushed_uids: int = 0
    """Uids addressed by those RPCs."""
    redis_errors: int = 0
    """Operations that failed because Redis failed (unavailable or an error reply)."""


def gather(pending: Iterable[Deferred[_T]]) -> Deferred[list[_T]]:
    """The results of ``pending`` (all in flight at once) in order; the first failure
    (unwrapped) fails the whole."""

    def unwrap(failure: Failure) -> Failure:
        failure.trap(FirstError)
        error = failure.value
        assert isinstance(error, FirstError)
        first: Failure = error.subFailure
        return first

    return gatherResults(list(pending), consumeErrors=True).addErrback(unwrap)


@implementer(IComponent)
class GlobalChannelService:
    """Global channels of the cluster whose keys start with ``prefix``.

    ``rpc`` is the server's RPC function (``app.rpc_call``): pushes go through it to
    the frontends' system ``push`` remote. ``warnings`` aggregates the repeated
    failures (by default one line per 10 s per kind).
    """

    name = "global_channels"

    def __init__(
        self,
        redis: IRedis,
        rpc: RpcCall,
        prefix: str,
        warnings: RepeatedWarning | None = None,
    ) -> None:
        self.redis = redis
        self.keys = RedisKeys(prefix)
        self._rpc = rpc
        self._warnings = warnings if warnings is not None else RepeatedWarning(log)
        self.stats = GlobalChannelStats()

    def __repr__(self) -> str:
        return f"<GlobalChannelService {self.keys.prefix!r} on {self.redis!r}>"

    # -- IComponent: the Redis client is started and stopped by its own component ----

    def start(self) -> None:
        """Nothing to start: the Redis client connects on its own."""

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def stop(self, force: bool) -> None:
        """Nothing to stop: the memberships stay in Redis for the other servers."""

    # -- failures -------------------------------------------------------------

    def _guard(self, d: Deferred[_T], operation: str, name: str) -> Deferred[_T]:
        def failed(failure: Failure) -> Failure:
            if failure.check(RedisError):
                self.stats.redis_errors += 1
                self._warnings.warn(
                    "global channel {operation} {channel} failed: {error}",
                    operation=operation,
                    channel=name,
                    error=failure.getErrorMessage(),
                )
            return failure

        return d.addErrback(failed)

    # -- membership -----------------------------------------------------------

    def add(self, name: str, uid: str, frontend_id: str) -> Deferred[bool]:
        """Add ``uid`` on ``frontend_id`` to channel ``name`` (joining again from another
        frontend moves it there); fires with True if it was not a member before."""
        keys = self.keys
        d = gather(
            [
                self.redis.hset(keys.channel(name), {uid: frontend_id}),
                self.redis.sadd(keys.joined(frontend_id, uid), [name]),
                self.redis.sadd(keys.frontend_uids(frontend_id), [uid]),
            ]
        ).addCallback(lambda results: results[0] == 1)
        return self._guard(d, "add", name)

    def leave(self, name: str, uid: str, frontend_id: str) -> Deferred[bool]:
        """Remove ``uid`` from channel ``name`` if it is there on ``frontend_id`` (a late
        leave from an older frontend does not remove a newer login); whether it was."""
        keys = self.keys
        d = gather(
            [
                self.redis.hdel_if(keys.channel(name), uid, frontend_id),
                self.redis.srem(keys.joined(frontend_id, uid), [name]),
            ]
        ).addCallback(lambda results: results[0] == 1)
        return self._guard(d, "leave", name)

    def leave_all(self, uid: str, frontend_id: str) -> Deferred[int]:
        """Remove ``uid`` (on ``frontend_id``) from every channel it joined there (its
        session closed); fires with how many it left. Reads only that uid's set."""
        keys = self.keys
        joined = keys.joined(frontend_id, uid)

        def drop(names: set[str]) -> Deferred[int]:
            left = self._drop(frontend_id, {uid: names}, [joined])
            forgotten = self.redis.srem(keys.frontend_uids(frontend_id), [uid])
            return gather([left, forgotten]).addCallback(lambda results: results[0])

        d = self.redis.smembers(joined).addCallback(drop)
        return self._guard(d, "leave_all", uid)

    def members(self, name: str) -> Deferred[list[str]]:
        """The member uids of channel ``name`` (empty when it has none)."""
        d = self.redis.hgetall(self.keys.channel(name)).addCallback(list)
        return self._guard(d, "members", name)

    def members_by_frontend(self, name: str) -> Deferred[dict[str, list[str]]]:
        """``{frontend_id: [uid, ...]}`` of channel ``name``."""
        d = self.redis.hgetall(self.keys.channel(name)).addCallback(
            lambda members: group_by_frontend(members.items())
        )
        return self._guard(d, "members", name)

    def destroy(self, name: str) -> Deferred[bool]:
        """Remove channel ``name`` and its members; whether it had any."""
        keys = self.keys
        channel = keys.channel(name)

        def drop(members: dict[str, str]) -> Deferred[bool]:
            if not members:
                return succeed(False)
            pending: list[Deferred[Any]] = [
                self.redis.srem(keys.joined(frontend_id, uid), [name])
                for uid, frontend_id in members.items()
            ]
            pending.append(self.redis.delete([channel]))
            return gather(pending).addCallback(lambda _: True)

        d = self.redis.hgetall(channel).addCallback(drop)
        return self._guard(d, "destroy", name)

    def remove_frontend(self, frontend_id: str) -> Deferred[int]:
        """Drop every member held by ``frontend_id`` (it left the cluster) and its online
        users; fires with how many channel members were removed.

        Reads only that frontend's sets (its uids, then the channels of each), never
        every channel. A member that has since joined again from another frontend stays.
        Call it when the frontend left, before it rejoins under the same id: what it
        holds when this runs goes.
        """
        keys = self.keys
        uids_key = keys.frontend_uids(frontend_id)

        def read(uids: set[str]) -> Deferred[int]:
            ordered = sorted(uids)
            joined_keys = [keys.joined(frontend_id, uid) for uid in ordered]
            return gather(self.redis.smembers(key) for key in joined_keys).addCallback(
                lambda names: self._drop(
                    frontend_id,
                    dict(zip(ordered, names, strict=True)),
                    [uids_key, keys.online(frontend_id), *joined_keys],
                )
            )

        def forget(removed: int) -> Deferred[int]:
            return self.redis.hdel(keys.frontends(), [frontend_id]).addCallback(lambda _: removed)

        d = self.redis.smembers(uids_key).addCallback(read).addCallback(forget)
        return self._guard(d, "remove_frontend", frontend_id)

    def _drop(
        self, frontend_id: str, joined: dict[str, set[str]], keys: list[str]
    ) -> Deferred[int]:
        """Remove each uid of ``joined`` from its channels where it is on ``frontend_id``,
        then delete ``keys``; fires with how many memberships were removed."""
        removals = [
            self.redis.hdel_if(self.keys.channel(name), uid, frontend_id)
            for uid, names in joined.items()
            for name in sorted(names)
        ]
        return gather(removals).addCallback(
            lambda counts: self.redis.delete(keys).addCallback(lambda _: sum(counts))
        )

    # -- pushing --------------------------------------------------------------

    def push(
        self, name: str, route: str, msg: object, exclude: Sequence[str] = ()
    ) -> Deferred[int]:
        """Push ``msg`` on ``route`` to every member of channel ``name`` but ``exclude``:
        one ``push`` RPC per frontend holding members, all at once.

        Fires with how many frontends took it (a failed RPC is counted and logged, and
        does not fail the others); fails with ``RedisUnavailable`` when the members
        cannot be read.
        """

        def send(members: dict[str, str]) -> Deferred[int]:
            excluded = set(exclude)
            groups = group_by_frontend(
                (uid, frontend) for uid, frontend in members.items() if uid not in excluded
            )
            calls = {frontend: (route, msg, uids) for frontend, uids in groups.items()}
            stats = self.stats
            stats.pushes += 1
            stats.rpcs += len(calls)
            stats.pushed_uids += sum(len(uids) for uids in groups.values())

            def count(ok: int) -> int:
                stats.rpc_errors += len(calls) - ok
                return ok

            return call_frontends(self._rpc, "push", calls, route, self._warnings).addCallback(
                count
            )

        d = self.redis.hgetall(self.keys.channel(name)).addCallback(send)
        return self._guard(d, "push", name)

    # -- online status ---------------------------------------------------------

    def online_by_frontend(self, server_type: str | None = None) -> Deferred[dict[str, int]]:
        """``{frontend_id: users online}`` of the frontends (of ``server_type``) that
        report them (see :class:`~pomelo_twisted.globalchannels.online.OnlineStatus`)."""
        keys = self.keys

        def count(frontends: dict[str, str]) -> Deferred[dict[str, int]]:
            ids = sorted(fid for fid, kind in frontends.items() if server_type in (None, kind))
            return gather(self.redis.scard(keys.online(fid)) for fid in ids).addCallback(
                lambda counts: dict(zip(ids, counts, strict=True))
            )

        d = self.redis.hgetall(keys.frontends()).addCallback(count)
        return self._guard(d, "online", server_type or "*")

    def online_count(self, server_type: str | None = None) -> Deferred[int]:
        """How many users are online on the frontends (of ``server_type``)."""
        return self.online_by_frontend(server_type).addCallback(lambda c: sum(c.values()))
