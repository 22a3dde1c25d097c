"""The Redis connection of a server as a component: connects at start, closes at stop.

Load it before the components that use the client (:class:`GlobalChannelService`,
:class:`OnlineStatus`): the application stops components in reverse order, so the
connection closes last. A Redis that is down does not stop the server from starting;
the client keeps trying.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..interfaces import IComponent
from .client import RedisClient

__all__ = ["RedisComponent"]


@implementer(IComponent)
class RedisComponent:
    """Starts and stops ``client``."""

    name = "redis"

    def __init__(self, client: RedisClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"<RedisComponent {self.client!r}>"

    def start(self) -> None:
        """Begin connecting (the server does not wait for Redis)."""
        self.client.start()

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def stop(self, force: bool) -> Deferred[None]:
        """Close the connection."""
        return self.client.stop()
