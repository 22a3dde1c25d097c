"""``/api/events``: Server-Sent Events pushing a snapshot of the cluster every interval.

The master polls its servers only while at least one page listens: the first client
starts a :class:`~twisted.internet.task.LoopingCall` on the injected clock (a snapshot
at once, then one every ``interval`` seconds); the last one leaving stops it. A
snapshot still being taken when the next tick comes makes that tick skip (a slow server
never piles polls up). A client joining while the loop runs gets the latest snapshot at
once. Each snapshot is one event::

    event: snapshot
    data: {"time": ..., "servers": [...]}

At most ``max_clients`` streams are open at once (503 beyond).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .snapshot import Snapshots

__all__ = ["MAX_CLIENTS", "EventStream", "sse_frame"]

log = Logger()

#: The most event streams open at once (each is one open HTTP connection).
MAX_CLIENTS = 64
#: Milliseconds a browser waits before reconnecting a dropped stream.
RETRY_MS = 2000


def sse_frame(event: str, data: Any) -> bytes:
    """One Server-Sent Event: ``event: EVENT``, ``data: JSON`` (a single line), a blank line."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class EventStream(Resource):
    """The event stream of snapshots (see the module docstring)."""

    isLeaf = True  # noqa: N815 (twisted.web's name)

    def __init__(
        self,
        snapshots: Snapshots,
        clock: IReactorTime,
        interval: float,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        super().__init__()
        self.snapshots = snapshots
        self.clock = clock
        self.interval = interval
        self.max_clients = max_clients
        self.clients: list[Request] = []
        self._loop: LoopingCall | None = None
        self._taking = False
        self._latest: bytes | None = None

    @property
    def polling(self) -> bool:
        """Whether snapshots are being taken (some client listens)."""
        return self._loop is not None

    def render_GET(self, request: Request) -> bytes | int:  # noqa: N802 (twisted.web's name)
        """Open a stream: headers, the retry delay, the latest snapshot if any."""
        if len(self.clients) >= self.max_clients:
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return f"too many dashboard streams open (at most {self.max_clients})\n".encode()
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.write(f"retry: {RETRY_MS}\n\n".encode())
        self.clients.append(request)
        request.notifyFinish().addBoth(self._gone, request)
        if self._latest is not None:
            request.write(self._latest)
        if self._loop is None:
            loop = self._loop = LoopingCall(self._tick)
            loop.clock = self.clock
            loop.start(self.interval, now=True).addErrback(self._failed)
        return NOT_DONE_YET

    def render_HEAD(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        """The stream's headers only: no stream is opened."""
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        return b""

    def _gone(self, _: object, request: Request) -> None:
        if request in self.clients:
            self.clients.remove(request)
        if not self.clients:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, self._loop = self._loop, None
        self._latest = None
        if loop is not None and loop.running:
            loop.stop()

    def _tick(self) -> None:
        if self._taking:
            return
        self._taking = True
        d = self.snapshots.take()
        d.addCallback(self._broadcast)
        d.addErrback(self._failed)
        d.addBoth(self._taken)

    def _taken(self, _: object) -> None:
        self._taking = False

    def _broadcast(self, snapshot: dict[str, Any]) -> None:
        if self._loop is None:
            return  # every client left while it was taken
        frame = self._latest = sse_frame("snapshot", snapshot)
        for request in list(self.clients):
            request.write(frame)

    def _failed(self, failure: Failure) -> None:
        log.failure("the dashboard could not take a snapshot of the cluster", failure)

    def close(self) -> None:
        """End every stream and stop polling (the dashboard is stopping)."""
        for request in list(self.clients):
            request.finish()
        self.clients.clear()
        self._stop_loop()
