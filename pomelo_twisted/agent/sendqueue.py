"""The bounded send queue of one client connection.

It is the link's streaming producer: while the transport is paused, writes wait
here, in order; ``resumeProducing`` flushes them until the transport pauses again.
A client that lets more than ``limit`` bytes pile up is a slow consumer: the queue
reports it once (``on_overflow``) and refuses the write.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from ..interfaces import IAgentLink

__all__ = ["SendQueue"]


@implementer(IPushProducer)
class SendQueue:
    """Writes to ``link`` at once, or queues them while the transport is paused."""

    __slots__ = ("_link", "_on_overflow", "_queue", "limit", "paused", "pending_bytes")

    def __init__(self, link: IAgentLink, limit: int, on_overflow: Callable[[int], None]) -> None:
        self._link = link
        self.limit = limit
        self._on_overflow = on_overflow
        self.paused = False
        """Whether the transport asked to stop: writes queue until it resumes."""
        self._queue: deque[bytes] | None = None  # made when a write must wait (760 bytes)
        self.pending_bytes = 0
        """Bytes queued while the transport is paused."""

    def write(self, data: bytes) -> bool:
        """Write ``data`` now or queue it; False if the queue overflowed (and was reported)."""
        if not self.paused:
            self._link.write(data)
            return True
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > self.limit:
            self._on_overflow(self.pending_bytes)
            return False
        return True

    def clear(self) -> None:
        """Drop what is queued: nothing behind a paused transport goes out after a close."""
        self._queue = None
        self.pending_bytes = 0

    # -- IPushProducer -----------------------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: queue further writes."""
        self.paused = True

    def resumeProducing(self) -> None:
        """The transport drained: flush the queue until it pauses again."""
        self.paused = False
        queue = self._queue
        write = self._link.write
        while queue and not self.paused:
            data = queue.popleft()
            self.pending_bytes -= len(data)
            write(data)

    def stopProducing(self) -> None:
        """The transport will take no more data."""
        self.clear()
