"""When an agent's deadlines fire: the handshake (+ ack) and the client's next package.

An :class:`~pomelo_twisted.session.Agent` waits for one deadline at a time through a
:class:`DeadlineScheduler`: the agents of a listener share
:class:`~pomelo_twisted.acceptors.deadlines.Deadlines` (one heap under one DelayedCall);
an agent made on its own gets :class:`OwnTimers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["HANDSHAKE_DEADLINE", "IDLE_DEADLINE", "DeadlineScheduler", "OwnTimers"]

# What an agent waits for: the handshake (+ ack) to complete, or the client's next package.
HANDSHAKE_DEADLINE, IDLE_DEADLINE = 0, 1


class DeadlineScheduler(Protocol):
    """Calls ``agent._deadline_passed(kind, now)`` at a time; see ``acceptors.deadlines``."""

    def add(self, delay: float, agent: Agent, kind: int) -> Any: ...
    def add_at(self, when: float, agent: Agent, kind: int) -> Any: ...
    def cancel(self, handle: Any) -> None: ...


class OwnTimers:
    """A DeadlineScheduler of one ``callLater`` per deadline (an agent on its own)."""

    __slots__ = ("clock",)

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def add(self, delay: float, agent: Agent, kind: int) -> IDelayedCall:
        return self.clock.callLater(
            delay, lambda: agent._deadline_passed(kind, self.clock.seconds())
        )

    def add_at(self, when: float, agent: Agent, kind: int) -> IDelayedCall:
        return self.add(when - self.clock.seconds(), agent, kind)

    def cancel(self, handle: IDelayedCall) -> None:
        if handle.active():
            handle.cancel()
