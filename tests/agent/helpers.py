"""Test fixtures: an echo server's agent driven over an in-memory transport and a fake clock.

:func:`connect` plays a client through the sans-I/O :class:`ClientConnection`: it opens a
connection from ``TCPFactory(AgentPool(EchoHandler(clock), clock, ...))`` over a
:class:`StringTransportWithDisconnection` (whose ``loseConnection`` and ``abortConnection``
call ``connectionLost`` at once, so close reasons, metrics and hooks are observable), sends
the handshake, reads the reply and acknowledges it. Nothing touches sockets or real time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from pomelo_twisted.acceptors import AgentPool, PomeloTCPProtocol, TCPFactory
from pomelo_twisted.agent import Agent, AgentConfig
from pomelo_twisted.interfaces import IHandshakeNegotiator
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    Event,
    HandshakeAck,
    HandshakeResponse,
    PackageType,
    Request,
    Response,
    encode_package,
)
from pomelo_twisted.testing import EchoHandler, echo_dictionary

__all__ = [
    "HEARTBEAT",
    "SYS",
    "Connection",
    "connect",
    "kick_package",
    "make_agents",
    "open_connection",
    "raw_handshake",
]

HEARTBEAT = bytes.fromhex("03000000")
SYS = {"type": "socket", "version": "0.0.1", "rsa": {}}


def kick_package(reason: str) -> bytes:
    """The exact bytes of a kick package carrying ``reason``."""
    body = json.dumps({"reason": reason}, separators=(",", ":")).encode()
    return encode_package(PackageType.KICK, body)


def make_agents(
    config: AgentConfig | None = None,
    clock: Clock | None = None,
    negotiators: Sequence[IHandshakeNegotiator] = (),
) -> AgentPool:
    """An agent pool serving :class:`EchoHandler` on ``clock`` with the echo dictionary."""
    clock = clock if clock is not None else Clock()
    return AgentPool(
        EchoHandler(clock),
        clock,
        config=config or AgentConfig(),
        dictionary=echo_dictionary(),
        negotiators=negotiators,
    )


def open_connection(
    agents: AgentPool,
) -> tuple[PomeloTCPProtocol, StringTransportWithDisconnection]:
    """A TCP protocol of ``agents`` connected to a fresh in-memory transport."""
    protocol = TCPFactory(agents).buildProtocol(None)  # type: ignore[arg-type]
    transport = StringTransportWithDisconnection()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport


class Connection(NamedTuple):
    """One client connection under test, unpackable as the six things it holds."""

    protocol: PomeloTCPProtocol
    transport: StringTransportWithDisconnection
    client: ClientConnection
    clock: Clock
    handler: EchoHandler
    agents: AgentPool

    @property
    def agent(self) -> Agent:
        """The server-side agent of this connection."""
        agent = self.protocol.agent
        assert agent is not None
        return agent

    @property
    def open(self) -> bool:
        """Whether the server has neither closed nor aborted the transport."""
        return self.transport.connected

    @property
    def aborted(self) -> bool:
        """Whether the server aborted the transport (``abortConnection``)."""
        return self.transport.disconnected

    def feed(self, data: bytes) -> None:
        """Deliver raw bytes from the client to the server."""
        self.protocol.dataReceived(data)

    def send(self, event: Event) -> None:
        """Encode ``event`` with the client connection and deliver it to the server."""
        self.feed(self.client.send(event))

    def request(self, msg_id: int, route: str, body: object = None) -> None:
        """Send a request whose body is ``body`` as JSON (``{}`` when None)."""
        payload = json.dumps({} if body is None else body).encode()
        self.send(Request(msg_id, route, payload))

    def written(self) -> bytes:
        """What the server wrote since the last read; clears the transport."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def events(self) -> list[Event]:
        """What the server wrote since the last read, decoded by the client connection."""
        return self.client.receive_data(self.written())

    def responses(self) -> list[tuple[int, Any]]:
        """The ``(id, JSON body)`` of every response written since the last read."""
        return [(e.id, json.loads(e.body)) for e in self.events() if isinstance(e, Response)]


def connect(
    config: AgentConfig | None = None,
    *,
    agents: AgentPool | None = None,
    ack: bool = True,
    user: object = None,
    dict_version: str | None = None,
    sys: dict[str, Any] | None = None,
) -> Connection:
    """Connect, handshake and (unless ``ack`` is false) acknowledge; the transport is cleared.

    After the ack the server's first heartbeat has been read and cleared too. ``sys``
    adds fields to the handshake's ``sys`` object.
    """
    if agents is None:
        agents = make_agents(config)
    protocol, transport = open_connection(agents)
    clock = agents.clock
    handler = agents.handler
    assert isinstance(clock, Clock)
    assert isinstance(handler, EchoHandler)
    conn = Connection(protocol, transport, ClientConnection(), clock, handler, agents)
    conn.send(ClientHandshake(sys={**SYS, **(sys or {})}, user=user, dict_version=dict_version))
    (reply,) = conn.events()
    assert isinstance(reply, HandshakeResponse) and reply.code == 200, reply
    if ack:
        conn.send(HandshakeAck())
        conn.written()
    return conn


def raw_handshake(
    agents: AgentPool, body: bytes
) -> tuple[PomeloTCPProtocol, StringTransportWithDisconnection, dict[str, Any]]:
    """Open a connection, send a handshake package with ``body`` and parse the JSON reply."""
    protocol, transport = open_connection(agents)
    protocol.dataReceived(encode_package(PackageType.HANDSHAKE, body))
    data = transport.value()
    transport.clear()
    assert data[0] == PackageType.HANDSHAKE, data
    assert int.from_bytes(data[1:4], "big") == len(data) - 4, data
    reply: dict[str, Any] = json.loads(data[4:])
    return protocol, transport, reply
