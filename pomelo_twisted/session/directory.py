"""The session directory over RPC: the frontends are asked, no extra service is needed.

:class:`RpcSessionDirectory` runs on every server (``app.sessions`` of the embedded
default). ``where`` and ``kick_by_uid`` ask every frontend (this one locally) through
the system service; on a frontend with cluster-wide unique login, a bind first asks
every other frontend to kick the uid with "another login" and waits for their answers
(each bounded by the RPC deadline; a frontend that does not answer is logged and
passed over: it cannot be asked, and the RPC directory has nothing else to ask).

Bind and close events cost nothing while nobody subscribes. A subscribing server asks
every frontend to send it events (``subscribe_sessions``) and renews that every
``renew_interval`` seconds; a frontend forgets a subscriber that did not renew within
three intervals, so a subscriber that went away costs at most that many pushes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from ..listeners import Listeners
from ..rpc.logagg import RepeatedWarning
from .backend import SYS_SERVICE, RpcCall
from .interfaces import IBindingClaims, ISessionDirectory, SessionEvent, SessionListener
from .service import ANOTHER_LOGIN, SessionService

__all__ = ["RENEW_INTERVAL", "RpcSessionDirectory", "Subscribers"]

log = Logger()

RENEW_INTERVAL = 10.0
"""How often a subscriber renews its subscription with every frontend (seconds)."""


class Subscribers:
    """The local listeners of a server: ``(on_bind, on_close)`` pairs, each told of the
    events of its kind (a :class:`~pomelo_twisted.listeners.Listeners` underneath)."""

    def __init__(self) -> None:
        self._events: Listeners[[SessionEvent]] = Listeners("session event")

    def __bool__(self) -> bool:
        return bool(self._events)

    def add(self, on_bind: SessionListener, on_close: SessionListener) -> Callable[[], None]:
        """Add a pair; returns the function removing it (idempotent)."""

        def listener(event: SessionEvent) -> None:
            (on_bind if event.kind == "bind" else on_close)(event)

        return self._events.subscribe(listener)

    def deliver(self, event: SessionEvent) -> None:
        """Call every listener of ``event``'s kind; a failing listener is logged."""
        self._events.notify(event)


