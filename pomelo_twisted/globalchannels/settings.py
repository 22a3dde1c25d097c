"""Where the cluster's Redis is and how it is used: ``redis://HOST:PORT/DB`` and limits.

A game configures it in ``config/redis.json`` (per environment, like every config file)::

    {"development": {"url": "redis://127.0.0.1:6379/0", "prefix": "pomelo:chat"}}

This module imports nothing from Twisted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "COMMAND_TIMEOUT",
    "CONNECT_TIMEOUT",
    "DEFAULT_PREFIX",
    "ONLINE_TTL",
    "RedisSettings",
    "parse_redis_url",
]

COMMAND_TIMEOUT = 5.0
"""Seconds a command may wait for its reply before it fails (and the link is dropped)."""

CONNECT_TIMEOUT = 5.0
"""Seconds one connection attempt may take."""

ONLINE_TTL = 30
"""Seconds a frontend's online users stay counted after the frontend stops refreshing them
(a frontend that died without saying so); it refreshes them every third of that."""

DEFAULT_PREFIX = "pomelo"
"""The default key prefix: one per cluster sharing a Redis."""


def parse_redis_url(url: str) -> tuple[str, int, int]:
    """``(host, port, db)`` of ``redis://HOST[:PORT][/DB]``; ``ValueError`` naming the URL."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"a Redis URL is redis://HOST:PORT/DB, not {url!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"bad port in Redis URL {url!r}") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in Redis URL {url!r}")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database of Redis URL {url!r} is a number, not {path!r}")
    if parts.username or parts.password or parts.query:
        raise ValueError(f"Redis URL {url!r}: credentials and options are not supported")
    return host, port, int(path or 0)


@dataclass(frozen=True)
class RedisSettings:
    """The ``redis`` settings of a game (see the module docstring)."""

    url: str
    prefix: str = DEFAULT_PREFIX
    command_timeout: float = COMMAND_TIMEOUT
    connect_timeout: float = CONNECT_TIMEOUT
    online_ttl: int = ONLINE_TTL

    def __post_init__(self) -> None:
        parse_redis_url(self.url)
        if not self.prefix or "\x00" in self.prefix:
            raise ValueError(f"a Redis key prefix is a non-empty string, not {self.prefix!r}")
        for name in ("command_timeout", "connect_timeout", "online_ttl"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"redis {name} must be a positive number, not {value!r}")
        if self.online_ttl < 3:
            raise ValueError(f"redis online_ttl is at least 3 seconds, not {self.online_ttl!r}")

    @property
    def address(self) -> tuple[str, int, int]:
        """``(host, port, db)`` of :attr:`url`."""
        return parse_redis_url(self.url)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "redis settings") -> RedisSettings:
        """Settings from a config section: ``url`` required, the rest optional."""
        known = {"url", "prefix", "command_timeout", "connect_timeout", "online_ttl"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        if not isinstance(data.get("url"), str):
            raise ValueError(f"{where}: 'url' must be a string like redis://127.0.0.1:6379/0")
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
