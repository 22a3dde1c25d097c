"""The backend session: the copy of a frontend session a backend sees.

It has the frontend session's API: changes that matter to the frontend (``bind``,
``unbind``, ``sync``, ``kick``) travel back to it as
``rpc(frontend_id, "pomelo.sys", "session", (op, sid, args))``.

A backend builds one per forwarded request. The settings travel only when they
changed (see :mod:`pomelo_twisted.app.forward`): :class:`SessionCache` keeps the last
settings each session sent, validated once when they arrive, and the sessions built
from it share that dict until a handler changes their copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from twisted.internet.defer import Deferred, fail, maybeDeferred

from ..errors import HandlerError
from .session import ClosedCallback, session_data

__all__ = ["SESSION_CACHE_SIZE", "SYS_SERVICE", "BackendSession", "RpcCall", "SessionCache"]

SYS_SERVICE = "pomelo.sys"
"""The name of the system service every server exposes to the others."""

RpcCall = Callable[[str, str, str, tuple[Any, ...]], "Deferred[Any]"]
"""``rpc(server_id, service, method, args) -> Deferred`` of the remote result."""

CODE_SESSION = 500

SESSION_CACHE_SIZE = 65536
"""How many sessions' settings a backend keeps by default (``session_cache_size``)."""


def check_session_data(sid: Any, frontend_id: Any, uid: Any, settings: Any) -> None:
    """Raise ``ValueError`` unless these are a session's id, frontend id, uid and settings."""
    # Exact types first: what msgpack delivers.
    if type(sid) is not int and (not isinstance(sid, int) or isinstance(sid, bool)):
        raise ValueError(f"session data needs an int 'id', not {sid!r}")
    if (type(frontend_id) is not str and not isinstance(frontend_id, str)) or not frontend_id:
        raise ValueError(f"session data needs a 'frontend_id', not {frontend_id!r}")
    if uid is not None and type(uid) is not str and not isinstance(uid, str):
        raise ValueError(f"session data 'uid' must be a string or None, not {uid!r}")
    if type(settings) is not dict and not isinstance(settings, Mapping):
        raise ValueError(f"session data 'settings' must be a mapping, not {settings!r}")


class SessionCache:
    """The settings of the sessions whose requests this backend served, by
    ``(frontend_id, sid)``: ``(settings_version, settings)``, at most ``limit`` of them.

    Past the limit the entry written longest ago goes (a session whose entry is gone,
    or a backend that restarted, simply gets the settings sent again). Entries are
    never changed in place: the sessions built from one share its settings dict.
    """

    __slots__ = ("_entries", "limit")

    def __init__(self, limit: int = SESSION_CACHE_SIZE) -> None:
        if limit < 1:
            raise ValueError(f"a session cache holds at least one session, not {limit!r}")
        self.limit = limit
        self._entries: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, frontend_id: str, sid: int, version: int) -> dict[str, Any] | None:
        """The settings of session ``sid`` at ``version``; None when they are not here."""
        entry = self._entries.get((frontend_id, sid))
        if entry is None or entry[0] != version:
            return None
        return entry[1]

    def put(
        self, frontend_id: str, sid: int, uid: Any, version: int, settings: Any
    ) -> dict[str, Any]:
        """Validate and keep what a frontend sent of session ``sid``; the settings kept.

        Raises ``ValueError`` when the data is not a session's.
        """
        check_session_data(sid, frontend_id, uid, settings)
        if type(version) is not int:
            raise ValueError(f"a settings version is an int, not {version!r}")
        kept = dict(settings)
        entries = self._entries
        key = (frontend_id, sid)
        entries.pop(key, None)  # written again: the newest again
        entries[key] = (version, kept)
        while len(entries) > self.limit:
            del entries[next(iter(entries))]
        return kept


class BackendSession:
    """A frontend session as a backend sees it.

    ``bind`` and ``unbind`` change the local ``uid`` only once the frontend agreed.
    A backend cannot observe the client's connection closing (as in Pomelo): register
    ``on_closed`` on the frontend ``Session`` (e.g. in the connector's entry handler)
    and have it call a remote; :meth:`on_closed` raises ``NotImplementedError`` rather
    than accepting a callback that would never run. ``closed`` is always False.
    """

    __slots__ = ("_rpc", "_settings", "_shared", "frontend_id", "id", "uid")

    closed = False

    def __init__(self, data: Mapping[str, Any], rpc: RpcCall) -> None:
        """A session from :meth:`Session.export <pomelo_twisted.session.session.Session.export>`
        data, validated (``ValueError`` when it is not a session's)."""
        sid, frontend_id = data.get("id"), data.get("frontend_id")
        uid, settings = data.get("uid"), data.get("settings", {})
        check_session_data(sid, frontend_id, uid, settings)
        self.id: int = cast(int, sid)
        self.frontend_id: str = cast(str, frontend_id)
        self.uid: str | None = uid
        self._settings: dict[str, Any] = dict(settings)
        self._shared = False
        self._rpc = rpc

    @classmethod
    def cached(
        cls, frontend_id: str, sid: int, uid: str | None, settings: dict[str, Any], rpc: RpcCall
    ) -> BackendSession:
        """A session over settings kept in a :class:`SessionCache` (validated when they
        arrived): no check, no copy until a handler changes them."""
        self = cls.__new__(cls)
        self.id = sid
        self.frontend_id = frontend_id
        self.uid = uid
        self._settings = settings
        self._shared = True
        self._rpc = rpc
        return self

    @property
    def settings(self) -> dict[str, Any]:
        """This request's copy of the frontend session's settings."""
        if self._shared:  # handed out: it may change, so it must be our own
            self._settings = dict(self._settings)
            self._shared = False
        return self._settings

    @settings.setter
    def settings(self, value: dict[str, Any]) -> None:
        self._settings = value
        self._shared = False

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
        """Store ``value`` under ``key`` locally; :meth:`sync` sends it to the frontend."""
        self.settings[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default``."""
        return self._settings.get(key, default)

    def sync(self, *keys: str) -> Deferred[None]:
        """Send the settings ``keys`` (all of them when none is named) to the frontend.

        Raises ``KeyError`` for a key that is not set. A session gone from the frontend
        is not an error: the settings simply have nowhere to go.
        """
        settings = self._settings
        names = keys or tuple(settings)
        values = {key: settings[key] for key in names}
        return self._call("sync", values).addCallback(lambda _: None)

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
        return session_data(self.id, self.frontend_id, self.uid, self._settings)
