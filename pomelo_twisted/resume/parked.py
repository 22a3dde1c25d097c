"""The resumable sessions of a frontend: live, parked (their connection dropped) or
being resumed; the window of a parked one runs on the injected clock.

A parked session stays in the :class:`~pomelo_twisted.session.service.SessionService`
with its sid, uid, settings and channel memberships; its ``agent`` is a
:class:`ParkedAgent`, which buffers pushes in the session's :class:`.PushLog` instead of
writing them. At the window's end the session closes as a disconnect does: the wrapped
handler's ``disconnected`` runs (the session's ``on_closed`` callbacks, channel leaves).
"""

from __future__ import annotations

import hmac
from collections.abc import Hashable
from random import Random
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from ..agent.agent import Agent
from ..agent.metrics import CloseReason
from ..agent.negotiation import ConnectionOffer
from ..interfaces import IAgent, IConnectionHandler
from ..protocol import ConnectionState
from ..session.service import SessionService
from ..session.session import Session
from .pushlog import PushLog
from .tokens import RESUME_ROUTE, ResumeRefused, ResumeTokens

__all__ = [
    "PARKING_REASONS",
    "ParkedAgent",
    "ResumableSessions",
    "ResumeState",
    "push_format_key",
]

log = Logger()

PARKING_REASONS = (CloseReason.CLIENT_CLOSED, CloseReason.HEARTBEAT_TIMEOUT)
"""Close causes that park a resumable session (the network's doing); any other cause (a
kick, a protocol error, a slow consumer, the server closing) closes it."""


def push_format_key(offer: ConnectionOffer) -> Hashable:
    """What a push package's bytes depend on besides the shared dictionary."""
    return (offer.serializer.name, offer.use_dict and offer.compress_pushes, offer.push_variant)


@implementer(IAgent)
class ParkedAgent:
    """The agent of a session whose connection is gone: pushes go to its log.

    It also stands for the session (``sid`` is the session's id) when the wrapped
    handler is told that the session closed.
    """

    def __init__(self, agent: IAgent, session: Session, state: ResumeState) -> None:
        self.sid = session.id
        self.session = session
        self.serializer = agent.serializer
        self.link = agent.link
        self.peer = agent.peer
        self.handshake = agent.handshake
        self.close_reason = agent.close_reason
        self.push_format = agent.push_format
        self._agent = agent
        self._state = state

    def __repr__(self) -> str:
        return f"<ParkedAgent sid={self.sid}>"

    state = ConnectionState.CLOSED
    pending_bytes = 0

    @property
    def working(self) -> bool:
        """True while parked: the session's pushes are still taken (into its log)."""
        return self._state.parked is self

    def push(self, route: str, msg: object) -> bool:
        """Buffer a push (encoded as the dropped connection did)."""
        return self.push_prepared(self._agent.prepare_push(route, msg))

    def prepare_push(self, route: str, msg: object) -> bytes:
        """The package as the dropped connection would have sent it."""
        return self._agent.prepare_push(route, msg)

    def push_prepared(self, package: bytes) -> bool:
        """Buffer ``package``; a push the log cannot keep closes the session."""
        state = self._state
        if state.parked is not self:
            return False
        pushes = state.log
        pushes.record(package)
        if pushes.first > state.parked_at + 1:  # a push made while parked is lost
            state.registry.finish(state, "resume buffer overflowed while parked")
        return True

    def kick(self, reason: str = "kick") -> None:
        """The session is kicked while parked: it closes (nobody to tell)."""
        self._state.registry.finish(self._state, f"{CloseReason.KICKED}: {reason}")

    def close(self, reason: str = CloseReason.SERVER_CLOSED) -> None:
        """The session closes while parked."""
        self._state.registry.finish(self._state, reason)