@implementer(ISessionDirectory, IBindingClaims)
class RpcSessionDirectory:
    """Sessions across the cluster by asking the frontends (``local`` is this server's
    session service on a frontend, None on a backend)."""

    def __init__(
        self,
        server_id: str,
        rpc: RpcCall,
        frontend_ids: Callable[[], list[str]],
        clock: IReactorTime,
        *,
        local: SessionService | None = None,
        renew_interval: float = RENEW_INTERVAL,
    ) -> None:
        if renew_interval <= 0:
            raise ValueError(
                f"session subscription renew interval must be > 0, not {renew_interval!r}"
            )
        self.server_id = server_id
        self.rpc = rpc
        self.frontend_ids = frontend_ids
        self.clock = clock
        self.local = local
        self.renew_interval = renew_interval
        self.listeners = Subscribers()
        # Frontend side: subscriber server id -> when its subscription lapses.
        self.subscribers: dict[str, float] = {}
        self._renewal: IDelayedCall | None = None
        #: Frontends that could not be asked: one info line per interval, counted after.
        self._not_asked_lines = RepeatedWarning(log, seconds=clock.seconds, level=LogLevel.info)

    def __repr__(self) -> str:
        return f"<RpcSessionDirectory on {self.server_id}>"

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Nothing to prepare: the frontends are asked when needed."""
        return succeed(None)

    def after_start(self) -> None:
        """The cluster is up: renew the subscriptions now (frontends that were not up
        when they were first sent get them at once, not an interval later)."""
        if self._renewal is not None:
            self._renewal.cancel()
            self._renew()

    def stop(self) -> Deferred[None]:
        """Stop renewing subscriptions."""
        if self._renewal is not None and self._renewal.active():
            self._renewal.cancel()
        self._renewal = None
        return succeed(None)

    # -- any server -----------------------------------------------------------

    def _others(self) -> list[str]:
        return [f for f in self.frontend_ids() if f != self.server_id]

    def _ask(self, frontend_id: str, method: str, args: tuple[Any, ...]) -> Deferred[Any]:
        return maybeDeferred(self.rpc, frontend_id, SYS_SERVICE, method, args)

    def kick_by_uid(self, uid: str, reason: str = "kick") -> Deferred[int]:
        """Kick ``uid`` on every frontend: how many sessions were kicked (frontends that
        cannot be asked count 0 and are logged)."""
        counts: list[Deferred[Any]] = [succeed(self.serve_kick(uid, reason))]
        for frontend_id in self._others():
            d = self._ask(frontend_id, "kick_uid", (uid, reason))
            counts.append(d.addErrback(self._not_asked, frontend_id, "kick", uid, 0))
        return gatherResults(counts).addCallback(lambda found: sum(int(n) for n in found))

    def where(self, uid: str) -> Deferred[tuple[str, int] | None]:
        """The first frontend (this one first) holding a session of ``uid``."""
        local = self.serve_where(uid)
        if local:
            return succeed((self.server_id, local[0]))
        others = self._others()
        answers = [
            self._ask(f, "where_uid", (uid,)).addErrback(self._not_asked, f, "where", uid, [])
            for f in others
        ]

        def first(found: list[Any]) -> tuple[str, int] | None:
            for frontend_id, sids in zip(others, found, strict=True):
                if sids:
                    return (frontend_id, int(sids[0]))
            return None

        return gatherResults(answers).addCallback(first)

    def subscribe(self, on_bind: SessionListener, on_close: SessionListener) -> Callable[[], None]:
        """Listen to every frontend's bind and close events (renewed every interval)."""
        remove = self.listeners.add(on_bind, on_close)
        if self._renewal is None:
            self._renew()
        return remove

    def _renew(self) -> None:
        self._renewal = None
        if not self.listeners:
            return
        self.serve_subscribe(self.server_id)
        for frontend_id in self._others():
            d = self._ask(frontend_id, "subscribe_sessions", (self.server_id,))
            d.addErrback(self._not_asked, frontend_id, "subscribe", "events", None)
        self._renewal = self.clock.callLater(self.renew_interval, self._renew)

    def _not_asked(
        self, failure: Failure, frontend_id: str, what: str, uid: str, result: Any
    ) -> Any:
        self._not_asked_lines.warn(
            "session {what} of {uid}: frontend {frontend} not asked: {error}",
            what=what,
            uid=uid,
            frontend=frontend_id,
            error=failure.getErrorMessage(),
        )
        return result

    # -- a frontend's bindings (IBindingClaims) --------------------------------

    def claim(self, uid: str, sid: int) -> Deferred[None]:
        """Ask every other frontend to kick ``uid`` with "another login"; fires once
        every one answered or failed (each within the RPC deadline)."""
        kicks = [
            self._ask(f, "kick_uid", (uid, ANOTHER_LOGIN)).addErrback(
                self._not_asked, f, "unique login", uid, 0
            )
            for f in self._others()
        ]
        return gatherResults(kicks).addCallback(lambda _: None)

    def bound(self, uid: str, sid: int) -> None:
        """Tell the subscribers."""
        self._publish(SessionEvent("bind", uid, self.server_id, sid))

    def released(self, uid: str, sid: int) -> None:
        """Tell the subscribers."""
        self._publish(SessionEvent("close", uid, self.server_id, sid))

    def _publish(self, event: SessionEvent) -> None:
        subscribers = self.subscribers
        if not subscribers:
            return
        now = self.clock.seconds()
        for server_id, until in list(subscribers.items()):
            if until < now:
                del subscribers[server_id]
                log.info("session events: {server} did not renew, forgotten", server=server_id)
            elif server_id == self.server_id:
                self.listeners.deliver(event)
            else:
                args = (event.kind, event.uid, event.frontend_id, event.session_id)
                d = maybeDeferred(self.rpc, server_id, SYS_SERVICE, "session_event", args)
                d.addErrback(self._not_asked, server_id, event.kind, event.uid, None)

    # -- served to other servers ------------------------------------------------

    def serve_kick(self, uid: str, reason: str) -> int:
        """Kick this frontend's sessions of ``uid``: how many (0 on a backend)."""
        local = self.local
        if local is None:
            return 0
        count = len(local.get_by_uid(uid))
        local.kick(uid, reason)
        return count

    def serve_where(self, uid: str) -> list[int]:
        """The ids of this frontend's sessions of ``uid``."""
        local = self.local
        return [] if local is None else [s.id for s in local.get_by_uid(uid)]

    def serve_subscribe(self, server_id: str) -> bool:
        """Send ``server_id`` this frontend's events for three renew intervals."""
        if self.local is None:
            return False
        self.subscribers[server_id] = self.clock.seconds() + 3 * self.renew_interval
        return True

    def serve_event(self, kind: str, uid: str, frontend_id: str, sid: int) -> None:
        """An event from a frontend: deliver it to the listeners here."""
        if kind not in ("bind", "close"):
            raise ValueError(f"unknown session event {kind!r}: expected 'bind' or 'close'")
        self.listeners.deliver(SessionEvent(kind, uid, frontend_id, int(sid)))  # type: ignore[arg-type]
