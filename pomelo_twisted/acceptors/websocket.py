"""WebSocket client connections through autobahn.

Binary and text frames are read alike (as pinus does); a frame may hold
several packages (the reference closes such a connection, we process them
all); each package we send is its own binary message. Any URL path is
accepted for the upgrade.
"""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from zope.interface import implementer

from ..eagerwrite import Send, socket_send, write_eagerly
from ..interfaces import IAgentLink
from ..protocol.packet import HEADER_SIZE
from ..session import Agent
from .tcp import AgentFactory, format_address

__all__ = ["PomeloWebSocketProtocol", "WebSocketFactory"]


@implementer(IAgentLink)
class PomeloWebSocketProtocol(WebSocketServerProtocol):
    """One WebSocket connection: each message's payload is fed to the agent."""

    agent: Agent | None = None
    factory: WebSocketFactory
    _socket_send: Send | None = None

    @property
    def peer(self) -> str:
        """The client's address."""
        assert self.transport is not None
        return format_address(self.transport.getPeer())

    @peer.setter
    def peer(self, value: str | None) -> None:
        """Ignored: autobahn assigns its own form of the address in ``connectionMade``."""

    def connectionMade(self) -> None:
        """Note the socket for eager writes, then let autobahn start the handshake."""
        self._socket_send = socket_send(self.transport)
        super().connectionMade()

    def onConnect(self, request: ConnectionRequest) -> None:
        """Accept the upgrade on any path, with no subprotocol."""
        return None

    def onOpen(self) -> None:
        """The upgrade is done: create the agent."""
        self.agent = self.factory.agents.new_agent(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """A binary or text message holding one or more packages."""
        if self.agent is not None:
            self.agent.data_received(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """Tell the agent and forget it."""
        agent = self.agent
        if agent is not None:
            self.agent = None
            agent.connection_lost()
            self.factory.agents.agent_gone(agent)

    # autobahn's own dataReceived and sendData format a debug line (hltype, hlval) on
    # every read and every write even when debug logging is off: about a tenth of a
    # WebSocket request's CPU in a profile. These do the same work without the log line.
    def dataReceived(self, data: bytes) -> None:
        """Bytes from the transport, straight to the WebSocket frame parser."""
        self._dataReceived(data)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """Write ``data`` at once when nothing is queued (autobahn's path otherwise)."""
        if chopsize or sync or self.send_queue or getattr(self, "logOctets", False):
            super().sendData(data, sync, chopsize)
            return
        write_eagerly(self.transport, self._socket_send, data)
        if self.state == WebSocketServerProtocol.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        else:
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)

    # IAgentLink
    def write(self, data: bytes) -> None:
        """Send one package as one binary message."""
        self.sendMessage(data, isBinary=True)

    def close(self) -> None:
        """Start the WebSocket closing handshake."""
        self.sendClose(code=1000)

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        transport = self.transport
        if transport is not None:
            abort = getattr(transport, "abortConnection", None)
            if abort is not None:
                abort()
            else:
                transport.loseConnection()

    def register_producer(self, producer: object) -> None:
        """Register the agent as the TCP transport's streaming producer."""
        assert self.transport is not None
        self.transport.registerProducer(producer, True)  # type: ignore[attr-defined]


class WebSocketFactory(WebSocketServerFactory):
    """The autobahn factory of a WebSocket listener, sharing an :class:`AgentFactory`."""

    protocol = PomeloWebSocketProtocol  # type: ignore[assignment]

    def __init__(self, agents: AgentFactory) -> None:
        super().__init__(reactor=agents.clock)
        self.agents = agents
        limit = (agents.config.max_packet_size + HEADER_SIZE) * 4
        self.setProtocolOptions(
            maxFramePayloadSize=limit,
            maxMessagePayloadSize=limit,
            openHandshakeTimeout=agents.config.handshake_timeout,
            closeHandshakeTimeout=agents.config.close_grace,
            utf8validateIncoming=False,
            autoPingInterval=0,
            tcpNoDelay=True,
        )
