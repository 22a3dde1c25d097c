"""A raw client connection for the conformance checks: bytes out exactly as the vectors
say, every package the server sends queued in order, and the close.

Unlike :mod:`pomelo_twisted.client` nothing here answers the server (no heartbeat, no
ack): the transcripts decide every byte. TCP (any Twisted client endpoint string, e.g.
``tcp:127.0.0.1:3010``, ``tcp:\\:\\:1:3010``, ``tls:...``) carries packages as a stream;
WebSocket (``ws://``/``wss://`` URLs) one write per binary message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol as TypingProtocol
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, clientFromString, wrapClientTLS
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from ..interfaces import IServerReactor
from ..protocol import Package, PackageDecoder, ProtocolError
from ..protocol.packet import MAX_BODY_LENGTH

__all__ = [
    "Closed",
    "Dialer",
    "StepTimeout",
    "Wire",
    "dial",
    "stream_protocol",
    "transport_of",
]


@dataclass(frozen=True)
class Closed:
    """The connection ended (``reason`` says how)."""

    reason: str


class StepTimeout(Exception):
    """Nothing arrived in time."""


class _Link(TypingProtocol):
    def send(self, data: bytes) -> None: ...

    def drop(self) -> None: ...


class Wire:
    """Packages from the server, in order, then one :class:`Closed`."""

    def __init__(self, clock: IReactorTime, transport: str) -> None:
        self.clock = clock
        self.transport = transport
        self.link: _Link | None = None
        self._decoder = PackageDecoder(MAX_BODY_LENGTH)
        self._items: list[Package | Closed] = []
        self._waiting: Deferred[Package | Closed] | None = None
        self._timer: IDelayedCall | None = None
        self.closed = False

    def received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            packages: list[Package | Closed] = list(self._decoder.feed(data))
        except ProtocolError as exc:
            packages = [Closed(f"the server sent an invalid package: {exc}")]
            self.closed = True
            self.drop()
        self._items.extend(packages)
        self._deliver()

    def lost(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._items.append(Closed(reason))
            self._deliver()

    def send(self, data: bytes) -> None:
        """Write ``data`` as it is (one write; on WebSocket one message)."""
        if self.link is not None and not self.closed:
            self.link.send(data)

    def drop(self) -> None:
        """Close the connection (from the client side)."""
        if self.link is not None:
            self.link.drop()

    def next(self, timeout: float) -> Deferred[Package | Closed]:
        """The next package or the close; fails with :class:`StepTimeout` after ``timeout``."""
        d: Deferred[Package | Closed] = Deferred()
        self._waiting = d

        def expire() -> None:
            if self._waiting is d:
                self._waiting = None
                d.errback(StepTimeout(f"nothing arrived within {timeout:g}s"))

        self._timer = self.clock.callLater(timeout, expire)
        self._deliver()
        return d

    def _deliver(self) -> None:
        if self._waiting is not None and self._items:
            d, self._waiting = self._waiting, None
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            d.callback(self._items.pop(0))


class _StreamProtocol(Protocol):
    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def connectionMade(self) -> None:
        self.wire.link = self

    def dataReceived(self, data: bytes) -> None:
        self.wire.received(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.wire.lost(f"connection closed ({reason.getErrorMessage()})")

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def drop(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


class _StreamFactory(Factory):
    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def buildProtocol(self, addr: IAddress | None) -> _StreamProtocol:
        return _StreamProtocol(self.wire)


class _WebSocketProtocol(WebSocketClientProtocol):
    wire: Wire
    opened: Deferred[Wire]

    def onOpen(self) -> None:
        self.wire.link = self
        self.opened.callback(self.wire)

    def onMessage(self, payload: bytes, is_binary: bool) -> None:
        self.wire.received(payload)

    def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"the WebSocket upgrade failed: {reason}"))
        if not was_clean:
            self.wire.lost(f"websocket lost: {reason}")
        else:
            self.wire.lost("websocket closed" + (f" (code {code})" if code is not None else ""))

    def send(self, data: bytes) -> None:
        self.sendMessage(data, isBinary=True)

    def drop(self) -> None:
        if self.state == WebSocketProtocol.STATE_OPEN:
            self.sendClose(code=WebSocketProtocol.CLOSE_STATUS_CODE_NORMAL)
        else:
            self.dropConnection(abort=True)


class _WebSocketFactory(WebSocketClientFactory):
    def __init__(
        self, url: str, reactor: IReactorTime, wire: Wire, opened: Deferred[Wire], timeout: float
    ) -> None:
        super().__init__(url=url, reactor=reactor)
        self.setProtocolOptions(openHandshakeTimeout=timeout)
        self.wire, self.opened = wire, opened

    def buildProtocol(self, addr: IAddress | None) -> _WebSocketProtocol:
        proto = _WebSocketProtocol()
        proto.factory, proto.wire, proto.opened = self, self.wire, self.opened
        return proto


def stream_protocol(wire: Wire) -> Protocol:
    """A stream protocol feeding ``wire`` (for a transport of one's own, e.g. in memory)."""
    return _StreamProtocol(wire)


Dialer = Callable[[], Deferred[Wire]]
"""Opens one new connection to the target under test."""


def transport_of(target: str) -> str:
    """``ws`` for a ``ws://``/``wss://`` URL, else ``tcp`` (a stream endpoint string)."""
    return "ws" if target.split(":", 1)[0].lower() in ("ws", "wss") else "tcp"


def dial(reactor: IServerReactor, target: str, timeout: float) -> Deferred[Wire]:
    """Connect to ``target``: the :class:`Wire` once TCP (or the WebSocket upgrade) is done.

    ``ValueError`` for a malformed target; the Deferred fails with the connection error,
    or :class:`StepTimeout` after ``timeout`` seconds.
    """
    wire = Wire(reactor, transport_of(target))
    if wire.transport == "ws":
        parts = urlsplit(target)
        if not parts.hostname:
            raise ValueError(f"no host in WebSocket URL {target!r}")
        secure = parts.scheme.lower() == "wss"
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            reactor, parts.hostname, parts.port or (443 if secure else 80), timeout=timeout
        )
        if secure:
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = wrapClientTLS(optionsForClientTLS(parts.hostname), endpoint)
        opened: Deferred[Wire] = Deferred()
        factory = _WebSocketFactory(target, reactor, wire, opened, timeout)

        def not_connected(failure: Failure) -> None:
            if not opened.called:
                opened.errback(failure)

        endpoint.connect(factory).addErrback(not_connected)
        result = opened
    else:
        endpoint = clientFromString(reactor, target)
        result = endpoint.connect(_StreamFactory(wire)).addCallback(lambda _proto: wire)

    def timed_out(_result: object, seconds: float) -> Failure:
        return Failure(StepTimeout(f"could not connect to {target} within {seconds:g}s"))

    return result.addTimeout(timeout, reactor, onTimeoutCancel=timed_out)
