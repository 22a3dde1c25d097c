"""The transport-agnostic Pomelo client: one :class:`PomeloClient` per connection.

The core drives a sans-I/O :class:`~pomelo_twisted.protocol.ClientConnection` and writes
through a :class:`TransportAdapter` (``write(bytes)``, ``lose_connection()``), so the same
code runs over TCP, TLS, WebSocket and in-memory test transports. A transport feeds it
``attach``/``start`` (or ``connection_made``), ``data_received`` and ``connection_lost``.
All timers (handshake, requests, heartbeats) run on the injected ``IReactorTime``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from pomelo_twisted.errors import SerializationError
from pomelo_twisted.interfaces import ISerializer
from pomelo_twisted.protocol import (
    CODE_OK,
    ClientConnection,
    ClientHandshake,
    ConnectionState,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Ignored,
    Kick,
    Notify,
    ProtocolViolation,
    Push,
    Request,
    Response,
)
from pomelo_twisted.protocol.packet import MAX_BODY_LENGTH
from pomelo_twisted.serializers import JsonSerializer, get_serializer

from .errors import ClientError, ConnectionClosed, HandshakeRejected, HandshakeTimeout
from .timers import HeartbeatMonitor, RequestTable

__all__ = [
    "DEFAULT_CLIENT_MAX_PACKET_SIZE",
    "PomeloClient",
    "TransportAdapter",
]

DEFAULT_CLIENT_MAX_PACKET_SIZE = MAX_BODY_LENGTH
"""16 MiB - 1: the largest body a package header can declare."""

PushCallback = Callable[[Any], object]
AnyPushCallback = Callable[[str, Any], object]
"""``callback(route, body)``: any push (see :meth:`PomeloClient.on_any_push`)."""
ReasonCallback = Callable[[str], object]


class TransportAdapter(Protocol):
    """What the core needs from a transport: send one package, hang up."""

    def write(self, data: bytes) -> None:
        """Send ``data`` (always exactly one whole package) to the server."""

    def lose_connection(self) -> None:
        """Close the connection; the transport reports ``connection_lost`` when it is gone."""


def _no_transport(data: bytes) -> None:
    raise ClientError("the client is not attached to a transport")


class PomeloClient:
    """One client session with a Pomelo server, independent of the transport.

    Usually obtained from :func:`pomelo_twisted.client.connect`. Its Deferreds are
    awaitable: ``reply = await client.request("chat.chatHandler.send", {"text": "hi"})``.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        *,
        user: Any = None,
        handshake_timeout: float | None = 10.0,
        request_timeout: float | None = 10.0,
        client_type: str = "python-twisted",
        version: str = "0.1.0",
        max_packet_size: int = DEFAULT_CLIENT_MAX_PACKET_SIZE,
        serializer: str | None = None,
        resume: Mapping[str, Any] | None = None,
    ) -> None:
        self._clock = clock
        self._resume = resume
        self.pushes_received = 0
        """Pushes received on this connection (a resume tells the server how many)."""
        self.handshake_sys: Mapping[str, Any] = MappingProxyType({})
        """The fields of the handshake reply's ``sys`` the client does not read itself
        (what the handshake negotiated: ``resume``...)."""
        self._wanted_serializer = serializer
        self._conn = ClientConnection(min(max_packet_size, MAX_BODY_LENGTH))
        self._user = user
        self._handshake_timeout = handshake_timeout
        self._request_timeout = request_timeout
        self._client_type = client_type
        self._version = version
        self._adapter: TransportAdapter | None = None
        self._write: Callable[[bytes], None] = _no_transport
        self._serializer: ISerializer = JsonSerializer()
        self._requests = RequestTable(clock, self._conn.forget)
        self._push_callbacks: dict[str, list[PushCallback]] = {}
        self._any_push_callbacks: list[AnyPushCallback] = []
        self._kick_callbacks: list[ReasonCallback] = []
        self._close_callbacks: list[ReasonCallback] = []
        self._closed_waiters: list[Deferred[str]] = []
        self._close_reason: str | None = None
        self._transport_gone = False
        self._closed_fired = False
        self._handshake_timer: IDelayedCall | None = None
        self._heartbeats: HeartbeatMonitor | None = None
        self._dictionary: Mapping[str, int] = MappingProxyType({})
        self._handshake_user: Any = None
        self.ready: Deferred[PomeloClient] = Deferred(self._cancel_handshake)
        """Fires with this client when handshake + ack are done (chain it once)."""

    # -- properties -----------------------------------------------------------

    @property
    def dictionary(self) -> Mapping[str, int]:
        """The route → code dictionary the server sent in the handshake (empty if none)."""
        return self._dictionary

    @property
    def heartbeat(self) -> float | None:
        """The server's heartbeat interval in seconds, or ``None`` (no heartbeats)."""
        return self._heartbeats.interval if self._heartbeats is not None else None

    @property
    def handshake_user(self) -> Any:
        """The ``user`` data of the server's handshake reply (``None`` when absent)."""
        return self._handshake_user

    @property
    def serializer(self) -> ISerializer:
        """The body serializer announced by the server (JSON when it announced none)."""
        return self._serializer

    @property
    def connected(self) -> bool:
        """Whether requests can be sent (handshake done, connection not closed)."""
        return self._conn.state is ConnectionState.WORKING

    @property
    def pending_requests(self) -> int:
        """How many requests are waiting for a response."""
        return len(self._requests)

    @property
    def close_reason(self) -> str | None:
        """Why the session ended, or ``None`` while it is alive."""
        return self._close_reason

    @property
    def closed(self) -> Deferred[str]:
        """A new Deferred firing with the close reason once the connection is gone."""
        d: Deferred[str] = Deferred()
        if self._closed_fired:
            assert self._close_reason is not None
            d.callback(self._close_reason)
        else:
            self._closed_waiters.append(d)
        return d

    # -- transport side -------------------------------------------------------

    def attach(self, adapter: TransportAdapter) -> None:
        """Bind the transport (connected, maybe not usable yet); starts the handshake timer."""
        self._adapter = adapter
        self._write = adapter.write
        if self._close_reason is not None:
            adapter.lose_connection()
            return
        seconds = self._handshake_timeout
        if seconds is not None and seconds > 0 and self._handshake_timer is None:
            self._handshake_timer = self._clock.callLater(seconds, self._handshake_timed_out)

    def start(self) -> None:
        """Send the client handshake (the transport can now carry packages)."""
        if self._close_reason is not None:
            return
        sys: dict[str, Any] = {"type": self._client_type, "version": self._version, "rsa": {}}
        if self._wanted_serializer is not None:
            sys["serializer"] = self._wanted_serializer
        if self._resume is not None:
            sys["resume"] = dict(self._resume)
        self._write(self._conn.send(ClientHandshake(sys=sys, user=self._user)))

    def connection_made(self, adapter: TransportAdapter) -> None:
        """``attach`` then ``start``: for transports usable as soon as they connect."""
        self.attach(adapter)
        self.start()

    def data_received(self, data: bytes) -> None:
        """Feed bytes from the server: any number of whole or partial packages."""
        conn = self._conn
        before = conn.packages_received
        events = conn.receive_data(data)
        heartbeats = self._heartbeats
        if heartbeats is not None and conn.packages_received != before:
            heartbeats.package_received()
        for event in events:
            if self._close_reason is not None:
                break  # a callback closed the session: drop what follows
            if isinstance(event, Response):
                self._on_response(event)
            elif isinstance(event, Push):
                self._on_push(event)
            elif isinstance(event, Heartbeat):
                if heartbeats is not None:
                    heartbeats.heartbeat_received()
            elif isinstance(event, HandshakeResponse):
                self._on_handshake_response(event)
            elif isinstance(event, Kick):
                self._on_kick(event.reason)
            elif isinstance(event, ProtocolViolation):
                self.log.warn("protocol error from the server: {reason}", reason=event.reason)
                self._end(f"protocol error: {event.reason}")
            elif isinstance(event, Ignored):
                self.log.debug("ignored package: {reason}", reason=event.reason)
            else:  # pragma: no cover - the client connection reports nothing else
                self.log.warn("unexpected event {event!r}", event=event)

    def connection_lost(self, reason: str) -> None:
        """The transport is gone; ``reason`` is used unless the session already ended."""
        if self._transport_gone:
            return
        self._transport_gone = True
        self._end(reason)
        self._fire_closed()

    # -- API ------------------------------------------------------------------

    def request(self, route: str, msg: Any, timeout: float | None = None) -> Deferred[Any]:
        """Send a request; the Deferred fires with the decoded response body.

        Error bodies such as ``{"code": 500}`` are results, not failures. Failures:
        :class:`RequestTimeout` after ``timeout`` seconds (default: the client's
        ``request_timeout``; 0 or less means never) and :class:`ConnectionClosed`.
        Cancelling the Deferred forgets the request. A body the serializer cannot encode
        or a route the protocol cannot carry raises at once.
        """
        if self._conn.state is not ConnectionState.WORKING:
            return fail(self._not_working())
        body = self._serializer.encode(msg)
        msg_id = self._requests.next_id()
        data = self._conn.send(Request(msg_id, route, body))
        d = self._requests.add(msg_id, route, self._request_timeout if timeout is None else timeout)
        self._write(data)
        return d

    def notify(self, route: str, msg: Any) -> None:
        """Send a notify (never answered); raises :class:`ClientError` when not connected."""
        if self._conn.state is not ConnectionState.WORKING:
            raise self._not_working()
        self._write(self._conn.send(Notify(route, self._serializer.encode(msg))))

    def on(self, route: str, callback: PushCallback) -> None:
        """Call ``callback(body)`` for every push on ``route`` (several callbacks allowed)."""
        self._push_callbacks.setdefault(route, []).append(callback)

    def off(self, route: str, callback: PushCallback) -> None:
        """Stop calling ``callback`` for pushes on ``route`` (no error if it was not set)."""
        callbacks = self._push_callbacks.get(route)
        if callbacks is not None and callback in callbacks:
            callbacks.remove(callback)
            if not callbacks:
                del self._push_callbacks[route]

    def on_any_push(self, callback: AnyPushCallback) -> None:
        """Call ``callback(route, body)`` for every push, whatever its route (after the
        route's own callbacks): for REPLs, bots and recorders."""
        self._any_push_callbacks.append(callback)

    def on_kick(self, callback: ReasonCallback) -> None:
        """Call ``callback(reason)`` when the server kicks this client."""
        self._kick_callbacks.append(callback)

    def on_close(self, callback: ReasonCallback) -> None:
        """Call ``callback(reason)`` once the connection is gone, whatever the cause."""
        self._close_callbacks.append(callback)

    def close(self) -> Deferred[str]:
        """Close the connection; returns :attr:`closed`."""
        self._end("closed by client")
        return self.closed

    # -- events ---------------------------------------------------------------

    def _on_handshake_response(self, event: HandshakeResponse) -> None:
        if event.code != CODE_OK:
            self.log.warn(
                "handshake rejected: code {code} {msg}", code=event.code, msg=event.message or ""
            )
            self._end(
                f"handshake rejected with code {event.code}",
                HandshakeRejected(event.code, event.message),
            )
            return
        try:
            self._serializer = get_serializer(event.serializer or "json")
        except ValueError as exc:
            self._end("unknown serializer", ClientError(f"handshake: {exc}"))
            return
        if event.heartbeat is not None:
            self._heartbeats = HeartbeatMonitor(
                self._clock, event.heartbeat, self._send_heartbeat, self._heartbeat_timed_out
            )
        dictionary = self._conn.dictionary
        if dictionary is not None:
            self._dictionary = MappingProxyType(dictionary.route_to_code())
        self._handshake_user = event.user
        self.handshake_sys = MappingProxyType(dict(event.extra_sys or {}))
        self._write(self._conn.send(HandshakeAck()))
        self._cancel_timer(self._handshake_timer)
        self._handshake_timer = None
        self.log.debug(
            "handshake done (heartbeat {heartbeat}, serializer {serializer})",
            heartbeat=event.heartbeat,
            serializer=self._serializer.name,
        )
        self.ready.callback(self)

    def _on_response(self, event: Response) -> None:
        pending = self._requests.pop(event.id)
        if pending is None:
            self.log.debug("response to unknown or expired request {id} ignored", id=event.id)
            return
        try:
            body = self._serializer.decode(event.body)
        except SerializationError as exc:
            pending.deferred.errback(exc)
            return
        pending.deferred.callback(body)

    def _on_push(self, event: Push) -> None:
        self.pushes_received += 1
        callbacks = self._push_callbacks.get(event.route)
        if not callbacks and not self._any_push_callbacks:
            self.log.debug("push on {route} with no callback", route=event.route)
            return
        try:
            body = self._serializer.decode(event.body)
        except SerializationError as exc:
            self.log.warn("undecodable push on {route}: {error}", route=event.route, error=exc)
            return
        for callback in tuple(callbacks or ()):
            try:
                callback(body)
            except Exception:
                self.log.failure("push callback for {route} failed", route=event.route)
        for any_callback in tuple(self._any_push_callbacks):
            try:
                any_callback(event.route, body)
            except Exception:
                self.log.failure("push callback (any route) failed on {route}", route=event.route)

    def _on_kick(self, reason: str) -> None:
        self.log.info("kicked by the server: {reason}", reason=reason)
        self._call_each(self._kick_callbacks, reason, "kick")
        self._end(f"kicked: {reason}")

    # -- heartbeats -----------------------------------------------------------

    def _send_heartbeat(self) -> None:
        if self._conn.state is ConnectionState.WORKING:
            self._write(self._conn.send(Heartbeat()))

    def _heartbeat_timed_out(self) -> None:
        self.log.warn("no package from the server for 2 heartbeat intervals")
        self._end("heartbeat timeout")

    # -- timeouts and shutdown --------------------------------------------------

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        seconds = self._handshake_timeout or 0.0
        self.log.warn("handshake timed out after {seconds} s", seconds=seconds)
        self._end("handshake timeout", HandshakeTimeout(seconds))

    def _cancel_handshake(self, _d: Deferred[PomeloClient]) -> None:
        self._end("handshake cancelled", fire_ready=False)

    def _not_working(self) -> ClientError:
        if self._close_reason is not None:
            return ConnectionClosed(self._close_reason)
        return ClientError("the handshake is not complete")

    def _call_each(self, callbacks: list[ReasonCallback], reason: str, what: str) -> None:
        for callback in tuple(callbacks):
            try:
                callback(reason)
            except Exception:
                self.log.failure("{what} callback failed", what=what)

    @staticmethod
    def _cancel_timer(timer: IDelayedCall | None) -> None:
        if timer is not None and timer.active():
            timer.cancel()

    def _end(self, reason: str, error: Exception | None = None, *, fire_ready: bool = True) -> None:
        """End the session for ``reason`` (first cause wins) and hang up."""
        if self._close_reason is not None:
            return
        self._close_reason = reason
        self._conn.close()
        self._cancel_timer(self._handshake_timer)
        self._handshake_timer = None
        if self._heartbeats is not None:
            self._heartbeats.stop()
        self._requests.fail_all(reason)
        if fire_ready and not self.ready.called:
            self.ready.errback(error if error is not None else ConnectionClosed(reason))
        if self._adapter is None:
            self._transport_gone = True
            self._fire_closed()
        elif not self._transport_gone:
            self._adapter.lose_connection()

    def _fire_closed(self) -> None:
        if self._closed_fired:
            return
        self._closed_fired = True
        reason = self._close_reason or "connection closed"
        self.log.debug("connection closed: {reason}", reason=reason)
        self._call_each(self._close_callbacks, reason, "close")
        waiters, self._closed_waiters = self._closed_waiters, []
        for d in waiters:
            d.callback(reason)
