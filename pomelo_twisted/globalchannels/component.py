"""The Redis connection of a server as a component: connects at start, closes at stop.

Load it before the components that use the client (:class:`GlobalChannelService`,
:class:`OnlineStatus`): the application starts components in order, and stops them in
reverse, so the connection is there before they start and closes last. Start waits for
the first connection at most ``connect_timeout`` seconds: a Redis that is down does not
stop the server from starting (one warning; the client keeps trying).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IComponent
from .client import RedisClient

__all__ = ["RedisComponent"]

log = Logger()


@implementer(IComponent)
class RedisComponent:
    """Starts and stops ``client``."""

    name = "redis"

    def __init__(self, client: RedisClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"<RedisComponent {self.client!r}>"

    def start(self) -> Deferred[None]:
        """Connect; fires once connected or after ``connect_timeout`` seconds."""
        self.client.start()
        timeout = self.client.settings.connect_timeout

        def started(connected: bool) -> None:
            if not connected:
                log.warn(
                    "redis at {server} not reachable within {timeout:g}s: starting without"
                    " it, still trying",
                    server=self.client.name,
                    timeout=timeout,
                )

        return self.client.connected_within(timeout).addCallback(started)

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def stop(self, force: bool) -> Deferred[None]:
        """Close the connection."""
        return self.client.stop()
