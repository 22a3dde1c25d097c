"""The connection handler of a resumable connection: it wraps the frontend's handler.

Fresh session: the wrapped handler creates it on ``connected``, then it is registered
as resumable (its pushes are recorded). Resumed session: the wrapped handler is not
told (backends see no join); the connection takes the parked session and its missed
pushes. On ``disconnected`` the session is parked or closed
(:meth:`.ResumableSessions.dropped`).
"""

from __future__ import annotations

from ..agent.agent import Agent
from ..handlerwrapper import HandlerWrapper
from ..interfaces import IAgent, IConnectionHandler
from ..session.session import Session
from .parked import ResumableSessions, ResumeState
from .tokens import RESUME_END_ROUTE

__all__ = ["ResumableConnection"]


class ResumableConnection(HandlerWrapper):
    """One resumable connection's handler: ``inner`` for requests, resume on the side.

    ``resuming`` is the session it claimed (None for a new session) and ``received``
    the pushes its client had; ``nonce`` is that of the token sent in the reply.
    """

    __slots__ = ("nonce", "received", "registry", "resuming", "state")

    def __init__(
        self,
        inner: IConnectionHandler,
        registry: ResumableSessions,
        nonce: str,
        resuming: ResumeState | None = None,
        received: int = 0,
    ) -> None:
        super().__init__(inner)
        self.registry = registry
        self.nonce = nonce
        self.resuming = resuming
        self.received = received
        self.state: ResumeState | None = None

    def connected(self, agent: IAgent) -> None:
        """Take the claimed session back, or let ``inner`` create one and record it."""
        assert isinstance(agent, Agent)
        claimed = self.resuming
        if claimed is not None:
            self.resuming = None
            if self.registry.resume(claimed, agent, self.received):
                self.state = claimed
            return
        self.inner.connected(agent)
        session = agent.session
        if isinstance(session, Session):  # a handler without sessions has nothing to resume
            self.state = self.registry.register(session, agent, self.inner, self.nonce)

    def notify(self, agent: IAgent, route: str, body: bytes) -> object:
        """Handled by ``inner``, but for the client's ``sys.resume.end`` (it is leaving:
        the session closes with the connection instead of being parked)."""
        if route == RESUME_END_ROUTE:
            if self.state is not None:
                self.state.ending = True
            return None
        return self.inner.notify(agent, route, body)

    def disconnected(self, agent: IAgent, reason: str) -> None:
        """Park the session (a drop) or close it (anything else)."""
        state = self.state
        if state is None:
            self.inner.disconnected(agent, reason)
        else:
            self.registry.dropped(state, agent, reason)
