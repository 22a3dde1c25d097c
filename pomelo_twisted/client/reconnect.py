"""A client that reconnects after a drop and resumes its session transparently.

:class:`ResumingClient` holds one :class:`~pomelo_twisted.client.core.PomeloClient` at a
time. Its first connection asks the server for resume (``sys.resume``); when the
connection drops (not a kick, not :meth:`ResumingClient.close`) it reconnects with
exponential backoff (bounded in delay and attempts, jittered with the injected
``random.Random``, on the injected clock) and presents its token with the number of
pushes it received. A resumed session gets the pushes it missed, exactly once and in
order, through the same push callbacks; ``on_reconnect`` callbacks run. A refused resume
(the window passed, the buffer overflowed, another frontend...) leaves a new session:
``on_resume_failed(reason)`` callbacks run and the game logs in again.

Requests in flight when the connection drops fail with
:class:`~pomelo_twisted.client.errors.ConnectionClosed` (they are not replayed: the
server may or may not have handled them); requests made while reconnecting fail the
same way at once.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..interfaces import IServerReactor
from .connect import connect
from .core import AnyPushCallback, PomeloClient, PushCallback, ReasonCallback
from .errors import ConnectionClosed

__all__ = [
    "RESUME_END_ROUTE",
    "RESUME_ROUTE",
    "ClientOpener",
    "ResumingClient",
    "connect_resumable",
]

RESUME_ROUTE = "sys.resume"
RESUME_END_ROUTE = "sys.resume.end"
"""The notify :meth:`ResumingClient.close` sends first: the server then closes the session
with the connection instead of parking it for a resume that will not come."""
"""The reserved push route of a fresh resume token (not passed to push callbacks)."""

ClientOpener = Callable[[dict[str, Any]], Deferred[PomeloClient]]
"""``open(resume)``: connect with ``sys.resume = resume``; fires once the handshake is done
(e.g. ``lambda resume: connect(reactor, target, resume=resume)``)."""

ReconnectCallback = Callable[["ResumingClient"], object]

log = Logger()


class ResumingClient:
    """A session that survives dropped connections (see the module docstring).

    ``initial_delay`` is the first retry's delay, doubled per attempt up to
    ``max_delay``, each multiplied by a jitter in [0.5, 1); after ``max_attempts``
    failed attempts in a row the client gives up and closes.
    """

    def __init__(
        self,
        clock: IReactorTime,
        open_client: ClientOpener,
        random: Random,
        *,
        initial_delay: float = 0.5,
        max_delay: float = 10.0,
        max_attempts: int = 10,
    ) -> None:
        self.clock = clock
        self.open_client = open_client
        self.random = random
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        self.client: PomeloClient | None = None
        """The connection now, or None while reconnecting."""
        self.token: str | None = None
        self.reconnects = 0
        """Connections made after a drop (resumed or not)."""
        self._base = 0
        self._attempt = 0
        self._timer: IDelayedCall | None = None
        self._closing = False
        self._close_reason: str | None = None
        self._push_callbacks: dict[str, list[PushCallback]] = {}
        self._any_push_callbacks: list[AnyPushCallback] = []
        self._kick_callbacks: list[ReasonCallback] = []
        self._close_callbacks: list[ReasonCallback] = []
        self._reconnect_callbacks: list[ReconnectCallback] = []
        self._resume_failed_callbacks: list[ReasonCallback] = []

    # -- state -----------------------------------------------------------------

    @property
    def pushes_received(self) -> int:
        """Pushes received in this session, over all its connections."""
        client = self.client
        return self._base + (client.pushes_received if client is not None else 0)

    @property
    def connected(self) -> bool:
        """Whether a connection is up and working."""
        return self.client is not None and self.client.connected

    @property
    def close_reason(self) -> str | None:
        """Why the session ended for good, or None."""
        return self._close_reason

    # -- life ------------------------------------------------------------------

    def start(self) -> Deferred[ResumingClient]:
        """Open the first connection; fires with this client once it is up."""
        return self.open_client({}).addCallback(self._first)

    def _first(self, client: PomeloClient) -> ResumingClient:
        self._attach(client)
        return self

    def close(self) -> Deferred[str]:
        """Close for good (no reconnect); fires with the reason once closed."""
        self._closing = True
        self._cancel_timer()
        client = self.client
        if client is None:
            self._finish("closed by client")
            d: Deferred[str] = Deferred()
            d.callback("closed by client")
            return d
        if client.connected:  # leaving on purpose: the server closes the session now
            client.notify(RESUME_END_ROUTE, {})
        return client.close()

    # -- API of the session ----------------------------------------------------

    def request(self, route: str, msg: Any, timeout: float | None = None) -> Deferred[Any]:
        """A request on the current connection; :class:`ConnectionClosed` while
        reconnecting (and for requests in flight when it drops)."""
        client = self.client
        if client is None:
            return fail(ConnectionClosed(self._close_reason or "reconnecting"))
        return client.request(route, msg, timeout)

    def notify(self, route: str, msg: Any) -> None:
        """A notify; raises :class:`ConnectionClosed` while reconnecting."""
        client = self.client
        if client is None:
            raise ConnectionClosed(self._close_reason or "reconnecting")
        client.notify(route, msg)

    def on(self, route: str, callback: PushCallback) -> None:
        """``callback(body)`` for every push on ``route``, whichever connection brings it."""
        self._push_callbacks.setdefault(route, []).append(callback)

    def on_any_push(self, callback: AnyPushCallback) -> None:
        """``callback(route, body)`` for every push."""
        self._any_push_callbacks.append(callback)

    def on_kick(self, callback: ReasonCallback) -> None:
        """``callback(reason)`` when the server kicks this client (no reconnect follows)."""
        self._kick_callbacks.append(callback)

    def on_close(self, callback: ReasonCallback) -> None:
        """``callback(reason)`` when the session ends for good."""
        self._close_callbacks.append(callback)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """``callback(self)`` after a reconnect resumed the session."""
        self._reconnect_callbacks.append(callback)

    def on_resume_failed(self, callback: ReasonCallback) -> None:
        """``callback(reason)`` after a reconnect whose resume was refused: the
        connection has a new session, the game must log in again."""
        self._resume_failed_callbacks.append(callback)

    # -- internals -------------------------------------------------------------

    def _attach(self, client: PomeloClient) -> None:
        self.client = client
        self._attempt = 0
        reply = client.handshake_sys.get("resume")
        if isinstance(reply, dict) and isinstance(reply.get("token"), str):
            self.token = reply["token"]
        else:
            self.token = None
            log.warn("the server did not offer session resume: no reconnect will resume")
        client.on_any_push(self._dispatch)
        client.on_kick(self._kicked)
        client.on_close(lambda reason: self._lost(client, reason))

    def _dispatch(self, route: str, body: Any) -> None:
        if route == RESUME_ROUTE:
            if isinstance(body, dict) and isinstance(body.get("token"), str):
                self.token = body["token"]
            return
        for callback in tuple(self._push_callbacks.get(route, ())):
            try:
                callback(body)
            except Exception:
                log.failure("push callback for {route} failed", route=route)
        for any_callback in tuple(self._any_push_callbacks):
            try:
                any_callback(route, body)
            except Exception:
                log.failure("push callback (any route) failed on {route}", route=route)

    def _kicked(self, reason: str) -> None:
        self._closing = True
        for callback in tuple(self._kick_callbacks):
            try:
                callback(reason)
            except Exception:
                log.failure("kick callback failed")

    def _lost(self, client: PomeloClient, reason: str) -> None:
        if client is not self.client:
            return
        self._base += client.pushes_received
        self.client = None
        if self._closing or self.token is None:
            self._finish(reason)
            return
        log.info("connection lost ({reason}): reconnecting", reason=reason)
        self._schedule()

    def _schedule(self) -> None:
        self._attempt += 1
        if self._attempt > self.max_attempts:
            self._finish(f"gave up reconnecting after {self.max_attempts} attempts")
            return
        delay = min(self.max_delay, self.initial_delay * 2 ** (self._attempt - 1))
        delay *= self.random.uniform(0.5, 1.0)
        self._timer = self.clock.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._timer = None
        resume = {"token": self.token, "received": self._base}
        self.open_client(resume).addCallbacks(self._reconnected, self._retry)

    def _retry(self, failure: Failure) -> None:
        log.info("reconnect failed: {error}", error=failure.getErrorMessage())
        if self._closing:
            self._finish("closed by client")
        else:
            self._schedule()

    def _reconnected(self, client: PomeloClient) -> None:
        if self._closing:
            client.close()
            self._finish("closed by client")
            return
        self.reconnects += 1
        reply = client.handshake_sys.get("resume")
        resumed = isinstance(reply, dict) and reply.get("resumed") is True
        if not resumed:
            self._base = 0
        self._attach(client)
        if resumed:
            callbacks: list[Any] = self._reconnect_callbacks
            arg: Any = self
        else:
            reason = reply.get("refused", "not resumed") if isinstance(reply, dict) else "no resume"
            log.info("resume refused: {reason}", reason=reason)
            callbacks, arg = self._resume_failed_callbacks, reason
        for callback in tuple(callbacks):
            try:
                callback(arg)
            except Exception:
                log.failure("reconnect callback failed")

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _finish(self, reason: str) -> None:
        if self._close_reason is not None:
            return
        self._close_reason = reason
        for callback in tuple(self._close_callbacks):
            try:
                callback(reason)
            except Exception:
                log.failure("close callback failed")


def connect_resumable(
    reactor: IServerReactor,
    target: str,
    random: Random,
    *,
    initial_delay: float = 0.5,
    max_delay: float = 10.0,
    max_attempts: int = 10,
    **options: Any,
) -> Deferred[ResumingClient]:
    """A :class:`ResumingClient` of ``target`` (``options`` go to every
    :func:`~pomelo_twisted.client.connect`), once its first connection is up."""

    def open_client(resume: dict[str, Any]) -> Deferred[PomeloClient]:
        return connect(reactor, target, resume=resume, **options)

    client = ResumingClient(
        reactor,
        open_client,
        random,
        initial_delay=initial_delay,
        max_delay=max_delay,
        max_attempts=max_attempts,
    )
    return client.start()
