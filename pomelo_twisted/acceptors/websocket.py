"""WebSocket client connections: autobahn for the opening handshake, our frames after it.

autobahn parses and answers the HTTP upgrade (any URL path, no subprotocol, no
extension: permessage-deflate offers are declined, so no inflate ever runs). The request
head is first gathered here, under three limits of the
:class:`~pomelo_twisted.agent.AgentConfig`: ``max_upgrade_bytes`` (16 KiB),
``max_upgrade_headers`` (100 lines) and ``upgrade_timeout`` (10 s, on the injected
clock; with the agent's handshake deadline it makes one deadline from the accept to the
ack: whatever phase a client is stuck in, it is closed ``handshake_timeout`` after its
accept, or ``upgrade_timeout`` after it if the upgrade is still not done). Over a size
limit the client gets ``431`` and is closed, its buffer dropped at once; past the
timeout it is dropped; a request autobahn refuses gets its ``400``. Each refusal is
counted in the metrics (``bad handshake``, ``handshake timeout``) and logged at debug
only. autobahn sees the head once, whole: it no longer rescans a growing buffer on every
read. From ``onOpen`` on, the connection's frames go through the sans-I/O
:class:`~pomelo_twisted.protocol.wsframe.WsFrameDecoder` instead of autobahn's frame
machinery, which cost about 30 µs of Python per message in a profile (against about 1.5
µs for ours); the bytes that arrived with the handshake are handed over too.

Binary and text messages are read alike (as pinus does); a message may hold several
packages (the reference closes such a connection, we process them all); each package we
send is its own binary message, and what the agent writes while it handles one read
leaves in one write. A burst is handled in slices like a raw TCP one (the link is an
:class:`~pomelo_twisted.interfaces.ISlicedLink`: the agent pauses the socket's reads
while a slice waits). A WebSocket-only listener holds the connection caps of the
:class:`AgentPool` (a hybrid one counts at its own accept). Pings are answered; a
client's close is answered and the connection closed; a frame that breaks RFC 6455 fails
the connection with the close code it deserves (1002, 1007 or 1009) and is recorded as a
protocol error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import cast

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IPushProducer,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..agent import Agent, CloseReason
from ..compat import autobahn_feed, autobahn_take_buffer
from ..eagerwrite import Send, socket_send, write_eagerly
from ..interfaces import ISlicedLink
from ..protocol.packet import HEADER_SIZE
from ..protocol.wsframe import (
    CLOSE_NORMAL,
    WsClose,
    WsFrameDecoder,
    WsPing,
    WsProtocolError,
    WsText,
    encode_binary,
    encode_close,
    encode_pong,
)
from .tcp import AgentPool, format_address

__all__ = ["PomeloWebSocketProtocol", "WebSocketFactory", "decline_compression"]

log = Logger()

_HEAD_END = b"\r\n\r\n"


def decline_compression(offers: Sequence[object]) -> None:
    """autobahn's ``perMessageCompressionAccept``: accept no permessage-deflate offer.

    Compression would put an inflater (and its bombs) under every message; Pomelo
    packages are small and binary. The upgrade answer then carries no
    ``Sec-WebSocket-Extensions`` header and RSV1 on a frame is a protocol error.
    """
    return None


@implementer(ISlicedLink)
class PomeloWebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket connection: each message's payload is fed to the agent."""

    agent: Agent | None = None
    factory: WebSocketFactory
    _socket_send: Send | None = None
    _frames: WsFrameDecoder | None = None
    """Our frame decoder, from the end of the opening handshake on."""
    _batch: list[bytes] | None = None
    _pending: list[bytes] | None = None
    """The messages of the current read not yet given to the agent (given as one)."""
    _close_sent = False
    _failure: WsProtocolError | None = None
    _upgrade_buf: bytearray | None = None
    """The request head gathered so far, until it is whole (then autobahn's)."""
    _upgrade_lines = 0
    _upgrade_timer: IDelayedCall | None = None
    _refused = False
    accepted_at: float | None = None
    """When accepted (by the hybrid sniffer, or at connectionMade): deadlines count from it."""
    admitted: IAddress | None = None
    """The address its factory counted with ``AgentPool.admit`` (released when lost)."""
    _counted = False

    @property
    def peer(self) -> str:
        """The client's address."""
        assert self.transport is not None
        return format_address(self.transport.getPeer())

    @peer.setter
    def peer(self, value: str | None) -> None:
        """Ignored: autobahn assigns its own form of the address in ``connectionMade``."""

    def connectionMade(self) -> None:
        """Note the socket for eager writes, start the upgrade timer, then autobahn.

        The upgrade must be done ``upgrade_timeout`` after the accept, at the latest
        ``handshake_timeout`` after it (the whole deadline; the agent gets the rest)."""
        self._socket_send = socket_send(self.transport)
        self._upgrade_buf = bytearray()
        agents = self.factory.agents
        config = agents.config
        now = agents.clock.seconds()
        if self.accepted_at is None:
            self.accepted_at = now
        limit = min(config.upgrade_timeout, config.handshake_timeout)
        self._upgrade_timer = agents.clock.callLater(
            max(0.0, self.accepted_at + limit - now), self._upgrade_timed_out
        )
        super().connectionMade()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Stop the upgrade timer, drop the buffer, then let autobahn tear down."""
        self._stop_upgrade_timer()
        self._upgrade_buf = None
        try:
            super().connectionLost(reason)
        finally:
            if self._counted:
                self._counted = False
                self.factory.agents.release(self.admitted)

    def _stop_upgrade_timer(self) -> None:
        timer = self._upgrade_timer
        if timer is not None:
            self._upgrade_timer = None
            if timer.active():
                timer.cancel()

    def _upgrade_received(self, data: bytes) -> None:
        """Gather the request head under the limits; hand it to autobahn once whole.

        The end of the head is searched for in the new bytes only (and the 3 before
        them), and header lines are counted as they come, so a read costs its own size.
        """
        buf = self._upgrade_buf
        if buf is None:  # refused, or already handed over
            return
        config = self.factory.agents.config
        start = max(0, len(buf) - 3)
        buf += data
        end = buf.find(_HEAD_END, start)
        if end < 0:
            self._upgrade_lines += data.count(b"\n")
            if len(buf) > config.max_upgrade_bytes:
                self._refuse_upgrade(431, f"request head over {config.max_upgrade_bytes} bytes")
            elif self._upgrade_lines > config.max_upgrade_headers + 1:
                self._refuse_upgrade(431, f"over {config.max_upgrade_headers} header lines")
            return
        if end + 4 > config.max_upgrade_bytes:
            self._refuse_upgrade(431, f"request head over {config.max_upgrade_bytes} bytes")
            return
        if buf.count(b"\n", 0, end) > config.max_upgrade_headers:
            self._refuse_upgrade(431, f"over {config.max_upgrade_headers} header lines")
            return
        self._upgrade_buf = None
        # autobahn's own dataReceived formats a debug line (hltype, hlval) on every
        # read even with debug logging off; autobahn_feed does the work without it.
        autobahn_feed(self, bytes(buf))

    def _upgrade_timed_out(self) -> None:
        """The upgrade did not complete in ``upgrade_timeout`` seconds: drop it."""
        self._upgrade_timer = None
        if self._frames is not None or self._refused:
            return
        self._refused = True
        self._upgrade_buf = None
        self._count_refusal(CloseReason.HANDSHAKE_TIMEOUT, "upgrade timeout")
        transport = self.transport
        if transport is not None:
            cast(ITCPTransport, transport).abortConnection()

    def _refuse_upgrade(
        self, code: int, reason: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Answer an HTTP error (a fixed phrase: never the client's bytes), close, and
        forget every byte gathered."""
        self._refused = True
        self._upgrade_buf = None
        autobahn_take_buffer(self)  # what autobahn holds of the request, dropped too
        self._stop_upgrade_timer()
        self._count_refusal(CloseReason.BAD_HANDSHAKE, reason)
        transport = self.transport
        if transport is not None:
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                code, phrase = 400, "Bad Request"
            extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
            transport.write(
                f"HTTP/1.1 {code} {phrase}\r\n{extra}Connection: close\r\n"
                "Content-Length: 0\r\n\r\n".encode("latin-1", "replace")
            )
            transport.loseConnection()

    def _count_refusal(self, what: str, reason: str) -> None:
        """A connection refused before its upgrade: one metric, one debug line."""
        metrics = self.factory.agents.metrics
        metrics.connections_opened += 1
        metrics.closed[what] += 1
        log.debug("{peer}: WebSocket upgrade refused: {reason}", peer=self.peer, reason=reason)

    def failHandshake(  # noqa: N802 (autobahn's name)
        self,
        reason: str,
        code: int = 400,
        responseHeaders: Sequence[tuple[str, str]] | None = None,  # noqa: N803
    ) -> None:
        """autobahn refuses the request: answer ``code``, counted, logged at debug only.

        (autobahn's own logs at info and warns on the drop, one pair per bad client.)
        """
        self._refuse_upgrade(code, reason, responseHeaders or ())

    def onConnect(self, request: ConnectionRequest) -> None:
        """Accept the upgrade on any path, with no subprotocol."""
        return None

    def onOpen(self) -> None:
        """The upgrade is done: frames are ours from now on; create the agent."""
        self._stop_upgrade_timer()
        self._frames = WsFrameDecoder(self.factory.max_message_size)
        self.session_opened()

    def session_opened(self) -> None:
        """The WebSocket is open: create the connection's agent.

        A hook: the conformance echo (``tests/conformance``) opens no agent."""
        self.agent = self.factory.agents.new_agent(self, self.accepted_at)

    def message_received(self, payload: bytes, text: bool) -> None:
        """One whole message (``text``: a valid UTF-8 text message) for the agent.

        Text is read like binary, as pinus does. The messages of one read reach the
        agent as one stream of bytes (which it handles in slices). A hook: the
        conformance echo sends each message back with its opcode."""
        pending = self._pending
        if pending is not None:
            pending.append(payload)
            return
        agent = self.agent
        if agent is not None:
            agent.data_received(payload)

    def _feed_pending(self) -> None:
        """Give the agent the messages gathered so far in this read, as one."""
        pending = self._pending
        if pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            agent = self.agent
            if agent is not None:
                agent.data_received(data)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """Never called: messages are decoded by :meth:`_frames_received`."""

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """Tell the agent and forget it."""
        agent = self.agent
        if agent is not None:
            self.agent = None
            agent.connection_lost()
            self.factory.agents.agent_gone(agent)

    def dataReceived(self, data: bytes) -> None:
        """Bytes from the transport: to autobahn during the handshake, to our frames after."""
        if self._frames is None:
            self._upgrade_received(data)
        else:
            self._frames_received(data)

    def processData(self) -> bool:  # noqa: N802 (compat.AUTOBAHN_FRAME_STEP)
        """autobahn's frame step: after the handshake, hand its buffer to our decoder."""
        if self._frames is None:
            return bool(super().processData())
        data = autobahn_take_buffer(self)
        if data:
            self._frames_received(data)
        return False

    def _frames_received(self, data: bytes) -> None:
        """Decode frames; what the agent writes meanwhile goes out in one write."""
        frames = self._frames
        assert frames is not None
        failure: WsProtocolError | None = None
        try:
            events = frames.feed(data)
        except WsProtocolError as exc:
            events, failure = exc.events, exc
        batch: list[bytes] = []
        self._batch = batch
        self._pending = []
        message_received = self.message_received
        try:
            for event in events:
                if type(event) is bytes:
                    message_received(event, False)
                elif type(event) is WsText:
                    message_received(event.payload, True)
                elif isinstance(event, WsPing):
                    if not self._close_sent:
                        batch.append(encode_pong(event.payload))
                elif isinstance(event, WsClose):
                    self._feed_pending()
                    self._client_closed(event)
                    return
            self._feed_pending()
            if failure is not None:
                self._fail(failure)
        finally:
            self._pending = None
            self._flush_batch()
            self._batch = None

    def _flush_batch(self) -> None:
        """Send what the current read has batched, in one write."""
        batch = self._batch
        if batch:
            self._send_now(batch[0] if len(batch) == 1 else b"".join(batch))
            batch.clear()

    def _client_closed(self, event: WsClose) -> None:
        """The client's close frame: answer it (unless ours crossed it) and hang up."""
        self.wasClean = True
        self.remoteCloseCode = event.code
        self.remoteCloseReason = event.reason
        if not self._close_sent:
            self._close_sent = True
            self._write_frame(encode_close(event.code))
        self._flush_batch()
        assert self.transport is not None
        self.transport.loseConnection()

    def _fail(self, failure: WsProtocolError) -> None:
        """A frame broke RFC 6455: close with its code, recorded as a protocol error.

        The client controls this: counted (the agent's close reason), logged at debug."""
        log.debug(
            "{peer}: bad WebSocket frame, closing with {code}: {reason}",
            peer=self.peer,
            code=failure.code,
            reason=failure.reason,
        )
        self._failure = failure
        agent = self.agent
        if agent is not None:
            agent.close(f"{CloseReason.PROTOCOL_ERROR}: websocket: {failure.reason}")
        else:
            self.close()

    def write_frame(self, frame: bytes) -> None:
        """Send one whole frame (built with :mod:`~pomelo_twisted.protocol.wsframe`),
        batched with the rest of the current read's answers."""
        if not self._close_sent:
            self._write_frame(frame)

    def _write_frame(self, frame: bytes) -> None:
        batch = self._batch
        if batch is not None:
            batch.append(frame)
        else:
            self._send_now(frame)

    def _send_now(self, data: bytes) -> None:
        write_eagerly(self.transport, self._socket_send, data)

    # IAgentLink
    def write(self, data: bytes) -> None:
        """Send one package as one binary message."""
        if self._frames is None or self._close_sent:
            return
        self._write_frame(encode_binary(data))

    def close(self) -> None:
        """Send a close frame; hang up when the client answers (the agent aborts otherwise).

        After a protocol error the close frame carries its code and the connection is
        closed at once, as RFC 6455 says to fail a connection.
        """
        transport = self.transport
        if transport is None:
            return
        if self._frames is None:
            transport.loseConnection()
            return
        failure = self._failure
        if not self._close_sent:
            self._close_sent = True
            if failure is not None:
                self._write_frame(encode_close(failure.code, failure.reason))
            else:
                self._write_frame(encode_close(CLOSE_NORMAL))
        if failure is not None:
            self._flush_batch()
            transport.loseConnection()

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        transport = self.transport
        if transport is not None:
            abort = getattr(transport, "abortConnection", None)
            if abort is not None:
                abort()
            else:
                transport.loseConnection()

    def register_producer(self, producer: IPushProducer) -> None:
        """Register the agent's send queue as the TCP transport's streaming producer."""
        assert self.transport is not None
        cast(IConsumer, self.transport).registerProducer(producer, True)

    # ISlicedLink
    def pause_reading(self) -> None:
        """Stop reading from the socket (the agent has a slice left to handle)."""
        transport = self.transport
        if transport is not None:
            cast(IPushProducer, transport).pauseProducing()

    def resume_reading(self) -> None:
        """Read from the socket again."""
        transport = self.transport
        if transport is not None:
            cast(IPushProducer, transport).resumeProducing()

    def call_batched(self, f: Callable[[], None]) -> None:
        """Call ``f``; the frames written meanwhile leave in one write."""
        if self._batch is not None:
            f()
            return
        self._batch = []
        try:
            f()
        finally:
            self._flush_batch()
            self._batch = None


