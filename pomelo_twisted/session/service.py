"""The session service of a frontend: every client session, indexed by id and by uid.

Besides the local API (``create``, ``bind``, ``kick``...), three plain methods serve the
calls other servers make through the system service ``"pomelo.sys"`` (the application
exposes them): :meth:`SessionService.remote_session` (a backend session's ``bind``,
``unbind``, ``sync`` and ``kick``), :meth:`SessionService.push_to_uids` and
:meth:`SessionService.broadcast` (a channel service's pushes). Pushes are encoded once
and the same bytes written to every connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.logger import Logger, LogLevel

from ..errors import HandlerError
from ..interfaces import IAgent
from ..listeners import Listeners
from .interfaces import IBindingClaims
from .session import Session

__all__ = ["ANOTHER_LOGIN", "SESSION_OPS", "SessionService"]

log = Logger()

ANOTHER_LOGIN = "another login"
"""The kick reason of the older sessions of a uid under ``single_session``."""

SESSION_OPS = ("bind", "unbind", "sync", "kick")
"""The operations a backend session asks of its frontend through ``remote_session``."""

CODE_SESSION = 500


class SessionService:
    """The sessions of one frontend server.

    Several sessions may share a uid (one user, several devices) unless
    ``single_session`` is set: then binding a uid kicks its older sessions with the
    reason ``"another login"`` first.

    With a ``directory`` (:class:`~pomelo_twisted.session.interfaces.IBindingClaims`) it
    hears of every bind, unbind and close; with ``cluster_unique`` as well, a bind first
    waits for the directory's ``claim`` (the uid's sessions on other frontends are kicked)
    and implies ``single_session`` here.
    """

    def __init__(
        self,
        frontend_id: str,
        *,
        single_session: bool = False,
        directory: IBindingClaims | None = None,
        cluster_unique: bool = False,
    ) -> None:
        self.frontend_id = frontend_id
        self.single_session = single_session
        self.directory = directory
        self.cluster_unique = cluster_unique
        self._claiming: dict[int, str] = {}
        self._sessions: dict[int, Session] = {}
        # uid -> {sid: session}, in binding order.
        self._by_uid: dict[str, dict[int, Session]] = {}
        #: Told ``(session, uid)`` after a session is bound to ``uid`` (e.g. the online
        #: status); a session closing runs its ``on_closed`` callbacks.
        self.bind_listeners: Listeners[[Session, str]] = Listeners("session bind")
        #: Told ``(session, uid)`` after a session is unbound from ``uid``.
        self.unbind_listeners: Listeners[[Session, str]] = Listeners("session unbind")
        #: Pushes written to clients (one per session reached), and their bytes.
        self.pushes_sent = 0
        self.push_bytes_sent = 0

    def __repr__(self) -> str:
        return f"<SessionService {self.frontend_id!r}: {len(self._sessions)} sessions>"

    def __len__(self) -> int:
        return len(self._sessions)

    # -- lookups -------------------------------------------------------------

    def create(self, agent: IAgent) -> Session:
        """A new session for ``agent``'s connection; ``ValueError`` if its sid is taken."""
        sid = agent.sid
        if sid in self._sessions:
            raise ValueError(f"session {sid} already exists on {self.frontend_id}")
        session = Session(agent, self.frontend_id, self)
        self._sessions[sid] = session
        return session

    def get(self, sid: int) -> Session | None:
        """The session ``sid``, or None."""
        return self._sessions.get(sid)

    def get_by_uid(self, uid: str) -> list[Session]:
        """The sessions bound to ``uid``, oldest binding first (empty if none)."""
        return list(self._by_uid.get(uid, {}).values())

    def sessions(self) -> list[Session]:
        """Every open session, oldest first."""
        return list(self._sessions.values())

    def uids(self) -> list[str]:
        """Every bound uid."""
        return list(self._by_uid)

    # -- binding -------------------------------------------------------------

    def bind(self, sid: int, uid: str) -> Deferred[None]:
        """Bind session ``sid`` to ``uid`` (again to the same uid: nothing happens).

        Fails with ``HandlerError(500)`` for an unknown session or one bound to another
        uid, with ``ValueError`` for a uid that is not a non-empty string. Under
        ``cluster_unique`` it fires once the directory's claim did (the uid's other
        sessions are kicked first), and fails when the claim does or the session closed
        meanwhile.
        """
        if not isinstance(uid, str) or not uid:
            return fail(ValueError(f"uid must be a non-empty string, not {uid!r}"))
        session = self._sessions.get(sid)
        if session is None:
            return fail(HandlerError(CODE_SESSION, f"session {sid} not found"))
        if session.uid == uid:
            return succeed(None)
        if session.uid is not None:
            return fail(HandlerError(CODE_SESSION, f"session already bound to {session.uid}"))
        directory = self.directory
        if directory is None or not self.cluster_unique:
            self._bind_now(session, uid)
            return succeed(None)
        if sid in self._claiming:
            pending = self._claiming[sid]
            return fail(HandlerError(CODE_SESSION, f"session {sid} is being bound to {pending}"))
        self._claiming[sid] = uid

        def claimed(_: object) -> None:
            del self._claiming[sid]
            if self._sessions.get(sid) is not session:
                directory.released(uid, sid)
                raise HandlerError(CODE_SESSION, f"session {sid} closed while binding {uid}")
            self._bind_now(session, uid)

        def refused(failure: Any) -> Any:
            self._claiming.pop(sid, None)
            return failure

        return maybeDeferred(directory.claim, uid, sid).addCallbacks(claimed, refused)

    def _bind_now(self, session: Session, uid: str) -> None:
        if self.single_session or self.cluster_unique:
            for older in list(self._by_uid.get(uid, {}).values()):
                self._kick(older, ANOTHER_LOGIN)
        session.uid = uid
        self._by_uid.setdefault(uid, {})[session.id] = session
        if self.directory is not None:
            self.directory.bound(uid, session.id)
        self.bind_listeners.notify(session, uid)

    def unbind(self, sid: int, uid: str) -> Deferred[None]:
        """Unbind session ``sid`` from ``uid``; ``HandlerError(500)`` if not bound to it."""
        session = self._sessions.get(sid)
        if session is None:
            return fail(HandlerError(CODE_SESSION, f"session {sid} not found"))
        if session.uid != uid:
            return fail(HandlerError(CODE_SESSION, f"session {sid} is not bound to {uid}"))
        self._drop_uid(session)
        session.uid = None
        self.unbind_listeners.notify(session, uid)
        return succeed(None)

    # -- closing -------------------------------------------------------------

    def kick(self, uid: str, reason: str = "kick") -> Deferred[int]:
        """Kick every session of ``uid``; fires with how many were kicked."""
        sessions = self.get_by_uid(uid)
        for session in sessions:
            self._kick(session, reason)
        return succeed(len(sessions))

    def kick_by_sid(self, sid: int, reason: str = "kick") -> Deferred[bool]:
        """Kick session ``sid``; fires with False if there is no such session."""
        session = self._sessions.get(sid)
        if session is None:
            return succeed(False)
        self._kick(session, reason)
        return succeed(True)

    def closed(self, sid: int, reason: str) -> None:
        """The connection of session ``sid`` closed: forget it, run its callbacks once.

        Unknown (or already removed) sessions are ignored; this never raises.
        """
        session = self._sessions.get(sid)
        if session is not None:
            self._remove(session, reason)

    def _kick(self, session: Session, reason: str) -> None:
        # Forget the session first, so the callbacks see ``reason`` and the indexes are
        # right at once even if the link reports its close later (or never).
        self._remove(session, reason)
        try:
            session.agent.kick(reason)
        except Exception:
            log.failure("kicking {session} failed", session=session, level=LogLevel.error)

    def _remove(self, session: Session, reason: str) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
        self._drop_uid(session)
        session.mark_closed(reason)

    def _drop_uid(self, session: Session) -> None:
        uid = session.uid
        if uid is None:
            return
        members = self._by_uid.get(uid)
        if members is not None and members.get(session.id) is session:
            del members[session.id]
            if not members:
                del self._by_uid[uid]
            if self.directory is not None:
                self.directory.released(uid, session.id)

    # -- served to other servers ----------------------------------------------

    def remote_session(self, op: str, sid: int, args: Sequence[Any]) -> Deferred[bool]:
        """Serve a backend session's ``op`` on session ``sid``.

        ``bind``/``unbind`` take ``[uid]``, ``sync`` takes ``[{key: value}]`` (stored in
        the settings), ``kick`` takes ``[reason]``. Fires with False when the session is
        gone, True when done; a refused bind or unbind fails with ``HandlerError``.
        Raises ``ValueError`` for an unknown op or malformed arguments.
        """
        if op not in SESSION_OPS:
            raise ValueError(f"unknown session op {op!r}: expected one of {SESSION_OPS}")
        if len(args) != 1:
            raise ValueError(f"session op {op!r} takes one argument, got {len(args)}")
        (arg,) = args
        if op == "sync":
            if not isinstance(arg, dict) or not all(isinstance(k, str) for k in arg):
                raise ValueError(f"session op 'sync' takes a dict of settings, not {arg!r}")
        elif not isinstance(arg, str):
            raise ValueError(f"session op {op!r} takes a string, not {arg!r}")
        session = self._sessions.get(sid)
        if session is None:
            log.debug("{op} on session {sid}: gone", op=op, sid=sid)
            return succeed(False)
        if op == "bind":
            return self.bind(sid, arg).addCallback(lambda _: True)
        if op == "unbind":
            return self.unbind(sid, arg).addCallback(lambda _: True)
        if op == "sync":
            session.update_settings(arg)
            return succeed(True)
        return self.kick_by_sid(sid, arg)

    def push_to_uids(self, route: str, msg: object, uids: Iterable[str]) -> int:
        """Push ``msg`` on ``route`` to every session of every uid; how many got it.

        The message is encoded once; ``SerializationError`` if it cannot be.
        """
        by_uid = self._by_uid
        targets: list[Session] = []
        for uid in dict.fromkeys(uids):
            sessions = by_uid.get(uid)
            if sessions:
                targets.extend(sessions.values())
        return self._push(route, msg, targets)

    def broadcast(self, route: str, msg: object) -> int:
        """Push ``msg`` on ``route`` to every working session; how many got it."""
        return self._push(route, msg, list(self._sessions.values()))

    def _push(self, route: str, msg: object, sessions: Iterable[Session]) -> int:
        # Encoded once per push format (serializer and dictionary: one for all the agents
        # of a listener), when its first working agent is met; this loop runs once per
        # member of a room.
        prepared: dict[object, bytes] = {}
        package = b""
        push_format: object = None
        count = 0
        sent = 0
        for session in sessions:
            agent = session.agent
            if agent.push_format is not push_format:
                if not agent.working:
                    continue
                push_format = agent.push_format
                found = prepared.get(push_format)
                if found is None:
                    found = prepared[push_format] = agent.prepare_push(route, msg)
                package = found
            if agent.push_prepared(package):
                count += 1
                sent += len(package)
        self.pushes_sent += count
        self.push_bytes_sent += sent
        return count
