"""Transports feeding a :class:`~pomelo_twisted.client.core.PomeloClient`.

* :class:`PomeloClientProtocol`: a stream (TCP, TLS, UNIX...) carrying concatenated
  packages in arbitrary chunks.
* :class:`PomeloWebSocketClientProtocol`: an autobahn WebSocket client that sends each
  package as one binary message and accepts any number of packages per received
  message, binary or text.

Each protocol is also the core's :class:`~pomelo_twisted.client.core.TransportAdapter`.
"""

from __future__ import annotations

from collections.abc import Callable

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from .core import PomeloClient

__all__ = [
    "ClientMaker",
    "PomeloClientFactory",
    "PomeloClientProtocol",
    "PomeloWebSocketClientFactory",
    "PomeloWebSocketClientProtocol",
    "describe_close",
]

ClientMaker = Callable[[], PomeloClient]


def describe_close(reason: Failure) -> str:
    """A short reason for a lost stream connection."""
    if reason.check(ConnectionDone):
        return "connection closed"
    return f"connection lost: {reason.getErrorMessage()}"


class PomeloClientProtocol(Protocol):
    """Stream transport: bytes in any chunking go to the core, packages go out as written."""

    def __init__(self, client: PomeloClient) -> None:
        self.client = client

    def connectionMade(self) -> None:
        self.client.connection_made(self)

    def dataReceived(self, data: bytes) -> None:
        self.client.data_received(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.client.connection_lost(describe_close(reason))

    def write(self, data: bytes) -> None:
        """Write one package to the stream."""
        assert self.transport is not None
        self.transport.write(data)

    def lose_connection(self) -> None:
        """Close the stream once written data is flushed."""
        assert self.transport is not None
        self.transport.loseConnection()


class PomeloClientFactory(Factory):
    """Builds a :class:`PomeloClientProtocol` around a new core for each connection."""

    def __init__(self, make_client: ClientMaker) -> None:
        self._make_client = make_client

    def buildProtocol(self, addr: IAddress | None) -> PomeloClientProtocol:
        proto = PomeloClientProtocol(self._make_client())
        proto.factory = self
        return proto


class PomeloWebSocketClientProtocol(WebSocketClientProtocol):
    """WebSocket transport: one binary message per package out; any packages per message in.

    The handshake timer starts when TCP connects (the upgrade counts against it); the
    Pomelo handshake is sent once the WebSocket is open.
    """

    client: PomeloClient

    def connectionMade(self) -> None:
        self.client.attach(self)
        super().connectionMade()

    def onOpen(self) -> None:
        self.client.start()

    def onMessage(self, payload: bytes, is_binary: bool) -> None:
        # Text frames are read like binary ones, as the reference server does.
        self.client.data_received(payload)

    def onClose(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        if was_clean:
            text = "websocket closed" if code is None else f"websocket closed (code {code})"
        else:
            text = f"websocket lost: {reason}"
        self.client.connection_lost(text)

    def write(self, data: bytes) -> None:
        """Send one package as one binary message."""
        self.sendMessage(data, isBinary=True)

    def lose_connection(self) -> None:
        """Start the closing handshake, or drop the TCP connection before the upgrade."""
        state = self.state
        if state == WebSocketProtocol.STATE_OPEN:
            self.sendClose(code=WebSocketProtocol.CLOSE_STATUS_CODE_NORMAL)
        elif state != WebSocketProtocol.STATE_CLOSING and state != WebSocketProtocol.STATE_CLOSED:
            self.dropConnection(abort=True)


class PomeloWebSocketClientFactory(WebSocketClientFactory):
    """An autobahn client factory for ``url`` whose protocols each get a new core."""

    protocol = PomeloWebSocketClientProtocol

    def __init__(self, url: str, make_client: ClientMaker, reactor: IReactorTime) -> None:
        super().__init__(url=url, reactor=reactor)
        # The core's handshake timer covers the upgrade; autobahn's own would cut it short.
        self.setProtocolOptions(openHandshakeTimeout=0)
        self._make_client = make_client

    def buildProtocol(self, addr: IAddress | None) -> PomeloWebSocketClientProtocol:
        proto = PomeloWebSocketClientProtocol()
        proto.factory = self
        proto.client = self._make_client()
        return proto
