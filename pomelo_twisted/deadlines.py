"""The one deadline scheduler: many deadlines under one DelayedCall of a clock.

Connections (the handshake and idle timeouts of every agent of a listener) and RPC
calls (each call's deadline) wait for deadlines by the thousand. Each on its own
``callLater``, a deadline would hold a DelayedCall (about half a kilobyte), and a
cancelled one stays in the reactor's heap until the reactor compacts it.
:class:`DeadlineScheduler` keeps them as small entries of one heap under a single
DelayedCall, armed for the earliest, and calls ``target.deadline_passed(kind, now)``
on whatever waited (an :class:`IDeadlineTarget`).
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

__all__ = ["DeadlineHandle", "DeadlineScheduler", "IDeadlineTarget"]

log = Logger()


class IDeadlineTarget(Protocol):
    """What waits for a deadline (an agent, an RPC call)."""

    def deadline_passed(self, kind: int, now: float) -> None:
        """The deadline of ``kind`` (the waiter's own code) has come; ``now``: clock time."""


# One deadline: [when, sequence, target (None once cancelled or fired), kind]. A list,
# not an object: it is the only per-connection timer state (compared by when, then by
# sequence, which is unique: the target is never compared).
DeadlineHandle = list[Any]
_Entry = DeadlineHandle


class DeadlineScheduler:
    """Many deadlines under one DelayedCall of ``clock``.

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

    def add(self, delay: float, target: IDeadlineTarget, kind: int) -> DeadlineHandle:
        """Call ``target.deadline_passed(kind, now)`` in ``delay`` seconds."""
        return self.add_at(self._clock.seconds() + delay, target, kind)

    def add_at(self, when: float, target: IDeadlineTarget, kind: int) -> DeadlineHandle:
        """Call ``target.deadline_passed(kind, now)`` at clock time ``when``."""
        self._seq += 1
        entry: _Entry = [when, self._seq, target, kind]
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
                target = entry[2]
                if target is None:
                    self._cancelled -= 1
                    continue
                entry[2] = None
                try:
                    target.deadline_passed(entry[3], now)
                except Exception:
                    log.failure("deadline of {target} failed", target=target, level=LogLevel.error)
                heap = self._heap  # a cancel may have rebuilt it
        finally:
            self._firing = False
            heap = self._heap
            while heap and heap[0][2] is None:
                heappop(heap)
                self._cancelled -= 1
            if heap:
                self._arm(heap[0][0])
