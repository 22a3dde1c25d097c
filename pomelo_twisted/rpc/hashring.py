"""A consistent-hash route function: adding or removing a server moves few keys.

:func:`~pomelo_twisted.rpc.router.default_route` (crc32 modulo the number of servers)
sends most keys elsewhere when a server joins: a room's or a user's state then lives
on the wrong server. A hash ring places ``vnodes`` points per server on a 64-bit circle
and a key goes to the first point at or after its own hash: adding one server to ``n``
moves about ``1/(n+1)`` of the keys (only to the new server), removing one moves only
that server's keys.

Hashes are BLAKE2b (8-byte digests) of UTF-8 text, so every process of every machine
computes the same ring (Python's ``hash()`` is salted per process). The ring of a
membership is built once and kept (a few recent memberships, keyed by the sorted
server ids): a pick costs the key's hash and a binary search.

Select it per server type: ``app.route("chat", consistent_hash_route())``, or by name
from a setting: ``app.route("chat", route_function(app.get("route", "crc32")))``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from hashlib import blake2b

from ..errors import ConfigError, RpcError
from ..gameconfig import ServerInfo
from .router import RouteFunction, default_route, route_key

__all__ = [
    "DEFAULT_VNODES",
    "ROUTE_NAMES",
    "ConsistentHashRoute",
    "HashRing",
    "consistent_hash_route",
    "key_hash",
    "route_function",
]

ROUTE_NAMES = ("crc32", "consistent-hash")
"""The names :func:`route_function` knows."""

DEFAULT_VNODES = 160
"""Points per server on the ring: with 160 the share of each of 10 servers stays within
about ±15% of the mean."""

_KEPT_RINGS = 8
"""Rings kept per route function (memberships seen recently; more are rebuilt)."""


def key_hash(text: str) -> int:
    """The position of ``text`` on the ring: the first 8 bytes of its BLAKE2b digest."""
    return int.from_bytes(blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


class HashRing:
    """The ring of one membership: ``vnodes`` points per server id."""

    __slots__ = ("_owners", "_points", "ids")

    def __init__(self, server_ids: Sequence[str], vnodes: int = DEFAULT_VNODES) -> None:
        if not vnodes > 0:
            raise ValueError(f"a hash ring needs at least one point per server, not {vnodes!r}")
        if not server_ids:
            raise ValueError("a hash ring needs at least one server")
        self.ids: tuple[str, ...] = tuple(sorted(set(server_ids)))
        points = sorted(
            (key_hash(f"{server_id}#{index}"), server_id)
            for server_id in self.ids
            for index in range(vnodes)
        )
        self._points = [point for point, _ in points]
        self._owners = [owner for _, owner in points]

    def owner(self, key: str) -> str:
        """The server id that owns ``key``."""
        index = bisect_left(self._points, key_hash(key))
        return self._owners[index if index < len(self._owners) else 0]

    def successors(self, key: str) -> list[str]:
        """Every server id in the order the ring meets them from ``key`` on: the owner
        first, then where its keys would go if it were gone, and so on."""
        owners = self._owners
        start = bisect_left(self._points, key_hash(key))
        seen: list[str] = []
        for offset in range(len(owners)):
            owner = owners[(start + offset) % len(owners)]
            if owner not in seen:
                seen.append(owner)
                if len(seen) == len(self.ids):
                    break
        return seen


class ConsistentHashRoute:
    """A route function (``fn(route_param, servers) -> server id``) over a hash ring of
    the servers' ids, rebuilt only when the set of servers changes."""

    __slots__ = ("_rings", "vnodes")

    def __init__(self, vnodes: int = DEFAULT_VNODES) -> None:
        if not isinstance(vnodes, int) or vnodes <= 0:
            raise ValueError(f"vnodes must be a positive integer, not {vnodes!r}")
        self.vnodes = vnodes
        self._rings: dict[tuple[str, ...], HashRing] = {}

    def __repr__(self) -> str:
        return f"<consistent hash route, {self.vnodes} points per server>"

    def ring(self, servers: Sequence[ServerInfo]) -> HashRing:
        """The ring of ``servers`` (built on first use, then kept)."""
        ids = tuple(sorted(server.id for server in servers))
        ring = self._rings.get(ids)
        if ring is None:
            if not ids:
                raise RpcError("no server to route to")
            if len(self._rings) >= _KEPT_RINGS:
                self._rings.clear()
            ring = self._rings[ids] = HashRing(ids, self.vnodes)
        return ring

    def __call__(self, route_param: object, servers: Sequence[ServerInfo]) -> str:
        """The id of the server owning ``route_key(route_param)`` on the ring."""
        if not servers:
            raise RpcError(f"no server to route {route_param!r} to")
        return self.ring(servers).owner(route_key(route_param))

    def fallback(
        self, route_param: object, servers: Sequence[ServerInfo], failed: str
    ) -> str | None:
        """The server that would own ``route_param`` if ``failed`` were gone (the next on
        the ring), None when there is no other server."""
        for server_id in self.ring(servers).successors(route_key(route_param)):
            if server_id != failed:
                return server_id
        return None


def consistent_hash_route(vnodes: int = DEFAULT_VNODES) -> ConsistentHashRoute:
    """A new consistent-hash route function with ``vnodes`` points per server."""
    return ConsistentHashRoute(vnodes)


def route_function(spec: str) -> RouteFunction:
    """The route function a ``route`` setting names: ``"crc32"`` (crc32 mod n, the
    default), ``"consistent-hash"`` (160 points per server) or ``"consistent-hash:N"``
    (N points per server); ``ConfigError`` naming the setting otherwise."""
    name, _, points = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if name == "crc32" and not points:
        return default_route
    if name == "consistent-hash":
        if not points:
            return ConsistentHashRoute()
        if points.isdigit() and int(points) > 0:
            return ConsistentHashRoute(int(points))
    raise ConfigError(
        f"route setting {spec!r}: expected one of {', '.join(ROUTE_NAMES)}"
        " (consistent-hash:N for N points per server)"
    )
