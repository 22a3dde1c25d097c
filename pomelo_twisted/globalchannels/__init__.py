"""Global channels and online status on Redis, for a cluster across machines.

- :class:`GlobalChannelService`: channels whose members live on any frontend, pushed
  from any server, one ``push`` RPC per frontend (``app.components["global_channels"]``).
- :class:`OnlineStatus`: a frontend's bound uids in Redis, for cluster-wide counts.
- :class:`RedisClient` (:class:`IRedis`) over the sans-I/O RESP2 codec of
  :mod:`.resp`, started by :class:`RedisComponent`; :class:`FakeRedis` for tests.
- :class:`RedisSettings`: ``config/redis.json`` (``url``, ``prefix``, limits).
"""

from .client import RedisClient
from .component import RedisComponent
from .fake import FakeRedis
from .interfaces import IRedis, RedisCommandError, RedisError, RedisUnavailable
from .keys import RedisKeys
from .online import OnlineStatus
from .service import GlobalChannelService, GlobalChannelStats
from .settings import RedisSettings, parse_redis_url

__all__ = [
    "FakeRedis",
    "GlobalChannelService",
    "GlobalChannelStats",
    "IRedis",
    "OnlineStatus",
    "RedisClient",
    "RedisCommandError",
    "RedisComponent",
    "RedisError",
    "RedisKeys",
    "RedisSettings",
    "RedisUnavailable",
    "parse_redis_url",
]
