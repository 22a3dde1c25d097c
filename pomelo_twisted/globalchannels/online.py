"""Online status: a frontend writes the uids bound on it to Redis, for the cluster's counts.

:class:`OnlineStatus` is a component of a frontend server. It listens to its session
service: a session bound to a uid adds the uid to the frontend's online set in Redis, a
session unbound or closed removes it (when no other session of the uid is bound here).
The set expires ``ttl`` seconds after the last refresh; the frontend refreshes it every
``ttl / 3`` seconds, so a frontend that dies without cleaning up stops counting within
``ttl`` (and :meth:`GlobalChannelService.remove_frontend` removes it at once).

A write that fails (Redis down) marks the set stale: the next refresh that succeeds
writes it whole again, so the counts come back right after an outage or a Redis that
restarted empty. Failures are counted in :attr:`OnlineStatus.errors` and logged once
per interval with a count of the repeats.

Any server reads the counts with :meth:`GlobalChannelService.online_count`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import IComponent
from ..rpc.logagg import RepeatedWarning
from ..session.service import SessionService
from ..session.session import Session
from .interfaces import IRedis, RedisError
from .keys import RedisKeys
from .service import gather
from .settings import ONLINE_TTL

__all__ = ["OnlineStatus"]

log = Logger()


@implementer(IComponent)
class OnlineStatus:
    """Keeps ``frontend_id``'s online uids in Redis under ``prefix``."""

    name = "online_status"

    def __init__(
        self,
        redis: IRedis,
        prefix: str,
        sessions: SessionService,
        server_type: str,
        clock: IReactorTime,
        ttl: int = ONLINE_TTL,
        warnings: RepeatedWarning | None = None,
    ) -> None:
        if ttl < 3:
            raise ValueError(f"the online ttl is at least 3 seconds, not {ttl!r}")
        self.redis = redis
        self.keys = RedisKeys(prefix)
        self.sessions = sessions
        self.frontend_id = sessions.frontend_id
        self.server_type = server_type
        self.ttl = ttl
        self._clock = clock
        self._warnings = warnings if warnings is not None else RepeatedWarning(log)
        self._key = self.keys.online(self.frontend_id)
        #: uid -> sessions bound to it here; sid -> its uid.
        self._uids: Counter[str] = Counter()
        self._sids: dict[int, str] = {}
        self._stale = True
        self._refresh = LoopingCall(self.refresh)
        #: Removes this component's session listeners (set while it runs).
        self._unsubscribe: list[Callable[[], None]] = []
        self._refresh.clock = clock
        #: Writes to Redis that failed.
        self.errors = 0

    def __repr__(self) -> str:
        return f"<OnlineStatus {self.frontend_id}: {len(self._uids)} online>"

    def online(self) -> list[str]:
        """The uids bound on this frontend, as this component counts them."""
        return sorted(self._uids)

    # -- IComponent -------------------------------------------------------------

    def start(self) -> None:
        """Listen to the sessions and refresh the online set every third of the ttl."""
        self._unsubscribe = [
            self.sessions.bind_listeners.subscribe(self._bound),
            self.sessions.unbind_listeners.subscribe(self._unbound),
        ]
        for session in self.sessions.sessions():
            if session.uid is not None:
                self._bound(session, session.uid)
        self._refresh.start(self.ttl / 3, now=True).addErrback(self._refresh_stopped)

    def _refresh_stopped(self, failure: Failure) -> None:
        log.failure("online refresh of {frontend} stopped", failure, frontend=self.frontend_id)

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def stop(self, force: bool) -> Deferred[None]:
        """Stop refreshing and remove this frontend's online set (best effort)."""
        if self._refresh.running:
            self._refresh.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        d = gather(
            [
                self.redis.delete([self._key]),
                self.redis.hdel(self.keys.frontends(), [self.frontend_id]),
            ]
        )

        def failed(failure: Failure) -> None:
            failure.trap(RedisError)
            log.info(
                "online users of {frontend} left in redis ({error}): they expire in {ttl}s",
                frontend=self.frontend_id,
                error=failure.getErrorMessage(),
                ttl=self.ttl,
            )

        return d.addCallbacks(lambda _: None, failed)

    # -- sessions ---------------------------------------------------------------

    def _bound(self, session: Session, uid: str) -> None:
        if session.id in self._sids:
            return
        self._sids[session.id] = uid
        session.on_closed(self._closed)
        self._uids[uid] += 1
        if self._uids[uid] == 1:
            self._write(
                gather([self.redis.sadd(self._key, [uid]), self.redis.expire(self._key, self.ttl)])
            )

    def _unbound(self, session: Session, uid: str) -> None:
        self._forget(session.id)

    def _closed(self, session: Session, reason: str) -> None:
        self._forget(session.id)

    def _forget(self, sid: int) -> None:
        uid = self._sids.pop(sid, None)
        if uid is None:
            return
        self._uids[uid] -= 1
        if self._uids[uid] <= 0:
            del self._uids[uid]
            self._write(self.redis.srem(self._key, [uid]))

    # -- Redis ------------------------------------------------------------------

    def _write(self, d: Deferred[Any]) -> Deferred[None]:
        def failed(failure: Failure) -> None:
            failure.trap(RedisError)
            self._stale = True
            self.errors += 1
            self._warnings.warn(
                "online status of {frontend} not written: {error}",
                frontend=self.frontend_id,
                error=failure.getErrorMessage(),
            )

        return d.addCallbacks(lambda _: None, failed)

    def refresh(self) -> Deferred[None]:
        """Keep the online set alive; write it whole when it may be wrong (a failed
        write, or Redis lost it)."""
        registered = self.redis.hset(self.keys.frontends(), {self.frontend_id: self.server_type})
        if self._stale:
            return self._write(gather([registered, self._rewrite()]))

        def check(alive: bool) -> Deferred[None] | None:
            if not alive and self._uids:  # expired or lost: Redis restarted empty
                return self._write(self._rewrite())
            return None

        pending: list[Deferred[Any]] = [registered, self.redis.expire(self._key, self.ttl)]
        return self._write(gather(pending).addCallback(lambda results: check(results[1])))

    def _rewrite(self) -> Deferred[None]:
        self._stale = False
        pending: list[Deferred[Any]] = [self.redis.delete([self._key])]
        if self._uids:
            pending.append(self.redis.sadd(self._key, list(self._uids)))
            pending.append(self.redis.expire(self._key, self.ttl))
        return gather(pending).addCallback(lambda _: None)
