"""The backend session: the copy of a frontend session a backend handler sees.

It is built from :meth:`Session.export <pomelo_twisted.session.session.Session.export>`
data and the server's ``rpc`` function, and has the frontend session's API: changes that
matter to the frontend (``bind``, ``unbind``, ``push``, ``kick``) travel back to it as
``rpc(frontend_id, "pomelo.sys", "session", (op, sid, args))``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred

from ..errors import HandlerError
from .session import ClosedCallback

__all__ = ["SYS_SERVICE", "BackendSession", "RpcCall"]

SYS_SERVICE = "pomelo.sys"
"""The name of the system service every server exposes to the others."""

RpcCall = Callable[[str, str, str, tuple[Any, ...]], "Deferred[Any]"]
"""``rpc(server_id, service, method, args) -> Deferred`` of the remote result."""

CODE_SESSION = 500


class BackendSession:
    """A frontend session as a backend sees it.

    ``bind`` and ``unbind`` change the local ``uid`` only once the frontend agreed.
    A backend cannot observe the client's connection closing (as in Pomelo): register
    ``on_closed`` on the frontend ``Session`` (e.g. in the connector's entry handler)
    and have it call a remote; :meth:`on_closed` raises ``NotImplementedError`` rather
    than accepting a callback that would never run. ``closed`` is always False.
    """

    __slots__ = ("_rpc", "frontend_id", "id", "settings", "uid")

    closed = False

    def __init__(self, data: Mapping[str, Any], rpc: RpcCall) -> None:
        sid, frontend_id = data.get("id"), data.get("frontend_id")
        uid, settings = data.get("uid"), data.get("settings", {})
        # Exact types first: what msgpack delivers on every forwarded request.
        if type(sid) is not int and (not isinstance(sid, int) or isinstance(sid, bool)):
            raise ValueError(f"session data needs an int 'id', not {sid!r}")
        if (type(frontend_id) is not str and not isinstance(frontend_id, str)) or not frontend_id:
            raise ValueError(f"session data needs a 'frontend_id', not {frontend_id!r}")
        if uid is not None and type(uid) is not str and not isinstance(uid, str):
            raise ValueError(f"session data 'uid' must be a string or None, not {uid!r}")
        if type(settings) is not dict and not isinstance(settings, Mapping):
            raise ValueError(f"session data 'settings' must be a mapping, not {settings!r}")
        self.id: int = sid
        self.frontend_id: str = frontend_id
        self.uid: str | None = uid
        self.settings: dict[str, Any] = dict(settings)
        self._rpc = rpc

    def __repr__(self) -> str:
        return f"<BackendSession id={self.id} uid={self.uid!r} frontend={self.frontend_id!r}>"

    def _call(self, op: str, arg: object) -> Deferred[Any]:
        return maybeDeferred(
            self._rpc, self.frontend_id, SYS_SERVICE, "session", (op, self.id, [arg])
        )

    def _gone(self, found: object) -> None:
        if found is False:
            raise HandlerError(CODE_SESSION, f"session {self.id} is gone from {self.frontend_id}")

    # -- binding -------------------------------------------------------------

    def bind(self, uid: str) -> Deferred[None]:
        """Bind the frontend session to ``uid``, then the local copy.

        Fails with ``HandlerError(500)`` when already bound to another uid (without a
        call) or when the frontend refuses or no longer has the session.
        """
        if self.uid is not None and self.uid != uid:
            return fail(HandlerError(CODE_SESSION, f"session already bound to {self.uid}"))

        def bound(found: object) -> None:
            self._gone(found)
            self.uid = uid

        return self._call("bind", uid).addCallback(bound)

    def unbind(self, uid: str) -> Deferred[None]:
        """Unbind the frontend session from ``uid``, then the local copy."""
        if self.uid != uid:
            return fail(HandlerError(CODE_SESSION, f"session {self.id} is not bound to {uid}"))

        def unbound(found: object) -> None:
            self._gone(found)
            self.uid = None

        return self._call("unbind", uid).addCallback(unbound)

    # -- settings ------------------------------------------------------------

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` locally; :meth:`push` sends it to the frontend."""
        self.settings[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default``."""
        return self.settings.get(key, default)

    def push(self, *keys: str) -> Deferred[None]:
        """Send the settings ``keys`` (all of them when none is named) to the frontend.

        Raises ``KeyError`` for a key that is not set. A session gone from the frontend
        is not an error: the push simply has nowhere to go.
        """
        names = keys or tuple(self.settings)
        values = {key: self.settings[key] for key in names}
        return self._call("push", values).addCallback(lambda _: None)

    # -- closing -------------------------------------------------------------

    def on_closed(self, callback: ClosedCallback) -> None:
        """Not available on a backend: register it on the frontend session."""
        raise NotImplementedError(
            "a backend cannot observe the client's connection closing: register on_closed"
            " on the frontend Session (e.g. in the connector's entry handler)"
        )

    def kick(self, reason: str = "kick") -> Deferred[None]:
        """Ask the frontend to kick the client with ``reason``."""
        return self._call("kick", reason).addCallback(lambda _: None)

    def export(self) -> dict[str, Any]:
        """The same plain data as the frontend session's ``export``."""
        return {
            "id": self.id,
            "frontend_id": self.frontend_id,
            "uid": self.uid,
            "settings": dict(self.settings),
        }