class ResumeState:
    """One resumable session: its log, its current token nonce, its live or parked agent."""

    __slots__ = (
        "agent",
        "closed",
        "ending",
        "inner",
        "log",
        "nonce",
        "parked",
        "parked_at",
        "reason",
        "registry",
        "session",
        "timer",
    )

    def __init__(
        self,
        registry: ResumableSessions,
        session: Session,
        agent: IAgent,
        inner: IConnectionHandler,
        nonce: str,
        pushes: PushLog,
    ) -> None:
        self.registry = registry
        self.session = session
        self.agent: IAgent | None = agent
        self.inner = inner
        self.nonce = nonce
        self.log = pushes
        self.parked: ParkedAgent | None = None
        self.parked_at = 0
        """The pushes sent when the session was parked."""
        self.reason = ""
        """Why its connection dropped (what the session closes with if not resumed)."""
        self.timer: IDelayedCall | None = None
        self.closed = False
        self.ending = False
        """The client said it is leaving (``sys.resume.end``): a drop closes, not parks."""


class ResumableSessions:
    """The resumable sessions of one frontend's :class:`SessionService`."""

    def __init__(
        self,
        sessions: SessionService,
        tokens: ResumeTokens,
        clock: IReactorTime,
        random: Random,
        *,
        window: float,
        max_pushes: int,
        max_bytes: int,
    ) -> None:
        self.sessions = sessions
        self.tokens = tokens
        self.clock = clock
        self.random = random
        self.window = window
        self.max_pushes = max_pushes
        self.max_bytes = max_bytes
        self._states: dict[int, ResumeState] = {}
        sessions.bind_listeners.subscribe(self._uid_changed)
        sessions.unbind_listeners.subscribe(self._uid_changed)

    def __len__(self) -> int:
        return len(self._states)

    def get(self, sid: int) -> ResumeState | None:
        """The resumable session ``sid``, or None."""
        return self._states.get(sid)

    @property
    def parked(self) -> list[ResumeState]:
        """The sessions parked now."""
        return [state for state in self._states.values() if state.parked is not None]

    def new_nonce(self) -> str:
        """A fresh token nonce (128 random bits)."""
        return format(self.random.getrandbits(128), "032x")

    def token(self, state: ResumeState) -> dict[str, Any]:
        """The ``sys.resume`` reply (or push) carrying ``state``'s current token."""
        session = state.session
        token = self.tokens.issue(session.id, session.uid, state.nonce)
        return {"token": token, "window": self.window}

    # -- the life of a resumable session ---------------------------------------

    def register(
        self, session: Session, agent: Agent, inner: IConnectionHandler, nonce: str
    ) -> ResumeState:
        """A new session whose client asked for resume: its pushes are recorded."""
        assert agent.offer is not None
        pushes = PushLog(self.max_pushes, self.max_bytes, push_format_key(agent.offer))
        state = self._states[session.id] = ResumeState(self, session, agent, inner, nonce, pushes)
        agent.push_log = pushes
        return state

    def dropped(self, state: ResumeState, agent: IAgent, reason: str) -> None:
        """The connection of ``state`` closed for ``reason``: park or close the session."""
        if state.agent is not agent or state.closed:
            return  # a connection replaced by a resume: the session is elsewhere now
        session = state.session
        cause = reason.split(":", 1)[0]
        if (
            state.ending
            or cause not in PARKING_REASONS
            or self.sessions.get(session.id) is not session
        ):
            self.finish(state, reason, agent)
            return
        self.park(state, agent, reason)

    def park(self, state: ResumeState, agent: IAgent, reason: str) -> None:
        """Park ``state``'s session for the window (its connection is gone)."""
        parked = ParkedAgent(agent, state.session, state)
        state.session.agent = parked
        state.agent = None
        state.parked = parked
        state.parked_at = state.log.sent
        state.reason = reason
        self._arm(state)
        log.debug(
            "{session} parked for {window} s: {reason}",
            session=state.session,
            window=self.window,
            reason=reason,
        )

    def claim(self, token: object, received: object, format: Hashable) -> ResumeState:
        """The session ``token`` resumes, reserved for the connection presenting it
        (whose client received ``received`` pushes); :class:`ResumeRefused` saying why not.

        The token is used up at once; the window starts again for the new connection's
        acknowledgement.
        """
        claims = self.tokens.open(token)
        state = self._states.get(claims.sid)
        if state is None or state.closed:
            raise ResumeRefused(
                f"session {claims.sid} is gone (its resume window passed, or it closed)"
            )
        if not hmac.compare_digest(state.nonce, claims.nonce):
            raise ResumeRefused("resume token already used or superseded by a newer one")
        session = state.session
        if claims.uid != session.uid:
            raise ResumeRefused(
                f"resume token bound to uid {claims.uid!r}; session {session.id} is bound "
                f"to {session.uid!r}"
            )
        if not isinstance(received, int) or isinstance(received, bool):
            raise ResumeRefused(f"'received' must be the count of pushes, not {received!r}")
        if format != state.log.format:
            raise ResumeRefused(
                f"push format {format} differs from the session's {state.log.format}"
            )
        if state.log.since(received) is None:
            reason = state.log.describe(received)
            self.finish(state, f"resume refused: {reason}")
            raise ResumeRefused(reason)
        live = state.agent
        if live is not None:
            # The client saw the connection die before the server did: it is replaced.
            self.park(state, live, CloseReason.CLIENT_CLOSED)
            live.close(f"{CloseReason.SERVER_CLOSED}: replaced by a resume")
        state.nonce = self.new_nonce()
        self._arm(state)
        return state

    def resume(self, state: ResumeState, agent: Agent, received: int) -> bool:
        """The connection that claimed ``state`` acknowledged: it takes the session and
        gets the pushes after ``received``. False (the connection is kicked) when the
        session closed or lost those pushes meanwhile."""
        if state.closed:
            agent.kick("the session closed before its resume completed")
            return False
        missed = state.log.since(received)
        if missed is None:
            self.finish(state, f"resume refused: {state.log.describe(received)}")
            agent.kick("resume buffer overflowed")
            return False
        self._disarm(state)
        session = state.session
        session.agent = agent
        agent.session = session
        state.agent = agent
        state.parked = None
        for package in missed:
            agent.push_prepared(package)
        agent.push_log = state.log
        log.debug(
            "{session} resumed by {agent}: {count} pushes replayed",
            session=session,
            agent=agent,
            count=len(missed),
        )
        return True

    def finish(self, state: ResumeState, reason: str, agent: IAgent | None = None) -> None:
        """Close ``state``'s session for ``reason`` as a disconnect does (once)."""
        if state.closed:
            return
        state.closed = True
        self._disarm(state)
        session = state.session
        if self._states.get(session.id) is state:
            del self._states[session.id]
        stand_in = state.parked
        if stand_in is None:
            source = agent if agent is not None else state.agent
            assert source is not None
            stand_in = ParkedAgent(source, session, state)
        state.parked = None
        state.agent = None
        try:
            state.inner.disconnected(stand_in, reason)
        except Exception:
            log.failure("closing {session} failed", session=session, level=LogLevel.error)
        if self.sessions.get(session.id) is session:  # a handler that left it open
            self.sessions.closed(session.id, reason)

    def close_all(self, reason: str = CloseReason.SERVER_CLOSED) -> None:
        """Close every parked session (the frontend stops)."""
        for state in self.parked:
            self.finish(state, reason)

    # -- internals -------------------------------------------------------------

    def _arm(self, state: ResumeState) -> None:
        self._disarm(state)
        state.timer = self.clock.callLater(self.window, self._expired, state)

    def _disarm(self, state: ResumeState) -> None:
        timer = state.timer
        if timer is not None and timer.active():
            timer.cancel()
        state.timer = None

    def _expired(self, state: ResumeState) -> None:
        state.timer = None
        self.finish(state, state.reason or CloseReason.CLIENT_CLOSED)

    def _uid_changed(self, session: Session, uid: str) -> None:
        """A live resumable session's uid changed: its client gets a token bound to it."""
        state = self._states.get(session.id)
        if state is None or state.agent is None or state.session is not session:
            return  # parked: the old token names the old uid and is refused
        state.nonce = self.new_nonce()
        state.agent.push(RESUME_ROUTE, self.token(state))
