"""Route functions: which server of a type serves a call.

A route function takes the call's route parameter (a uid, a session, anything)
and the servers of the target type, and returns one of their ids. It is
synchronous and must be deterministic for the same membership (Pomelo's
routes are asynchronous; a route needing I/O should resolve it beforehand).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from ..errors import RpcError
from ..gameconfig import ServerInfo
from .idempotent import IdempotentRemotes

__all__ = ["RouteFunction", "Router", "default_route", "route_key"]

#: ``fn(route_param, servers) -> server id``.
RouteFunction = Callable[[object, Sequence[ServerInfo]], str]


def route_key(route_param: object) -> str:
    """The text the default route hashes for ``route_param``.

    A session-like object (one with a ``uid`` attribute) gives its uid, or its
    ``id`` while it has no uid (not bound yet); anything else gives ``str()`` of
    itself (a uid ``42`` and ``"42"`` route alike).
    """
    if isinstance(route_param, str):
        return route_param
    uid = getattr(route_param, "uid", None)
    if uid is not None:
        return str(uid)
    if hasattr(route_param, "uid"):
        session_id = getattr(route_param, "id", None)
        if session_id is not None:
            return str(session_id)
    return str(route_param)


def default_route(route_param: object, servers: Sequence[ServerInfo]) -> str:
    """The id of ``servers[crc32(route_key(route_param)) % len(servers)]``, the
    servers sorted by id, so the choice does not depend on their order.

    The same parameter goes to the same server while the membership is the same.
    """
    if not servers:
        raise RpcError(f"no server to route {route_param!r} to")
    ordered = sorted(server.id for server in servers)
    index = zlib.crc32(route_key(route_param).encode("utf-8")) % len(ordered)
    return ordered[index]


class Router:
    """The route function of each server type: ``default`` unless overridden; and which
    remotes may be retried on another server (``idempotent``)."""

    def __init__(self, default: RouteFunction = default_route) -> None:
        self._default = default
        self._routes: dict[str, RouteFunction] = {}
        #: The remote methods a routed call may retry once on another server.
        self.idempotent = IdempotentRemotes()

    def set(self, server_type: str, fn: RouteFunction) -> None:
        """Route calls to ``server_type`` with ``fn`` (replacing an earlier one)."""
        if not callable(fn):
            raise TypeError(f"the route of {server_type!r} must be callable, not {fn!r}")
        self._routes[server_type] = fn

    def get(self, server_type: str) -> RouteFunction:
        """The route function used for ``server_type``."""
        return self._routes.get(server_type, self._default)

    def pick(self, server_type: str, route_param: object, servers: Sequence[ServerInfo]) -> str:
        """The id of the server of ``server_type`` that serves ``route_param``.

        Raises ``RpcError`` when ``servers`` is empty, or when the route function
        returns an id that is not one of them. An exception of the route
        function itself propagates unchanged.
        """
        if not servers:
            raise RpcError(f"no server of type {server_type!r}")
        server_id = self.get(server_type)(route_param, servers)
        if not any(server.id == server_id for server in servers):
            raise RpcError(
                f"the route of {server_type!r} chose {server_id!r}, "
                f"which is not one of its {len(servers)} servers"
            )
        return server_id

    def fallback(
        self, server_type: str, route_param: object, servers: Sequence[ServerInfo], failed: str
    ) -> str | None:
        """Another server of ``server_type`` for ``route_param`` when ``failed`` could not
        be reached (for a retry): the route function's own ``fallback(route_param,
        servers, failed)`` if it has one (the next server on a hash ring), else the
        server after ``failed`` in the servers sorted by id; None when there is no other.
        """
        fn = self.get(server_type)
        own = getattr(fn, "fallback", None)
        if callable(own):
            chosen = own(route_param, servers, failed)
            return chosen if isinstance(chosen, str) and chosen != failed else None
        ordered = sorted(server.id for server in servers)
        if failed not in ordered:
            return ordered[0] if ordered else None
        if len(ordered) < 2:
            return None
        return ordered[(ordered.index(failed) + 1) % len(ordered)]
