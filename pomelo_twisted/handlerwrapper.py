"""HandlerWrapper: a connection handler in front of another one.

The frontend's handler is wrapped per listener (request hooks: metrics, tracing, request
logs) and per connection (a protobuf client's transcoding, a resumable session). Each
wrapper changes a few of the handler's methods; this base passes the others on to
``inner`` unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import implementer

from .interfaces import IAgent, IConnectionHandler

if TYPE_CHECKING:
    from .protocol import ClientHandshake

__all__ = ["HandlerWrapper"]


@implementer(IConnectionHandler)
class HandlerWrapper:
    """Passes every call on to ``inner``; a subclass overrides what it changes."""

    __slots__ = ("inner",)

    def __init__(self, inner: IConnectionHandler) -> None:
        self.inner = inner

    def handshake(self, agent: IAgent, handshake: ClientHandshake) -> object:
        """The inner handler's handshake hook."""
        return self.inner.handshake(agent, handshake)

    def connected(self, agent: IAgent) -> None:
        """The inner handler's hook."""
        self.inner.connected(agent)

    def request(self, agent: IAgent, route: str, body: bytes) -> object:
        """Handled by the inner handler."""
        return self.inner.request(agent, route, body)

    def notify(self, agent: IAgent, route: str, body: bytes) -> object:
        """Handled by the inner handler."""
        return self.inner.notify(agent, route, body)

    def disconnected(self, agent: IAgent, reason: str) -> None:
        """The inner handler's hook."""
        self.inner.disconnected(agent, reason)
