"""The zope Interfaces of pomelo_twisted.

Every pluggable piece of the framework is described here by an Interface, and concrete
classes declare what they provide with ``@implementer``; tests check them with
:func:`zope.interface.verify.verifyObject`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from .protocol import ClientHandshake
    from .session import Agent

__all__ = ["IAcceptor", "IAgentLink", "IConnectionHandler", "ISerializer"]


class ISerializer(Interface):
    """Turns message bodies (JSON-like Python values) into bytes and back."""

    name = Attribute("short name announced in the handshake as sys.serializer, e.g. 'json'")

    def encode(obj: object) -> bytes:
        """Return the bytes of ``obj``; raise SerializationError if it cannot be encoded."""

    def decode(data: bytes) -> object:
        """Return the value encoded in ``data``; raise SerializationError if it is invalid."""


class IAgentLink(Interface):
    """What an agent writes through: one client transport (TCP, TLS or WebSocket)."""

    peer = Attribute("the client's address as text, for logs")

    def write(data: bytes) -> None:
        """Send one whole package (a WebSocket link sends it as one binary message)."""

    def close() -> None:
        """Close after the bytes already written have been sent."""

    def abort() -> None:
        """Drop the connection at once, discarding unsent bytes."""

    def register_producer(producer: object) -> None:
        """Register a streaming ``IPushProducer`` on the underlying transport."""


class IConnectionHandler(Interface):
    """What a frontend does with its client connections (the application implements it)."""

    def handshake(agent: Agent, handshake: ClientHandshake) -> object:
        """Accept a ``ClientHandshake``: return the ``user`` data to send back (or None),
        or a Deferred of it; raise ``HandshakeRejected`` to refuse with code 501."""

    def connected(agent: Agent) -> None:
        """The client acknowledged the handshake: the connection is working."""

    def request(agent: Agent, route: str, msg: object) -> object:
        """Handle a request: return the response body, a Deferred, or a coroutine.
        ``HandlerError(code, msg)`` becomes ``{"code": code, "msg": msg}``."""

    def notify(agent: Agent, route: str, msg: object) -> object:
        """Handle a notify; any result is discarded, failures are logged."""

    def disconnected(agent: Agent, reason: str) -> None:
        """The connection closed for ``reason`` (one of ``CloseReason``'s causes)."""


class IAcceptor(Interface):
    """A client listener (a Service): where clients connect and the agents it holds."""

    endpoint = Attribute("the endpoint string it listens on, e.g. 'tcp:3010:interface=127.0.0.1'")
    kind = Attribute("'hybrid', 'tcp' or 'ws'")
    agents = Attribute("the AgentFactory holding the live connections and their metrics")
    listening = Attribute("a Deferred firing with the IListeningPort once bound")
