"""The agent: one per client connection.

It drives a :class:`~pomelo_twisted.protocol.ServerConnection` with the bytes
its link receives, runs the handshake hook, the handshake and heartbeat
timers (on an injected clock), hands requests and notifies to an
:class:`~pomelo_twisted.interfaces.IConnectionHandler`, answers every request
exactly once, and writes through a bounded send queue: it is the link's
streaming producer, queues while the transport is paused and closes a client
whose queue passes ``max_pending_bytes``. Every close records its reason.
"""

from __future__ import annotations

from collections import deque
from types import CoroutineType

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..deadlines import DeadlineHandle, DeadlineScheduler
from ..errors import HandlerError, HandshakeRejected, SerializationError, error_response
from ..interfaces import IAgentLink, IConnectionHandler, ISerializer
from ..protocol import (
    CODE_BAD_HANDSHAKE,
    BadHandshake,
    ClientHandshake,
    ConnectionState,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Ignored,
    Kick,
    Notify,
    PackageType,
    ProtocolViolation,
    Push,
    Request,
    Response,
    RouteDictionary,
    ServerConnection,
    UnknownRouteCode,
    encode_package,
    encode_response,
)
from ..protocol.handshake import encode_kick
from ..responses import EncodedBody, failure_response
from .config import AgentConfig
from .metrics import CloseReason, ConnectionMetrics
from .ratelimit import TokenBucket

__all__ = ["HANDSHAKE_DEADLINE", "IDLE_DEADLINE", "Agent"]

# What an agent waits for: the handshake (+ ack) to complete, or the client's next package.
HANDSHAKE_DEADLINE, IDLE_DEADLINE = 0, 1

log = Logger()

CODE_BAD_REQUEST = 400
CODE_RATE_LIMITED = 429
CODE_INTERNAL = 500
CODE_BUSY = 503


