"""The components a server loads for Redis, from its ``redis`` settings.

Every server: a :class:`RedisComponent` (the connection) and a
:class:`GlobalChannelService`; a frontend also an :class:`OnlineStatus`. The
application's build step loads them in this order (stopped in reverse: the connection
closes last). Without ``redis`` settings a server loads none and needs no Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..interfaces import IComponent, IServerReactor
from ..session.backend import RpcCall
from ..session.service import SessionService
from .client import RedisClient
from .component import RedisComponent
from .online import OnlineStatus
from .service import GlobalChannelService
from .settings import RedisSettings

__all__ = ["redis_components"]


def redis_components(
    settings: RedisSettings | Mapping[str, Any],
    *,
    reactor: IServerReactor,
    rpc: RpcCall,
    server_type: str,
    sessions: SessionService | None,
    where: str = "redis settings",
) -> list[IComponent]:
    """The Redis components of one server (``sessions`` is a frontend's, else None);
    ``ConfigError`` naming ``where`` for bad settings."""
    if not isinstance(settings, RedisSettings):
        try:
            settings = RedisSettings.from_dict(settings, where)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    client = RedisClient(reactor, settings)
    components: list[IComponent] = [
        RedisComponent(client),
        GlobalChannelService(client, rpc, settings.prefix),
    ]
    if sessions is not None:
        components.append(
            OnlineStatus(
                client, settings.prefix, sessions, server_type, reactor, settings.online_ttl
            )
        )
    return components
