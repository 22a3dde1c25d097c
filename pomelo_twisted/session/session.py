"""The frontend session: what a server knows about one client connection.

A :class:`Session` wraps one connection (an :class:`~pomelo_twisted.interfaces.IAgent`)
and lives in the :class:`~pomelo_twisted.session.service.SessionService` of its frontend.
It carries the uid the client is bound to (after login) and free-form ``settings``;
backends see a copy of it, a :class:`~pomelo_twisted.session.backend.BackendSession`, built from
:meth:`Session.export`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.logger import Logger

from ..interfaces import IAgent

if TYPE_CHECKING:
    from .service import SessionService

__all__ = ["ClosedCallback", "Session"]

log = Logger()


ClosedCallback = Callable[["Session", str], object]
"""``callback(session, reason)``: run once when the session closes."""


class Session:
    """The frontend side of one client connection.

    ``bind``, ``unbind`` and ``kick`` go through the owning service so the by-uid index
    and ``single_session`` stay right; they return Deferreds that fire at once (the same
    API as :class:`~pomelo_twisted.session.backend.BackendSession`, whose calls travel).
    """

    __slots__ = (
        "_callbacks",
        "_service",
        "agent",
        "close_reason",
        "closed",
        "frontend_id",
        "id",
        "settings",
        "uid",
    )

    def __init__(self, agent: IAgent, frontend_id: str, service: SessionService) -> None:
        self.agent = agent
        self.id: int = agent.sid
        self.frontend_id = frontend_id
        self.uid: str | None = None
        self.settings: dict[str, Any] = {}
        self.closed = False
        self.close_reason: str | None = None
        self._service = service
        self._callbacks: list[ClosedCallback] = []

    def __repr__(self) -> str:
        return f"<Session id={self.id} uid={self.uid!r} frontend={self.frontend_id!r}>"

    # -- binding -------------------------------------------------------------

    def bind(self, uid: str) -> Deferred[None]:
        """Bind to ``uid``; fails with ``HandlerError(500)`` if bound to another uid."""
        return self._service.bind(self.id, uid)

    def unbind(self, uid: str) -> Deferred[None]:
        """Unbind from ``uid``; fails with ``HandlerError(500)`` if not bound to it."""
        return self._service.unbind(self.id, uid)

    # -- settings ------------------------------------------------------------

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` in the settings."""
        self.settings[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default``."""
        return self.settings.get(key, default)

    def push(self, *keys: str) -> Deferred[None]:
        """Sync settings to the frontend: this *is* the frontend, so nothing travels.

        Raises ``KeyError`` for a key that is not set, as a backend session does.
        """
        for key in keys:
            if key not in self.settings:
                raise KeyError(key)
        return succeed(None)

    # -- closing -------------------------------------------------------------

    def on_closed(self, callback: ClosedCallback) -> None:
        """Run ``callback(session, reason)`` once when the session closes.

        On a session already closed it runs at once with the recorded reason.
        """
        if self.closed:
            self._run_callback(callback, self.close_reason or "")
        else:
            self._callbacks.append(callback)

    def kick(self, reason: str = "kick") -> Deferred[None]:
        """Send the client a kick with ``reason`` and close the connection."""
        return self._service.kick_by_sid(self.id, reason).addCallback(lambda _: None)

    def export(self) -> dict[str, Any]:
        """Plain data (msgpack-able) from which a backend session is built."""
        return {
            "id": self.id,
            "frontend_id": self.frontend_id,
            "uid": self.uid,
            "settings": dict(self.settings),
        }

    def mark_closed(self, reason: str) -> None:
        """Record the close and run the callbacks once; for the owning service only."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._run_callback(callback, reason)

    def _run_callback(self, callback: ClosedCallback, reason: str) -> None:
        try:
            result = callback(self, reason)
        except Exception:
            log.failure("on_closed callback of {session} failed", session=self)
            return
        if isinstance(result, CoroutineType):
            result = ensureDeferred(result)
        if isinstance(result, Deferred):
            result.addErrback(
                lambda f: log.failure("on_closed callback of {session} failed", f, session=self)
            )
