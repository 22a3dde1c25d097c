"""SerialFilter: one request at a time per session, in arrival order.

A session's requests (and notifies) queue behind each other: ``before`` returns a
Deferred that fires when it is the request's turn, ``after`` hands the turn to the
next one in the next reactor turn (so the finished request's response leaves first).
A request holding the turn longer than ``timeout`` seconds loses it (with a warning),
so a handler that never answers cannot block its session for good; its late ``after``
then releases nothing. Empty queues are dropped.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IAfterFilter, IBeforeFilter

__all__ = ["SerialFilter"]

log = Logger()


def _session_key(session: Any) -> tuple[object, object]:
    return (getattr(session, "frontend_id", None), session.id)


class _Ticket:
    """One request's place in its session's queue."""

    __slots__ = ("done", "handoff", "key", "route", "timer", "turn")

    def __init__(self, key: tuple[object, object], route: str) -> None:
        self.key = key
        self.route = route
        self.turn: Deferred[None] | None = None
        self.timer: IDelayedCall | None = None
        self.handoff: IDelayedCall | None = None
        self.done = False


@implementer(IBeforeFilter, IAfterFilter)
class SerialFilter:
    """Serialises each session's requests.

    A session is keyed by ``(session.frontend_id, session.id)``: session ids are unique
    per frontend only, and a backend serves sessions of several frontends.
    """

    def __init__(self, clock: IReactorTime, timeout: float = 10.0) -> None:
        self.clock = clock
        self.timeout = timeout
        self._queues: dict[tuple[object, object], deque[_Ticket]] = {}
        self._key = f"serial.{id(self):x}"

    def __len__(self) -> int:
        """The number of sessions with a request running or waiting."""
        return len(self._queues)

    def queued(self, session: object) -> int:
        """Requests of ``session`` running or waiting (0 or 1 running)."""
        return len(self._queues.get(_session_key(session), ()))

    def before(self, context: Any) -> Deferred[None] | None:
        """None when the session is idle, else a Deferred firing at this request's turn."""
        ticket = _Ticket(_session_key(context.session), context.route)
        context.attributes[self._key] = ticket
        queue = self._queues.setdefault(ticket.key, deque())
        queue.append(ticket)
        if len(queue) == 1:
            self._start(ticket)
            return None
        ticket.turn = Deferred(lambda _: self._release(ticket))
        return ticket.turn

    def after(self, context: Any, response: Any) -> Any:
        """Hand the turn to the session's next request; the response passes unchanged."""
        ticket = context.attributes.pop(self._key, None)
        if isinstance(ticket, _Ticket):
            self._release(ticket)
        return response

    def _start(self, ticket: _Ticket) -> None:
        ticket.timer = self.clock.callLater(self.timeout, self._expire, ticket)

    def _expire(self, ticket: _Ticket) -> None:
        log.warn(
            "serial filter: {route} of session {session} held its turn over {timeout}s; "
            "releasing it",
            route=ticket.route,
            session=ticket.key[1],
            timeout=self.timeout,
        )
        ticket.timer = None
        self._release(ticket)

    def _release(self, ticket: _Ticket) -> None:
        """Take ``ticket`` out of its queue; when it held the turn, the next one gets it.

        Runs once per ticket: after a timeout, a late ``after`` releases nothing."""
        if ticket.done:
            return
        ticket.done = True
        for call in (ticket.timer, ticket.handoff):
            if call is not None and call.active():
                call.cancel()
        ticket.timer = ticket.handoff = None
        queue = self._queues[ticket.key]
        had_turn = queue[0] is ticket
        queue.remove(ticket)
        if not queue:
            del self._queues[ticket.key]
        elif had_turn:
            self._grant(queue[0])

    def _grant(self, ticket: _Ticket) -> None:
        # The turn passes in a later reactor turn (callLater(0)): the request that just
        # finished delivers its response first, so responses leave in arrival order too,
        # and a long queue of synchronous handlers drains without recursion.
        self._start(ticket)
        ticket.handoff = self.clock.callLater(0, self._go, ticket)

    def _go(self, ticket: _Ticket) -> None:
        ticket.handoff = None
        if not ticket.done and ticket.turn is not None and not ticket.turn.called:
            ticket.turn.callback(None)
