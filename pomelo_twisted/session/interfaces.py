"""The cluster-wide view of sessions: where a uid is bound, kicking it, bind/close events.

:class:`ISessionDirectory` is what every server exposes as ``app.sessions``;
:class:`IBindingClaims` is the narrow part a frontend's
:class:`~pomelo_twisted.session.service.SessionService` calls while binding, unbinding and
closing. Two implementations: :class:`~pomelo_twisted.session.directory.RpcSessionDirectory`
(asks the frontends over RPC; no extra service) and
:class:`~pomelo_twisted.session.bindings.EtcdSessionDirectory` (bindings leased in a
key-value store).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
from twisted.internet.defer import Deferred
from zope.interface import Interface

__all__ = ["IBindingClaims", "ISessionDirectory", "SessionEvent", "SessionListener"]


class SessionEvent(msgspec.Struct, frozen=True):
    """A uid was bound to a session (``"bind"``), or that session was unbound or closed
    (``"close"``), on frontend ``frontend_id``."""

    kind: Literal["bind", "close"]
    uid: str
    frontend_id: str
    session_id: int


SessionListener = Callable[[SessionEvent], object]
"""``listener(event)``: called once per bind or close event (its result is ignored)."""


class ISessionDirectory(Interface):
    """Sessions across the cluster, from any server (``app.sessions``)."""

    def kick_by_uid(uid: str, reason: str = "kick") -> Deferred[int]:
        """Kick every session of ``uid`` on every frontend with ``reason``: how many."""

    def where(uid: str) -> Deferred[tuple[str, int] | None]:
        """``(frontend_id, session_id)`` of a session bound to ``uid``, or None."""

    def subscribe(on_bind: SessionListener, on_close: SessionListener) -> Callable[[], None]:
        """Call ``on_bind``/``on_close`` for every bind/close event of the cluster from
        now on; returns the function that ends the subscription."""


class IBindingClaims(Interface):
    """What a frontend's session service asks of the directory."""

    def claim(uid: str, sid: int) -> Deferred[None]:
        """Make ``uid`` this frontend's (session ``sid``) before the bind completes: the
        sessions of ``uid`` elsewhere are kicked with "another login". Fails with
        ``HandlerError`` when the uid cannot be taken (the bind then fails)."""

    def bound(uid: str, sid: int) -> None:
        """Session ``sid`` is now bound to ``uid`` here."""

    def released(uid: str, sid: int) -> None:
        """Session ``sid`` was unbound from ``uid`` or closed."""
