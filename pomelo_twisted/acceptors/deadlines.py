"""Deadlines: the handshake and idle timeouts of every connection of a listener.

An :class:`~pomelo_twisted.session.Agent` waits for one deadline at a time (the
handshake + ack, then the client's next package). Each on its own ``callLater``, a
connection would hold a DelayedCall (about half a kilobyte), and a cancelled one stays
in the reactor's heap until the reactor compacts it. :class:`Deadlines` keeps them as
small entries of one heap under a single DelayedCall, armed for the earliest.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

if TYPE_CHECKING:
    from ..session import Agent

__all__ = ["Deadlines"]

log = Logger()

# One deadline: [when, sequence, agent (None once cancelled or fired), kind]. A list,
# not an object: it is the only per-connection timer state (compared by when, then by
# sequence, which is unique: the agent is never compared).
_Entry = list[Any]


class Deadlines:
    """A :class:`~pomelo_twisted.session.timers.DeadlineScheduler` of many agents
    under one DelayedCall.

    Deadlines fire in time order, equal times in the order they were added, each at the
    clock time it names, as a ``callLater`` per agent would. With nothing left to wait
    for, no call stays pending on the clock.
    """

    __slots__ = ("_at", "_call", "_cancelled", "_clock", "_firing", "_heap", "_seq")

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._heap: list[_Entry] = []
        self._seq = 0
        self._cancelled = 0
        self._call: IDelayedCall | None = None
        self._at = 0.0
        self._firing = False

    def __len__(self) -> int:
        """Deadlines still to come."""
        return len(self._heap) - self._cancelled

    def add(self, delay: float, agent: Agent, kind: int) -> _Entry:
        """Call ``agent._deadline_passed(kind, now)`` in ``delay`` seconds."""
        return self.add_at(self._clock.seconds() + delay, agent, kind)

    def add_at(self, when: float, agent: Agent, kind: int) -> _Entry:
        """Call ``agent._deadline_passed(kind, now)`` at clock time ``when``."""
        self._seq += 1
        entry: _Entry = [when, self._seq, agent, kind]
        heappush(self._heap, entry)
        if not self._firing and self._heap[0] is entry:
            self._arm(when)
        return entry

    def cancel(self, entry: _Entry) -> None:
        """Forget ``entry`` (nothing happens if it fired or was cancelled already)."""
        if entry[2] is None:
            return
        entry[2] = None
        self._cancelled += 1
        heap = self._heap
        if self._cancelled == len(heap):
            heap.clear()
            self._cancelled = 0
            if self._call is not None and not self._firing:
                if self._call.active():
                    self._call.cancel()
                self._call = None
        elif self._cancelled > 64 and 2 * self._cancelled > len(heap):
            # Mostly dead entries: rebuild (the armed call may now be early; it re-arms).
            self._heap = [e for e in heap if e[2] is not None]
            heapify(self._heap)
            self._cancelled = 0

    def _arm(self, when: float) -> None:
        call = self._call
        if call is not None:
            if call.active() and self._at <= when:
                return
            if call.active():
                call.cancel()
        self._at = when
        self._call = self._clock.callLater(max(0.0, when - self._clock.seconds()), self._fire)

    def _fire(self) -> None:
        self._call = None
        self._firing = True
        heap = self._heap
        try:
            # The time the call was armed for counts as reached even if the clock's
            # float arithmetic lands a hair short of it.
            now = max(self._clock.seconds(), self._at)
            while heap and heap[0][0] <= now:
                entry = heappop(heap)
                agent = entry[2]
                if agent is None:
                    self._cancelled -= 1
                    continue
                entry[2] = None
                try:
                    agent._deadline_passed(entry[3], now)
                except Exception:
                    log.failure("deadline of {agent} failed", agent=agent)
                heap = self._heap  # a cancel may have rebuilt it
        finally:
            self._firing = False
            heap = self._heap
            while heap and heap[0][2] is None:
                heappop(heap)
                self._cancelled -= 1
            if heap:
                self._arm(heap[0][0])