class WebSocketFactory(WebSocketServerFactory):
    """The autobahn factory of a WebSocket listener, sharing an :class:`AgentPool`."""

    protocol = PomeloWebSocketProtocol  # type: ignore[assignment]

    def __init__(self, agents: AgentPool, *, capped: bool = True) -> None:
        super().__init__(reactor=agents.clock)
        self.agents = agents
        self.capped = capped
        """Whether ``buildProtocol`` holds the pool's connection caps (False under a
        hybrid listener, which counts the connection at its own accept)."""
        self.max_message_size = (agents.config.max_packet_size + HEADER_SIZE) * 4
        """The largest message (or frame) accepted: several packages may share one."""
        self.setProtocolOptions(
            maxFramePayloadSize=self.max_message_size,
            maxMessagePayloadSize=self.max_message_size,
            openHandshakeTimeout=0,  # ours, on the injected clock: upgrade_timeout
            perMessageCompressionAccept=decline_compression,
            closeHandshakeTimeout=agents.config.close_grace,
            utf8validateIncoming=False,
            autoPingInterval=0,
            tcpNoDelay=True,
        )

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        """One protocol per connection; None over a connection cap (Twisted closes it)."""
        if self.capped and not self.agents.admit(addr):
            return None
        proto = self.protocol()
        proto.factory = self
        if self.capped:
            proto.admitted, proto._counted = addr, True
        return proto
