"""Raw TCP and WebSocket on one port, told apart by the first bytes.

Like Pomelo's hybrid connector: a connection whose first byte starts an
HTTP method (``GET``, ``POST``, ``PUT``, ``DELETE``, ``HEAD``, ``OPTIONS``)
is handed to the WebSocket protocol; anything else is a raw Pomelo stream
(whose first byte is a package type, 1..5, so there is no ambiguity). Under
a TLS endpoint this serves both raw TLS and ``wss://``.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import IAddress, IDelayedCall, IProtocol, ITCPTransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from ..agent import CloseReason
from .tcp import AgentPool, PomeloTCPProtocol
from .websocket import PomeloWebSocketProtocol, WebSocketFactory

__all__ = ["HTTP_FIRST_BYTES", "HybridFactory", "HybridProtocol"]

HTTP_FIRST_BYTES = frozenset(b"GPDHO")


class HybridProtocol(Protocol):
    """Waits for the first byte, then hands the connection to the right protocol."""

    inner: IProtocol | None = None
    _timer: IDelayedCall | None = None
    accepted_at: float | None = None
    _released = False
    """The clock time the connection was accepted: the raw TCP agent's handshake
    deadline counts from it (one deadline from accept to ack, sniff included)."""

    def __init__(self, factory: HybridFactory, addr: IAddress | None) -> None:
        self.hybrid = factory
        self.addr = addr

    def connectionMade(self) -> None:
        """Give the client ``handshake_timeout`` seconds to send its first byte."""
        agents = self.hybrid.agents
        self.hybrid.sniffing.add(self)
        self.accepted_at = agents.clock.seconds()
        self._timer = agents.clock.callLater(agents.config.handshake_timeout, self._silent)

    def _silent(self) -> None:
        self._timer = None
        self.hybrid.sniffing.discard(self)
        agents = self.hybrid.agents
        agents.metrics.connections_opened += 1
        agents.metrics.closed[CloseReason.HANDSHAKE_TIMEOUT] += 1
        assert self.transport is not None
        cast(ITCPTransport, self.transport).abortConnection()

    def dataReceived(self, data: bytes) -> None:
        """Pick the inner protocol on the first byte, then forward everything."""
        inner = self.inner
        if inner is None:
            if not data:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.hybrid.sniffing.discard(self)
            if data[0] in HTTP_FIRST_BYTES:
                inner = self.hybrid.websocket.buildProtocol(self.addr)
                assert isinstance(inner, PomeloWebSocketProtocol)
                inner.accepted_at = self.accepted_at  # one deadline from the accept
            else:
                inner = PomeloTCPProtocol(self.hybrid.agents, self.accepted_at)
            assert inner is not None and self.transport is not None
            self.inner = inner
            inner.makeConnection(self.transport)
            # From now on the transport calls the inner protocol straight away.
            self.dataReceived = inner.dataReceived  # type: ignore[method-assign]
        inner.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Forward to the inner protocol, if one was chosen; release the connection."""
        self.hybrid.sniffing.discard(self)
        if not self._released:
            self._released = True
            self.hybrid.agents.release(self.addr)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.inner is not None:
            self.inner.connectionLost(reason)


class HybridFactory(Factory):
    """The Twisted factory of a hybrid listener."""

    def __init__(self, agents: AgentPool) -> None:
        self.agents = agents
        self.websocket = WebSocketFactory(agents, capped=False)
        self.sniffing: set[HybridProtocol] = set()
        """Connections that have not sent their first byte yet."""

    def abort_sniffing(self) -> None:
        """Drop the connections not yet handed to TCP or WebSocket (server shutdown)."""
        for proto in list(self.sniffing):
            if proto.transport is not None:
                cast(ITCPTransport, proto.transport).abortConnection()
        self.sniffing.clear()

    def buildProtocol(self, addr: IAddress | None) -> HybridProtocol | None:
        """A sniffing protocol per connection; None over a cap (Twisted closes it)."""
        if not self.agents.admit(addr):
            return None
        return HybridProtocol(self, addr)
