"""The example chat game's wiring; runs in every server process before it starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pomelo_twisted.app import Application
from pomelo_twisted.cluster import ServerInfo
from pomelo_twisted.rpc import RouteFunction, default_route, route_function

#: The routing key of sessions that entered without a room: they share one chat server.
LOBBY = "lobby"


def route_by_room(
    session: Any, servers: Sequence[ServerInfo], by: RouteFunction = default_route
) -> str:
    """The chat server of the session's room (``rid`` given at entry), so that every
    member of a room, whichever connector holds it, reaches the same chat server; the
    room name is placed by ``by`` (crc32 mod n unless the ``route`` setting says
    ``consistent-hash``, which moves few rooms when a chat server is added)."""
    rid = session.get("rid") if hasattr(session, "get") else None
    return by(rid or LOBBY, servers)


def rooms_placed_by(by: RouteFunction) -> RouteFunction:
    """:func:`route_by_room` placing room names with ``by``."""

    def route(session: Any, servers: Sequence[ServerInfo]) -> str:
        return route_by_room(session, servers, by)

    return route


def configure(app: Application) -> None:
    """Connector settings: hybrid TCP + WebSocket, heartbeat 3 s, route dictionary on;
    chat requests routed by room; a uid logs in once in the whole cluster (a new login
    on any connector kicks the old one with "another login"; see README "Sessions")."""
    app.set("cluster_unique_login", app.get("cluster_unique_login", True))
    app.configure(
        None,
        "connector",
        lambda app: app.set("connector", {"heartbeat": 3.0, "use_dict": True}),
    )
    app.route("chat", rooms_placed_by(route_function(app.get("route", "crc32"))))
