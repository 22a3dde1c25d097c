"""How an agent takes in a connection's bytes: in bounded slices, one per reactor turn.

One read may hold thousands of packages (a client writing 20,000 requests at once). The
agent decodes at most ``slice_bytes`` of it and handles at most ``slice_events`` packages,
and no more than ``slice_seconds`` of work, in one turn; the rest waits for the next turn
with the link's reads paused (an :class:`~pomelo_twisted.interfaces.ISlicedLink`), so the
other clients' reads are served between two slices of the burst. The time budget is
checked every :data:`CHUNK` packages, and only on reads that hold more than that: a
well-behaved client's read is handled in one go with no clock read at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ..interfaces import IAgentLink, ISlicedLink
from ..protocol import Event, ProtocolViolation, ServerConnection
from .config import AgentConfig

__all__ = ["CHUNK", "KICK_BACKLOG", "SlicedReader"]

KICK_BACKLOG = "too many packages waiting to be handled"
#: Packages handled between two looks at the clock, within one slice.
CHUNK = 16
# A link that cannot pause its reads (not an ISlicedLink) may queue this many slices.
_MAX_BACKLOG_SLICES = 64


class SlicedReader:
    """The reading half of :class:`~pomelo_twisted.agent.Agent` (a base class)."""

    __slots__ = ("_backlog", "_reads_paused", "_slice_call", "_unfed", "_unfed_at")

    _backlog: list[Event] | None
    """Packages decoded and not handled yet (the next slice handles them first)."""
    _unfed: bytes
    """Bytes received and not decoded yet (after the backlog's), from ``_unfed_at`` on: a
    long read is kept whole and each slice decodes from an offset into it, rather than
    copying what remains of it on every turn."""
    _unfed_at: int
    _slice_call: IDelayedCall | None
    _reads_paused: bool

    def __init__(self) -> None:
        self._backlog = None
        self._unfed = b""
        self._unfed_at = 0
        self._slice_call = None
        self._reads_paused = False

    if TYPE_CHECKING:  # the agent's
        clock: IReactorTime
        config: AgentConfig
        connection: ServerConnection
        link: IAgentLink
        _closing: bool

        def _handle(self, events: list[Event]) -> None: ...
        def _abuse(self, reason: str) -> None: ...
        def _on_violation(self, reason: str) -> None: ...

    def data_received(self, data: bytes) -> None:
        """Bytes from the client, handled a slice a reactor turn."""
        if self._backlog is not None or self._unfed:
            # Behind (a link that cannot pause its reads): these wait their turn.
            self._unfed = self._unfed[self._unfed_at :] + data
            self._unfed_at = 0
            if len(self._unfed) > self.config.slice_bytes * _MAX_BACKLOG_SLICES:
                self._abuse(KICK_BACKLOG)
            return
        limit = self.config.slice_bytes
        if len(data) > limit:
            self._unfed, self._unfed_at = data, limit
            data = data[:limit]
            self._wait()
        self._decode(data)

    def _decode(self, data: bytes) -> None:
        """Decode one slice of bytes and handle what it holds."""
        events = self.connection.receive_data(data)
        if events and isinstance(events[-1], ProtocolViolation):
            # The connection is already CLOSED: nothing decoded before the violation in
            # this read (nor left from an earlier one) can be answered.
            self._backlog, self._unfed = None, b""
            self._on_violation(events[-1].reason)
            return
        if events:
            self._dispatch(events)

    def _dispatch(self, events: list[Event]) -> None:
        """Handle one slice of ``events``; what is over the slice's count or time waits."""
        limit = self.config.slice_events
        if len(events) > limit:
            self._postpone(events[limit:])
            events = events[:limit]
        if len(events) <= CHUNK:
            self._handle(events)
            return
        clock = self.clock
        ends = clock.seconds() + self.config.slice_seconds
        for start in range(0, len(events), CHUNK):
            self._handle(events[start : start + CHUNK])
            if self._closing:
                return
            if clock.seconds() >= ends and start + CHUNK < len(events):
                self._postpone(events[start + CHUNK :])
                return

    def _postpone(self, events: list[Event]) -> None:
        """``events`` wait for the next slice, ahead of what already waited."""
        backlog = self._backlog
        self._backlog = events + backlog if backlog else events
        self._wait()

    def _wait(self) -> None:
        """Handle the rest on the next reactor turn, pausing the reads meanwhile."""
        if self._slice_call is None:
            self._slice_call = self.clock.callLater(0, self._next_slice)
        link = ISlicedLink(self.link, None)
        if link is not None and not self._reads_paused:
            self._reads_paused = True
            link.pause_reading()

    def _next_slice(self) -> None:
        self._slice_call = None
        if self._closing:
            return
        link = ISlicedLink(self.link, None)
        if link is None:
            self._step()
        else:
            link.call_batched(self._step)
        if self._closing:
            return
        if self._backlog is not None or self._unfed:
            self._wait()
        elif link is not None and self._reads_paused:
            self._reads_paused = False
            link.resume_reading()

    def _step(self) -> None:
        """One slice of what waits: decoded packages first, then the bytes after them."""
        backlog, self._backlog = self._backlog, None
        if backlog:
            self._dispatch(backlog)
        elif self._unfed:
            data, start = self._unfed, self._unfed_at
            end = start + self.config.slice_bytes
            if end < len(data):  # more than a slice left: the next turn goes on from end
                self._unfed_at = end
            else:
                self._unfed, self._unfed_at = b"", 0
            self._decode(data[start:end])
