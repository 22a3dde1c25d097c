"""The agent: one per client connection.

It drives a :class:`~pomelo_twisted.protocol.ServerConnection` with the bytes its
link receives, dispatches the events, runs the handshake (and its hook), the handshake
and idle deadlines (on the listener's :class:`~pomelo_twisted.deadlines.DeadlineScheduler`)
and the close. Requests and notifies go to its :class:`.RequestRunner`, which hands
them with their raw bodies to the :class:`~pomelo_twisted.interfaces.IConnectionHandler`
and answers every request exactly once. Every byte it sends comes from the connection's
send methods (which check the protocol state) and goes out through its
:class:`.SendQueue`. Every close records its reason.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import suppress

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from ..deadlines import DeadlineHandle, DeadlineScheduler
from ..errors import HandshakeRejected
from ..interfaces import (
    IAgent,
    IAgentLink,
    IConnectionHandler,
    IHandshakeNegotiator,
    ISerializer,
)
from ..protocol import (
    CODE_BAD_HANDSHAKE,
    BadHandshake,
    ClientHandshake,
    ConnectionState,
    Event,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Ignored,
    LocalProtocolError,
    Notify,
    Request,
    RouteDictionary,
    ServerConnection,
    UnknownRouteCode,
)
from ..results import settle
from .admission import Admission
from .config import AgentConfig
from .metrics import CloseReason, ConnectionMetrics
from .negotiation import ConnectionOffer, PushEncoder, PushRecorder, intern_push_format
from .ordering import OrderMaker, order_maker
from .reading import KICK_BACKLOG, SlicedReader
from .requests import KICK_RATE_LIMITED, RequestRunner
from .sendqueue import SendQueue

__all__ = ["HANDSHAKE_DEADLINE", "IDLE_DEADLINE", "KICK_BACKLOG", "KICK_IGNORED", "Agent"]

# What an agent waits for: the handshake (+ ack) to complete, or the client's next package.
HANDSHAKE_DEADLINE, IDLE_DEADLINE = 0, 1

_WORKING = ConnectionState.WORKING

KICK_IGNORED = "too many packages out of turn"

log = Logger()


@implementer(IAgent)
class Agent(SlicedReader):
    """The server side of one client connection."""

    __slots__ = (
        "_close_timer",
        "_closing",
        "_connected",
        "_deadline",
        "_deadlines",
        "_ignored",
        "_last_seen",
        "clock",
        "close_reason",
        "config",
        "connection",
        "handler",
        "handshake",
        "link",
        "metrics",
        "negotiators",
        "offer",
        "push_encoder",
        "push_format",
        "push_formats",
        "push_log",
        "requests",
        "send_queue",
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
        push_format: object = None,
        negotiators: Sequence[IHandshakeNegotiator] = (),
        push_formats: dict[Hashable, Hashable] | None = None,
        orders: OrderMaker | None = None,
    ) -> None:
        self.link = link
        self.handler = handler
        self.clock = clock
        self.serializer = serializer
        self.sid = sid
        self.config = config = config or AgentConfig()
        self.metrics = metrics = metrics if metrics is not None else ConnectionMetrics()
        self.connection = connection = ServerConnection(
            dictionary if config.use_dict else None,
            config.max_packet_size,
            config.max_inflated_body,
        )
        # The handshake keeps the connection's dictionary: pushes encode the same way for
        # its whole life, and for every agent of the listener (which shares this object).
        self.push_format = (
            push_format if push_format is not None else (serializer, connection.dictionary)
        )
        self.negotiators = negotiators
        """What the client's handshake decides, in order (:mod:`.negotiation`)."""
        self.push_formats = push_formats if push_formats is not None else {}
        """The listener's push formats, one object each (agents compare them by identity)."""
        self.offer: ConnectionOffer | None = None
        """What the handshake negotiated, once answered (None when nothing was)."""
        self.push_encoder: PushEncoder | None = None
        """Encodes push bodies instead of the serializer when set (e.g. protobuf)."""
        self.push_log: PushRecorder | None = None
        """Records every push written (a resumable session's, :mod:`pomelo_twisted.resume`)."""
        self.send_queue = SendQueue(link, config.max_pending_bytes, self._overflowed)
        self.handshake: ClientHandshake | None = None
        self.session: object = None
        self.close_reason: str | None = None
        self._closing = False
        self._connected = False
        self.requests = RequestRunner(
            self,
            handler,
            connection,
            serializer,
            self.send_queue,
            Admission(clock, config, metrics),
            metrics,
        )
        self._last_seen = clock.seconds()
        self._ignored = 0
        """Packages the protocol state ignored (kicked over ``max_ignored_packages``)."""
        SlicedReader.__init__(self)
        # The handshake, then the idle timeout (a listener's agents share one scheduler).
        self._deadlines = deadlines if deadlines is not None else DeadlineScheduler(clock)
        self._deadline: DeadlineHandle | None = None
        self._close_timer: IDelayedCall | None = None
        self.requests.orders = (
            orders if orders is not None else order_maker(clock, self._deadlines, config, metrics)
        )

    def __repr__(self) -> str:
        return f"<Agent sid={self.sid} peer={self.link.peer} state={self.state.value}>"

    @property
    def peer(self) -> str:
        """The client's address, for logs."""
        return str(self.link.peer)

    @property
    def state(self) -> ConnectionState:
        """The protocol state of the connection."""
        return self.connection.state

    @property
    def working(self) -> bool:
        """Whether the handshake is acknowledged and the connection is not closing."""
        return self.connection.state is _WORKING

    @property
    def pending_bytes(self) -> int:
        """Bytes queued while the transport is paused."""
        return self.send_queue.pending_bytes

    # -- link events -------------------------------------------------------

    def start(self, accepted_at: float | None = None) -> None:
        """The link is connected: register the send queue, start the handshake deadline.

        The deadline runs ``handshake_timeout`` from ``accepted_at`` (the clock time the
        connection was accepted, before any sniffing or upgrade) or from now: one
        deadline covers accept to ack, however many phases come before the agent.
        """
        self.metrics.connections_opened += 1
        self.link.register_producer(self.send_queue)
        start = accepted_at if accepted_at is not None else self.clock.seconds()
        self._deadline = self._deadlines.add_at(
            start + self.config.handshake_timeout, self, HANDSHAKE_DEADLINE
        )

    def _handle(self, events: list[Event]) -> None:
        """Handle these packages, in order (one slice's; :class:`.SlicedReader`)."""
        connection = self.connection
        requests = self.requests
        ignored = 0
        for event in events:
            if self._closing:
                # An earlier package of this read closed the connection (a handler kicked,
                # the connected hook failed): dispatch nothing more, send nothing more.
                break
            match event:
                case Request():
                    requests.request(event)
                case Notify():
                    requests.notify(event)
                case Heartbeat():
                    self.send_queue.write(connection.send_heartbeat())
                case ClientHandshake():
                    self._on_handshake(event)
                case HandshakeAck():
                    self._on_ack()
                case Ignored(reason=reason):
                    ignored += 1
                    self._on_ignored(reason)
                case UnknownRouteCode():
                    requests.unknown_code(event)
                case BadHandshake(reason=reason):
                    self._on_bad_handshake(reason)
        if len(events) > ignored:  # an ignored package does not keep the connection alive
            self._last_seen = self.clock.seconds()

    def _on_ignored(self, reason: str) -> None:
        """A package the state ignores: counted, charged to the rate limit, bounded."""
        self.metrics.dropped[reason] += 1
        self._ignored += 1
        admission = self.requests.admission
        admission.charge_ignored()
        if self._ignored > self.config.max_ignored_packages:
            self._abuse(KICK_IGNORED)
        elif admission.persistent:
            self._abuse(KICK_RATE_LIMITED)

    def _abuse(self, reason: str) -> None:
        """Kick a client for how it behaves: one line, naming it."""
        if self._closing:
            return
        log.info("{agent}: kicked: {reason}", agent=self, reason=reason)
        self.kick(reason)

    def connection_lost(self) -> None:
        """The link is gone, for whatever cause."""
        if self.close_reason is None:
            self.close_reason = CloseReason.CLIENT_CLOSED
        self._closing = True
        self.connection.close()
        self._cancel_timers()
        self.send_queue.clear()
        self.requests.close()
        # Counted, not logged: closing thousands at once must format nothing each.
        self.metrics.closed[self.close_reason.split(":", 1)[0]] += 1
        if self._connected:
            self._connected = False
            try:
                self.handler.disconnected(self, self.close_reason)
            except Exception:
                log.failure(
                    "disconnected hook failed for {agent}", agent=self, level=LogLevel.error
                )

    # -- server-initiated --------------------------------------------------

    def push(self, route: str, msg: object) -> bool:
        """Push ``msg`` on ``route``; False when the connection is not working."""
        encoder = self.push_encoder
        body = self.serializer.encode(msg) if encoder is None else encoder(route, msg)
        try:
            package = self.connection.send_push(route, body)
        except LocalProtocolError:
            return False
        if self.push_log is not None:
            self.push_log.record(package)
        return self.send_queue.write(package)

    def prepare_push(self, route: str, msg: object) -> bytes:
        """A push package encoded once for every agent of the same ``push_format``."""
        encoder = self.push_encoder
        body = self.serializer.encode(msg) if encoder is None else encoder(route, msg)
        return self.connection.prepare_push(route, body)

    def push_prepared(self, package: bytes) -> bool:
        """Write a package from ``prepare_push``; False when the connection is not working."""
        try:
            package = self.connection.send_prepared(package)
        except LocalProtocolError:
            return False
        if self.push_log is not None:
            self.push_log.record(package)
        # The queue's fast path inlined: this runs once per member of a broadcast.
        queue = self.send_queue
        if queue.paused:
            return queue.write(package)
        self.link.write(package)
        return True

    def kick(self, reason: str = "kick") -> None:
        """Send a kick package with ``reason`` (ahead of anything queued), then close."""
        if self._closing:
            return
        with suppress(LocalProtocolError):  # closed by the protocol already: no goodbye
            self.link.write(self.connection.send_kick(reason))
        self._close(f"{CloseReason.KICKED}: {reason}")

    def close(self, reason: str = CloseReason.SERVER_CLOSED) -> None:
        """Close without a kick package, recording ``reason``."""
        self._close(reason)

    # -- handshake ---------------------------------------------------------

    def _on_handshake(self, handshake: ClientHandshake) -> None:
        self.handshake = handshake
        try:
            result = settle(self.handler.handshake(self, handshake))
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
        dictionary = self.connection.dictionary
        offer = ConnectionOffer(
            self.serializer, self.handler, config.use_dict and dictionary is not None
        )
        handshake = self.handshake
        assert handshake is not None
        try:
            for negotiator in self.negotiators:
                negotiator.negotiate(self, handshake, offer)
        except Exception:
            self._handshake_failed(Failure())
            return
        response = HandshakeResponse(
            code=200,
            heartbeat=config.heartbeat,
            dictionary=dictionary,
            use_dict=offer.use_dict,
            serializer=offer.serializer.name,
            user=user,
            legacy_route_maps=config.legacy_route_maps,
            compress_pushes=offer.compress_pushes,
            extra_sys=offer.sys,
        )
        push_dictionary = self.connection.push_dictionary
        try:
            data = self.connection.send(response)
        except (TypeError, ValueError):
            self._handshake_failed(Failure())
            return
        self._apply(offer, push_dictionary)
        self.send_queue.write(data)

    def _apply(self, offer: ConnectionOffer, push_dictionary: object) -> None:
        """The connection becomes what its handshake negotiated (sent in the reply);
        ``push_dictionary`` is the one of its push format until now. The offer is kept
        only when something was negotiated: a stock client's connection holds nothing
        more (memory per idle connection)."""
        if offer.features or offer.sys:
            self.offer = offer
        changed = offer.serializer is not self.serializer
        if changed:
            self.serializer = self.requests.serializer = offer.serializer
        if offer.handler is not self.handler:
            self.handler = self.requests.handler = offer.handler
        self.push_encoder = offer.push_encoder
        self.requests.response_encoder = offer.response_encoder
        self.connection.deflate_pushes = offer.deflate_pushes
        pushes = self.connection.push_dictionary
        if changed or pushes is not push_dictionary or offer.push_variant is not None:
            key = (offer.serializer.name, pushes, offer.push_variant)
            self.push_format = intern_push_format(self.push_formats, key)

    def _handshake_failed(self, failure: Failure) -> None:
        if self._closing:
            return
        exc = failure.value
        if isinstance(exc, HandshakeRejected):
            code, reason = exc.code, exc.reason
            log.info("{agent}: handshake rejected: {reason}", agent=self, reason=reason)
        else:
            code, reason = CODE_BAD_HANDSHAKE, "handshake hook failed"
            log.failure("{agent}: handshake hook failed", failure, agent=self, level=LogLevel.error)
        self.link.write(self.connection.send(HandshakeResponse(code=code, message=reason)))
        self._close(f"{CloseReason.HANDSHAKE_REJECTED}: {reason}")

    def _on_bad_handshake(self, reason: str) -> None:
        log.info("{agent}: bad handshake: {reason}", agent=self, reason=reason)
        self.link.write(self.connection.send(HandshakeResponse(code=CODE_BAD_HANDSHAKE)))
        self._close(f"{CloseReason.BAD_HANDSHAKE}: {reason}")

    def _on_ack(self) -> None:
        self._cancel_timers()  # the handshake deadline
        config = self.config
        if config.heartbeat is not None:
            self.send_queue.write(self.connection.send_heartbeat())
        timeout = config.effective_heartbeat_timeout
        if timeout is not None:
            self._deadline = self._deadlines.add(timeout, self, IDLE_DEADLINE)
        self._connected = True
        try:
            self.handler.connected(self)
        except Exception:
            log.failure("connected hook failed for {agent}", agent=self, level=LogLevel.error)
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

    # -- closing -----------------------------------------------------------

    def _overflowed(self, pending: int) -> None:
        # The client's doing (it does not read), not the server's: info, one line.
        log.info(
            "{agent}: {pending} bytes pending, over the limit of {limit}: closing",
            agent=self,
            pending=pending,
            limit=self.config.max_pending_bytes,
        )
        self._close(CloseReason.SLOW_CONSUMER, abort=True)

    def _on_violation(self, reason: str) -> None:
        log.info("{agent}: protocol error, closing: {reason}", agent=self, reason=reason)
        text = f"{CloseReason.PROTOCOL_ERROR}: {reason}"
        self.link.write(self.connection.send_violation_kick(text))
        self._close(text)

    def _close(self, reason: str, abort: bool = False) -> None:
        if self._closing:
            return
        self._closing = True
        self.close_reason = reason
        self.connection.close()
        self._cancel_timers()
        self.requests.close()
        # Nothing queued behind a paused transport goes out after a kick or a close.
        self.send_queue.clear()
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
        call = self._slice_call
        if call is not None and self._closing:
            call.cancel()
            self._slice_call = None
            self._backlog, self._unfed = None, b""