@implementer(IPushProducer)
class Agent:
    """The server side of one client connection."""

    __slots__ = (
        "_bucket",
        "_close_timer",
        "_closing",
        "_connected",
        "_deadline",
        "_deadlines",
        "_inflight",
        "_last_seen",
        "_paused",
        "_queue",
        "_queued_bytes",
        "_seen_packages",
        "clock",
        "close_reason",
        "config",
        "connection",
        "handler",
        "handshake",
        "link",
        "metrics",
        "serializer",
        "session",
        "sid",
    )

    def __init__(
        self,
        link: IAgentLink,
        handler: IConnectionHandler,
        *,
        clock: IReactorTime,
        serializer: ISerializer,
        sid: int,
        config: AgentConfig | None = None,
        dictionary: RouteDictionary | None = None,
        metrics: ConnectionMetrics | None = None,
        deadlines: DeadlineScheduler | None = None,
    ) -> None:
        self.link = link
        self.handler = handler
        self.clock = clock
        self.serializer = serializer
        self.sid = sid
        self.config = config = config or AgentConfig()
        self.metrics = metrics if metrics is not None else ConnectionMetrics()
        self.connection = ServerConnection(
            dictionary if config.use_dict else None, config.max_packet_size
        )
        self.handshake: ClientHandshake | None = None
        self.session: object = None
        self.close_reason: str | None = None
        self._closing = False
        self._connected = False
        self._paused = False
        self._queue: deque[bytes] | None = None  # made when a write must wait (760 bytes)
        self._queued_bytes = 0
        self._inflight = 0
        self._bucket = (
            TokenBucket(clock, config.request_rate, config.request_burst)
            if config.request_rate is not None
            else None
        )
        self._seen_packages = 0
        self._last_seen = clock.seconds()
        # The handshake, then the idle timeout (a listener's agents share one scheduler).
        self._deadlines = deadlines if deadlines is not None else DeadlineScheduler(clock)
        self._deadline: DeadlineHandle | None = None
        self._close_timer: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"<Agent sid={self.sid} peer={self.link.peer} state={self.state.value}>"

    @property
    def state(self) -> ConnectionState:
        """The protocol state of the connection."""
        return self.connection.state

    @property
    def working(self) -> bool:
        """Whether the handshake is acknowledged and the connection is not closing."""
        return self.connection.state is ConnectionState.WORKING and not self._closing

    @property
    def pending_bytes(self) -> int:
        """Bytes queued while the transport is paused."""
        return self._queued_bytes

    # -- link events -------------------------------------------------------

    def start(self) -> None:
        """The link is connected: register as its producer, start the handshake timer."""
        self.metrics.connections_opened += 1
        self.link.register_producer(self)
        self._deadline = self._deadlines.add(
            self.config.handshake_timeout, self, HANDSHAKE_DEADLINE
        )

    def data_received(self, data: bytes) -> None:
        """Bytes from the client."""
        connection = self.connection
        events = connection.receive_data(data)
        if connection.packages_received != self._seen_packages:
            self._seen_packages = connection.packages_received
            self._last_seen = self.clock.seconds()
        if events and isinstance(events[-1], ProtocolViolation):
            # The connection is already CLOSED: nothing decoded before the violation in
            # this read can be answered (sending would raise LocalProtocolError).
            self._on_violation(events[-1].reason)
            return
        for event in events:
            if self._closing:
                # An earlier package of this read closed the connection (a handler kicked,
                # the connected hook failed): dispatch nothing more, send nothing more.
                break
            match event:
                case Request():
                    self._on_request(event)
                case Notify():
                    self._on_notify(event)
                case Heartbeat():
                    self._write(connection.send(event))
                case ClientHandshake():
                    self._on_handshake(event)
                case HandshakeAck():
                    self._on_ack()
                case Ignored(reason=reason):
                    self.metrics.dropped[reason] += 1
                    log.debug("{agent}: ignored a package: {reason}", agent=self, reason=reason)
                case UnknownRouteCode():
                    self._on_unknown_code(event)
                case BadHandshake(reason=reason):
                    self._on_bad_handshake(reason)
                case ProtocolViolation():
                    self._on_violation(event.reason)

    def connection_lost(self) -> None:
        """The link is gone, for whatever cause."""
        if self.close_reason is None:
            self.close_reason = CloseReason.CLIENT_CLOSED
        self._closing = True
        self.connection.close()
        self._cancel_timers()
        self._queue = None
        self._queued_bytes = 0
        cause = self.close_reason.split(":", 1)[0]
        self.metrics.closed[cause] += 1
        log.debug("{agent} closed: {reason}", agent=self, reason=self.close_reason)
        if self._connected:
            self._connected = False
            try:
                self.handler.disconnected(self, self.close_reason)
            except Exception:
                log.failure("disconnected hook failed for {agent}", agent=self)

    # -- server-initiated --------------------------------------------------

    def push(self, route: str, msg: object) -> bool:
        """Push ``msg`` on ``route``; False when the connection is not working."""
        if not self.working:
            return False
        return self._write(self.connection.send(Push(route, self.serializer.encode(msg))))

    def push_encoded(self, package: bytes) -> bool:
        """Write a push package encoded once for many clients (see ``encode_push``)."""
        # ``working`` and ``_write`` inlined: this runs once per member of a broadcast.
        if self._closing or self.connection.state is not ConnectionState.WORKING:
            return False
        if self._paused:
            return self._write(package)
        self.link.write(package)
        return True

    def kick(self, reason: str = "kick") -> None:
        """Send a kick package with ``reason``, then close."""
        if self._closing:
            return
        if self.connection.state is not ConnectionState.CLOSED:
            self.link.write(self.connection.send(Kick(reason)))
        self._close(f"{CloseReason.KICKED}: {reason}")

    def close(self, reason: str = CloseReason.SERVER_CLOSED) -> None:
        """Close without a kick package, recording ``reason``."""
        self._close(reason)

    # -- IPushProducer -----------------------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: queue further writes."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The transport drained: flush the queue until it pauses again."""
        self._paused = False
        queue = self._queue
        write = self.link.write
        while queue and not self._paused:
            data = queue.popleft()
            self._queued_bytes -= len(data)
            write(data)

    def stopProducing(self) -> None:
        """The transport will take no more data."""
        self._queue = None
        self._queued_bytes = 0

    # -- handshake ---------------------------------------------------------

    def _on_handshake(self, handshake: ClientHandshake) -> None:
        self.handshake = handshake
        try:
            result = self.handler.handshake(self, handshake)
        except Exception:
            self._handshake_failed(Failure())
            return
        if isinstance(result, Deferred):
            result.addCallbacks(self._accept_handshake, self._handshake_failed)
        else:
            self._accept_handshake(result)

    def _accept_handshake(self, user: object) -> None:
        if self._closing:
            return
        config = self.config
        response = HandshakeResponse(
            code=200,
            heartbeat=config.heartbeat,
            dictionary=self.connection.dictionary,
            use_dict=config.use_dict and self.connection.dictionary is not None,
            serializer=self.serializer.name,
            user=user,
            legacy_route_maps=config.legacy_route_maps,
        )
        try:
            data = self.connection.send(response)
        except (TypeError, ValueError):
            self._handshake_failed(Failure())
            return
        self._write(data)

    def _handshake_failed(self, failure: Failure) -> None:
        if self._closing:
            return
        if failure.check(HandshakeRejected):
            exc: HandshakeRejected = failure.value  # type: ignore[assignment]
            code, reason = exc.code, exc.reason
            log.info("{agent}: handshake rejected: {reason}", agent=self, reason=reason)
        else:
            code, reason = CODE_BAD_HANDSHAKE, "handshake hook failed"
            log.failure("{agent}: handshake hook failed", failure, agent=self)
        self.link.write(self.connection.send(HandshakeResponse(code=code, message=reason)))
        self._close(f"{CloseReason.HANDSHAKE_REJECTED}: {reason}")

    def _on_bad_handshake(self, reason: str) -> None:
        log.info("{agent}: bad handshake: {reason}", agent=self, reason=reason)
        self.link.write(self.connection.send(HandshakeResponse(code=CODE_BAD_HANDSHAKE)))
        self._close(f"{CloseReason.BAD_HANDSHAKE}: {reason}")

    def _on_ack(self) -> None:
        self._cancel_timers()  # the handshake deadline
        timeout = self.config.effective_heartbeat_timeout
        if self.config.heartbeat is not None:
            self._write(self.connection.send(Heartbeat()))
        if timeout is not None:
            self._deadline = self._deadlines.add(timeout, self, IDLE_DEADLINE)
        self._connected = True
        try:
            self.handler.connected(self)
        except Exception:
            log.failure("connected hook failed for {agent}", agent=self)
            self._close(f"{CloseReason.SERVER_CLOSED}: connected hook failed")

    def deadline_passed(self, kind: int, now: float) -> None:
        """The deadline this agent waited for has come (``now``: the clock's time)."""
        self._deadline = None
        if kind == HANDSHAKE_DEADLINE:
            self._close(CloseReason.HANDSHAKE_TIMEOUT)
            return
        timeout = self.config.effective_heartbeat_timeout
        deadline = self._last_seen + (timeout if timeout is not None else 0.0)
        if deadline <= now:
            self._close(CloseReason.HEARTBEAT_TIMEOUT)
        else:
            self._deadline = self._deadlines.add_at(deadline, self, IDLE_DEADLINE)

    # -- requests ----------------------------------------------------------

    def _admit(self) -> bool:
        if self._bucket is None or self._bucket.take():
            return True
        self.metrics.rate_limited += 1
        return False

    def _on_request(self, event: Request) -> None:
        self.metrics.requests += 1
        msg_id = event.id
        if not self._admit():
            self._respond(msg_id, error_response(CODE_RATE_LIMITED, "request rate limit exceeded"))
            return
        if self._inflight >= self.config.max_inflight:
            self._respond(msg_id, error_response(CODE_BUSY, "too many requests in flight"))
            return
        try:
            result = self.handler.request(self, event.route, event.body)
        except Exception:
            self._respond_failure(Failure(), msg_id, event.route)
            return
        if isinstance(result, CoroutineType):
            result = ensureDeferred(result)
        if isinstance(result, Deferred):
            self._inflight += 1
            result.addCallbacks(
                self._respond_deferred,
                self._respond_failure,
                callbackArgs=(msg_id,),
                errbackArgs=(msg_id, event.route),
            )
            result.addBoth(self._request_done)
        else:  # a plain body (the common case): answered at once, without a Deferred
            self._respond(msg_id, result)

    def _request_done(self, _: object) -> None:
        self._inflight -= 1

    def _respond_deferred(self, result: object, msg_id: int) -> None:
        self._respond(msg_id, result)

    def _respond_failure(self, failure: Failure, msg_id: int, route: str) -> None:
        self._respond(msg_id, failure_response(failure, route))

    def _respond(self, msg_id: int, body: object) -> None:
        if self._closing or self.connection.state is not ConnectionState.WORKING:
            self.metrics.responses_dropped += 1
            return
        if type(body) is EncodedBody:  # already in the client's serializer (forwarded)
            self._write(encode_response(msg_id, body))
            return
        try:
            package = encode_response(msg_id, self.serializer.encode({} if body is None else body))
        except (SerializationError, ValueError) as exc:
            log.error(
                "response to request {id} of {agent} cannot be sent: {error}",
                id=msg_id,
                agent=self,
                error=exc,
            )
            package = self.connection.send(
                Response(msg_id, self.serializer.encode(error_response(CODE_INTERNAL, str(exc))))
            )
        self._write(package)

    def _on_notify(self, event: Notify) -> None:
        self.metrics.notifies += 1
        if not self._admit():
            self.metrics.dropped["notify over the rate limit"] += 1
            return
        try:
            result = self.handler.notify(self, event.route, event.body)
        except HandlerError as exc:
            log.debug("notify {route} refused: {error}", route=event.route, error=exc)
            return
        except Exception:
            log.failure(
                "notify handler for {route} failed ({agent})", route=event.route, agent=self
            )
            return
        if isinstance(result, CoroutineType):
            result = ensureDeferred(result)
        if isinstance(result, Deferred):
            result.addErrback(self._notify_failed, event.route)

    def _notify_failed(self, failure: Failure, route: str) -> None:
        log.failure("notify handler for {route} failed ({agent})", failure, route=route, agent=self)

    def _on_unknown_code(self, event: UnknownRouteCode) -> None:
        if event.id:
            self._respond(
                event.id, error_response(CODE_INTERNAL, f"unknown route code {event.code}")
            )
        else:
            self.metrics.dropped["notify with unknown route code"] += 1

    # -- writing and closing -----------------------------------------------

    def _write(self, data: bytes) -> bool:
        if self._closing:
            return False
        if not self._paused:
            self.link.write(data)
            return True
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(data)
        self._queued_bytes += len(data)
        if self._queued_bytes > self.config.max_pending_bytes:
            log.warn(
                "{agent}: {pending} bytes pending, over the limit of {limit}: closing",
                agent=self,
                pending=self._queued_bytes,
                limit=self.config.max_pending_bytes,
            )
            self._close(CloseReason.SLOW_CONSUMER, abort=True)
            return False
        return True

    def _on_violation(self, reason: str) -> None:
        log.warn("{agent}: protocol error, closing: {reason}", agent=self, reason=reason)
        text = f"{CloseReason.PROTOCOL_ERROR}: {reason}"
        self.link.write(encode_package(PackageType.KICK, encode_kick(text)))
        self._close(text)

    def _close(self, reason: str, abort: bool = False) -> None:
        if self._closing:
            return
        self._closing = True
        self.close_reason = reason
        self.connection.close()
        self._cancel_timers()
        # Nothing queued behind a paused transport goes out after a kick or a close.
        self._queue = None
        self._queued_bytes = 0
        if abort:
            self.link.abort()
        else:
            # Armed before close(): a link that reports connection_lost synchronously
            # cancels it there instead of leaving it pending.
            self._close_timer = self.clock.callLater(self.config.close_grace, self.link.abort)
            self.link.close()

    def _cancel_timers(self) -> None:
        if self._deadline is not None:
            self._deadlines.cancel(self._deadline)
            self._deadline = None
        timer = self._close_timer
        if timer is not None and timer.active():
            timer.cancel()
        self._close_timer = None
