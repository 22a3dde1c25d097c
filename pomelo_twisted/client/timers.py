"""Timed bookkeeping of a client: requests in flight and heartbeats, on an ``IReactorTime``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .errors import ConnectionClosed, RequestTimeout

__all__ = ["MAX_REQUEST_ID", "HeartbeatMonitor", "PendingRequest", "RequestTable"]

MAX_REQUEST_ID = 0x7FFFFFFE
"""The largest request id used; the next one is 1 (ids stay below 2**31 - 1)."""

_DEAD_SLACK = 0.001  # seconds of tolerance before the dead-server check re-arms itself


class PendingRequest:
    """A request waiting for its response."""

    __slots__ = ("deferred", "route", "seconds", "timer")

    def __init__(
        self, deferred: Deferred[Any], route: str, timer: IDelayedCall | None, seconds: float
    ) -> None:
        self.deferred = deferred
        self.route = route
        self.timer = timer
        self.seconds = seconds


class RequestTable:
    """Requests in flight by id: id allocation, per-request timeouts, cancellation.

    ``forget(id)`` is called for a request that timed out or was cancelled, so the
    protocol layer stops tracking it too.
    """

    __slots__ = ("_clock", "_forget", "_last_id", "_pending")

    def __init__(self, clock: IReactorTime, forget: Callable[[int], None]) -> None:
        self._clock = clock
        self._forget = forget
        self._pending: dict[int, PendingRequest] = {}
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._pending)

    def next_id(self) -> int:
        """The id for the next request: counting up from 1, wrapping, skipping ids in flight."""
        pending = self._pending
        msg_id = self._last_id
        while True:
            msg_id = msg_id + 1 if msg_id < MAX_REQUEST_ID else 1
            if msg_id not in pending:
                self._last_id = msg_id
                return msg_id

    def add(self, msg_id: int, route: str, seconds: float | None) -> Deferred[Any]:
        """Track request ``msg_id``; it times out after ``seconds`` (never if None or <= 0)."""
        timer = None
        if seconds is not None and seconds > 0:
            timer = self._clock.callLater(seconds, self._timed_out, msg_id)
        d: Deferred[Any] = Deferred(lambda _d: self._cancelled(msg_id))
        self._pending[msg_id] = PendingRequest(d, route, timer, seconds or 0.0)
        return d

    def pop(self, msg_id: int) -> PendingRequest | None:
        """Stop tracking ``msg_id`` (its response arrived); ``None`` if unknown or expired."""
        pending = self._pending.pop(msg_id, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        return pending

    def fail_all(self, reason: str) -> None:
        """Errback every request in flight with :class:`ConnectionClosed`."""
        pending, self._pending = self._pending, {}
        for request in pending.values():
            if request.timer is not None:
                request.timer.cancel()
            request.deferred.errback(ConnectionClosed(reason))

    def _timed_out(self, msg_id: int) -> None:
        pending = self._pending.pop(msg_id)
        self._forget(msg_id)
        pending.deferred.errback(RequestTimeout(pending.route, msg_id, pending.seconds))

    def _cancelled(self, msg_id: int) -> None:
        if self.pop(msg_id) is not None:
            self._forget(msg_id)


class HeartbeatMonitor:
    """Heartbeats as the reference client does them, for a server interval of H seconds.

    When a server heartbeat arrives, one client heartbeat is scheduled H later (one
    pending at a time). After sending one, if no package at all arrives for 2×H the
    server is dead: ``dead()`` is called. Any package pushes that deadline back; a server
    heartbeat cancels it.
    """

    __slots__ = (
        "_clock",
        "_dead",
        "_dead_call",
        "_deadline",
        "_send",
        "_send_call",
        "_stopped",
        "interval",
    )

    def __init__(
        self,
        clock: IReactorTime,
        interval: float,
        send: Callable[[], None],
        dead: Callable[[], None],
    ) -> None:
        self._clock = clock
        self.interval = interval
        self._send = send
        self._dead = dead
        self._send_call: IDelayedCall | None = None
        self._dead_call: IDelayedCall | None = None
        self._deadline = 0.0
        self._stopped = False

    def package_received(self) -> None:
        """Any package arrived: the server is alive."""
        if self._dead_call is not None:
            self._deadline = self._clock.seconds() + 2 * self.interval

    def heartbeat_received(self) -> None:
        """A server heartbeat arrived: stop watching, schedule our next heartbeat."""
        if self._dead_call is not None:
            self._dead_call.cancel()
            self._dead_call = None
        if self._send_call is None and not self._stopped:
            self._send_call = self._clock.callLater(self.interval, self._send_heartbeat)

    def stop(self) -> None:
        """Cancel every timer for good (the connection is closing)."""
        self._stopped = True
        for call in (self._send_call, self._dead_call):
            if call is not None and call.active():
                call.cancel()
        self._send_call = self._dead_call = None

    def _send_heartbeat(self) -> None:
        self._send_call = None
        self._send()
        if self._stopped:
            return
        timeout = 2 * self.interval
        self._deadline = self._clock.seconds() + timeout
        if self._dead_call is None:
            self._dead_call = self._clock.callLater(timeout, self._check)

    def _check(self) -> None:
        self._dead_call = None
        remaining = self._deadline - self._clock.seconds()
        if remaining > _DEAD_SLACK:
            self._dead_call = self._clock.callLater(remaining, self._check)
        else:
            self._dead()
