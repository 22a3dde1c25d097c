"""A prefix watch over etcd's gateway: the incremental stream decoder and the IWatch.

``POST /v3/watch`` answers with a never-ending body of newline-separated JSON messages.
:class:`WatchStreamDecoder` (sans I/O) turns bytes, split anywhere, into the interface's
events; :class:`EtcdWatch` feeds it from the HTTP body and ends with ``done``.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .errors import CompactedRevision, KVError, KVUnavailable
from .gateway import WatchMessage, decode, error_from_code
from .interfaces import IWatch, WatchEvent

__all__ = ["EtcdWatch", "WatchStreamDecoder"]

log = Logger()


class WatchStreamDecoder:
    """Bytes of a watch stream in, events out; a line may arrive in any number of pieces.

    :meth:`feed` returns the events of every complete line and raises the KVError of a
    line that ends the watch (cancelled by the server, compacted start, stream error).
    ``max_line`` bounds a line (a single message) so a broken peer cannot grow the buffer.
    """

    def __init__(self, endpoint: str, prefix: str, *, max_line: int = 64 * 1024 * 1024) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self.created = False
        self._max_line = max_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[WatchEvent]:
        """The events completed by ``data``."""
        self._buffer += data
        events: list[WatchEvent] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if line.strip():
                events.extend(self._message(line))
        if len(self._buffer) > self._max_line:
            raise KVUnavailable(
                f"etcd {self.endpoint}: watch of {self.prefix!r}: a message is longer than "
                f"{self._max_line} bytes"
            )
        return events

    def _message(self, line: bytes) -> list[WatchEvent]:
        what = f"watch of {self.prefix!r}"
        try:
            message = decode(line, WatchMessage)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise KVUnavailable(f"etcd {self.endpoint}: {what}: bad message ({exc})") from None
        if message.error is not None:
            error = message.error
            raise error_from_code(
                self.endpoint, error.grpc_code, error.message, error.http_code, what
            )
        result = message.result
        if result is None:
            return []
        if result.created:
            self.created = True
        events = [event.to_event() for event in result.events]
        if result.canceled:
            if result.compact_revision:
                raise CompactedRevision(
                    f"etcd {self.endpoint}: {what}: start revision compacted (compacted up to "
                    f"revision {result.compact_revision})",
                    result.compact_revision,
                )
            raise KVUnavailable(
                f"etcd {self.endpoint}: {what} cancelled by the server: "
                f"{result.cancel_reason or 'no reason given'}"
            )
        return events


@implementer(IWatch)
class EtcdWatch(Protocol):
    """One watch stream: receives the HTTP body, calls ``on_event`` per event in order.

    ``done`` fires None after :meth:`cancel` and errbacks KVUnavailable (the stream ended
    or broke), CompactedRevision, or the KVError of a rejected watch.  ``closed`` fires
    once the HTTP stream is closed too (what a clean shutdown waits for).
    """

    def __init__(self, endpoint: str, prefix: str, on_event: Callable[[WatchEvent], None]) -> None:
        self.done: Deferred[None] = Deferred()
        self.closed: Deferred[None] = Deferred()
        self.prefix = prefix
        self._endpoint = endpoint
        self._on_event = on_event
        self._decoder = WatchStreamDecoder(endpoint, prefix)
        self._cancel_request: Callable[[], None] | None = None
        self._cancelled = False

    def attach(self, cancel_request: Callable[[], None]) -> None:
        """How to cancel the HTTP request if the watch is cancelled before the stream."""
        self._cancel_request = cancel_request

    def cancel(self) -> None:
        """Close the stream; ``done`` fires None.  Idempotent."""
        if self.done.called:
            return
        self._cancelled = True
        self.done.callback(None)
        if self.transport is not None:
            self._close()
        elif self._cancel_request is not None:
            self._cancel_request()

    def opening_failed(self, reason: KVError) -> None:
        """The request failed or was refused before a stream began."""
        if not self.done.called:
            self._cancelled = True
            self.done.errback(reason)
        if not self.closed.called:
            self.closed.callback(None)

    def fail(self, reason: KVError) -> None:
        """End the watch with ``reason`` (unless it already ended)."""
        if not self.done.called:
            self._cancelled = True
            if self.transport is not None:
                self._close()
            self.done.errback(reason)

    def _close(self) -> None:
        # The body's transport is the HTTP client's producer proxy: stopping it drops the
        # connection (a watch stream cannot go back to the pool).
        IPushProducer(self.transport).stopProducing()

    def connectionMade(self) -> None:
        """The stream began; one cancelled meanwhile is closed at once."""
        if self._cancelled:
            self._close()

    def dataReceived(self, data: bytes) -> None:
        """Decode and deliver; a terminal message ends the watch."""
        if self._cancelled:
            return
        try:
            events = self._decoder.feed(data)
        except KVError as reason:
            self.fail(reason)
            return
        for event in events:
            if self._cancelled:
                return
            try:
                self._on_event(event)
            except Exception:
                log.failure("watch callback of {prefix!r} failed", prefix=self.prefix)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The body ended: a broken stream unless the watch was cancelled."""
        if not self.done.called:
            self._cancelled = True
            self.done.errback(
                KVUnavailable(
                    f"etcd {self._endpoint}: watch of {self.prefix!r} stream ended: "
                    f"{reason.getErrorMessage()}"
                )
            )
        if not self.closed.called:
            self.closed.callback(None)
