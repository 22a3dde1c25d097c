"""Service discovery: how the servers of a cluster find each other.

:class:`IServiceDiscovery` registers this server (its :class:`ServerInfo`, pid, host and
start time), keeps a view of every server of the cluster, and tells subscribers when one
is ``up`` (joined or came back: route to it, connect now), ``down`` (crashed: calls fail
fast until it is back) or ``removed`` (gone: stop routing to it). Two implementations:

- the master registry (:class:`pomelo_twisted.cluster.monitor.MasterRegistry`): membership
  lives in the master, which publishes it over each server's PB link;
- etcd (:class:`pomelo_twisted.discovery.etcd.EtcdDiscovery`): each server puts its
  :class:`ServerRecord` under ``{prefix}/servers/{id}`` with a lease and watches the prefix.

:class:`DiscoveredServer` is what a discovery needs of its server (an Application: this
package never imports ``app/``).
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import Attribute, Interface

from ..gameconfig import ServerInfo
from ..interfaces import IRpcTransport, IServerReactor
from ..servercommands import ServerCommands

__all__ = [
    "DiscoveredServer",
    "IServiceDiscovery",
    "MembershipEvent",
    "MembershipListener",
    "ServerRecord",
]

EventKind = Literal["up", "down", "removed", "draining", "restarting"]


@dataclass(frozen=True, slots=True)
class MembershipEvent:
    """A server is ``up``, ``down`` or ``removed``; or it is leaving on purpose:
    ``draining`` (about to stop: no new forwards to it) or ``restarting`` (drained to be
    spawned again: calls to it are held until it is back)."""

    kind: EventKind
    server: ServerInfo


MembershipListener = Callable[[MembershipEvent], object]


class ServerRecord(msgspec.Struct, frozen=True):
    """What a server publishes about itself: its entry (:meth:`ServerInfo.to_dict`), pid,
    the machine it runs on (``host``, as ``--host`` names it), when it started (seconds
    since the epoch) and its stats (``connections``, ``peers``: id -> state)."""

    server: dict[str, Any]
    pid: int
    host: str
    started: float
    stats: dict[str, Any] = msgspec.field(default_factory=dict)

    def info(self) -> ServerInfo:
        """The server's ServerInfo (``ConfigError`` when the entry is malformed)."""
        return ServerInfo.from_dict(self.server)


class IServiceDiscovery(Interface):
    """Registration of this server and the cluster's membership, as this server sees it."""

    first_view = Attribute(
        "Deferred[None]: fires once this server is registered and has the cluster's "
        "membership for the first time (never errbacks; it waits while the backend is down)"
    )

    def start() -> Deferred[None]:
        """Register this server and follow the membership; fires like ``first_view``."""

    def stop() -> Deferred[None]:
        """Deregister (a clean stop: peers see it ``removed`` at once) and stop following."""

    def servers() -> list[ServerInfo]:
        """The current view: every server known to be in the cluster, this one included."""

    def subscribe(listener: MembershipListener) -> Callable[[], None]:
        """Call ``listener(event)`` for each membership event from now on; returns the
        function that unsubscribes it."""

    def record() -> ServerRecord:
        """What this server publishes about itself now (pid, host, start, stats)."""


class DiscoveredServer(Protocol):
    """What a discovery needs of its server (an Application)."""

    @property
    def reactor(self) -> IServerReactor:
        """The reactor the server runs on."""

    @property
    def clock(self) -> IReactorTime:
        """Its clock."""

    @property
    def server(self) -> ServerInfo:
        """This server."""

    @property
    def server_id(self) -> str:
        """This server's id."""

    @property
    def rpc_transport(self) -> IRpcTransport:
        """Its RPC transport."""

    @property
    def session_service(self) -> Sized | None:
        """Its client sessions (a frontend), or None."""

    @property
    def started(self) -> Deferred[None]:
        """Fires once the server has started."""

    def all_servers(self) -> list[ServerInfo]:
        """Every server of the cluster, this one included."""

    def servers_of(self, server_type: str) -> list[ServerInfo]:
        """The servers of ``server_type``: the list routing reads (its order matters to
        route functions such as crc32 mod n)."""

    def add_server(self, info: ServerInfo) -> None:
        """A server joined the cluster (or changed address)."""

    def remove_server(self, server_id: str) -> ServerInfo | None:
        """A server left the cluster for good."""

    def after_start(self) -> Deferred[None]:
        """The whole cluster is up: run the after_start hooks, once."""

    @property
    def commands(self) -> ServerCommands:
        """The operator commands this server serves (``app.commands``)."""
