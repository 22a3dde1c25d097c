"""The frontend session: what a server knows about one client connection.

A :class:`Session` wraps one connection (an :class:`~pomelo_twisted.interfaces.IAgent`)
and lives in the :class:`~pomelo_twisted.session.service.SessionService` of its frontend.
It carries the uid the client is bound to (after login) and free-form ``settings``;
backends see a copy of it, a :class:`~pomelo_twisted.session.backend.BackendSession`. A
forwarded request carries the settings only when the backend has not seen their current
``settings_version`` yet (see :mod:`pomelo_twisted.app.forward`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger, LogLevel

from ..interfaces import IAgent
from ..results import settle

__all__ = ["ClosedCallback", "Session", "SessionOwner", "session_data"]

log = Logger()


ClosedCallback = Callable[["Session", str], object]
"""``callback(session, reason)``: run once when the session closes."""


def session_data(
    sid: int, frontend_id: str, uid: str | None, settings: dict[str, Any]
) -> dict[str, Any]:
    """The plain (msgpack-able) form of a session, frontend or backend: a copy."""
    return {"id": sid, "frontend_id": frontend_id, "uid": uid, "settings": dict(settings)}


class SessionOwner(Protocol):
    """What a session asks of the service that holds it (a
    :class:`~pomelo_twisted.session.service.SessionService`): the changes that must keep
    its by-uid index and ``single_session`` right."""

    def bind(self, sid: int, uid: str) -> Deferred[None]: ...

    def unbind(self, sid: int, uid: str) -> Deferred[None]: ...

    def kick_by_sid(self, sid: int, reason: str = ...) -> Deferred[bool]: ...


class Session:
    """The frontend side of one client connection.

    ``bind``, ``unbind`` and ``kick`` go through the owning service so the by-uid index
    and ``single_session`` stay right; they return Deferreds that fire at once (the same
    API as :class:`~pomelo_twisted.session.backend.BackendSession`, whose calls travel).
    """

    __slots__ = (
        "_callbacks",
        "_service",
        "_settings",
        "agent",
        "backend_versions",
        "close_reason",
        "closed",
        "frontend_id",
        "id",
        "settings_version",
        "uid",
    )

    def __init__(self, agent: IAgent, frontend_id: str, service: SessionOwner) -> None:
        self.agent = agent
        self.id: int = agent.sid
        self.frontend_id = frontend_id
        self.uid: str | None = None
        self._settings: dict[str, Any] = {}
        self.settings_version = 0
        """Bumped by every change of the settings (``set``, ``sync``, a backend's
        ``sync``, and any use of ``settings``, which may change them in place);
        forwarded requests carry the settings when it moved."""
        self.backend_versions: dict[str, int] | None = None
        """Backend server id -> the settings version that server holds (made on the
        first forward)."""
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

    @property
    def settings(self) -> dict[str, Any]:
        """The settings, to change in place if need be: using them counts as a change
        (backends get them again with the next request); ``get`` reads one for free."""
        self.settings_version += 1
        return self._settings

    @settings.setter
    def settings(self, value: dict[str, Any]) -> None:
        self._settings = value
        self.settings_version += 1

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` in the settings (backends see it next request)."""
        self._settings[key] = value
        self.settings_version += 1

    def update_settings(self, values: dict[str, Any]) -> None:
        """Store every ``key: value`` of ``values`` (what a backend's ``sync`` sends)."""
        self._settings.update(values)
        self.settings_version += 1

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default``."""
        return self._settings.get(key, default)

    def sync(self, *keys: str) -> Deferred[None]:
        """Sync settings to the frontend: this *is* the frontend, so nothing travels
        (backends see the settings with the next request forwarded to them).

        Raises ``KeyError`` for a key that is not set, as a backend session does.
        """
        for key in keys:
            if key not in self._settings:
                raise KeyError(key)
        self.settings_version += 1
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
        return session_data(self.id, self.frontend_id, self.uid, self._settings)

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
            log.failure(
                "on_closed callback of {session} failed", session=self, level=LogLevel.error
            )
            return
        result = settle(result)
        if isinstance(result, Deferred):
            result.addErrback(
                lambda f: log.failure(
                    "on_closed callback of {session} failed", f, session=self, level=LogLevel.error
                )
            )
