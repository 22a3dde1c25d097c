"""Applying membership events to a server: its routing table and its RPC connections.

Shared by every :class:`~pomelo_twisted.discovery.interfaces.IServiceDiscovery`: ``up`` adds
(or updates) the server and connects to it now, ``removed`` forgets it (its connection is
closed, nothing routes to it), ``down`` changes nothing (its connection keeps retrying and
calls to it fail fast until it is back). Subscribers are told through a
:class:`~pomelo_twisted.listeners.Listeners`.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ..gameconfig import ServerInfo
from ..interfaces import INetworkRpcTransport
from ..metrics.listener import MetricsComponent
from ..rpc.breaker import CLOSED, BreakerBoard
from .interfaces import DiscoveredServer, MembershipEvent

__all__ = ["JOIN_WAIT", "apply_event", "observe", "server_stats"]

log = Logger()

#: Seconds a joining server's link may take before it is routed to anyway (its calls
#: then fail fast until the link is up, as for any server that is down).
JOIN_WAIT = 5.0


def apply_event(server: DiscoveredServer, event: MembershipEvent) -> None:
    """Apply ``event`` to ``server`` (events about itself are ignored) and log one line.

    A server that *joins* (``up``, and not one this server routes to already) is
    connected to first and routed to once its link is up (or after
    :data:`JOIN_WAIT` seconds): requests are not sent to a server that cannot take them
    yet. A server this server knows (back after a crash, a new address) is routed to at
    once, as before.
    """
    info = event.server
    if info.id == server.server_id:
        return
    transport = server.rpc_transport
    if event.kind == "up":
        known = any(s.id == info.id for s in server.all_servers())
        if not known and INetworkRpcTransport.providedBy(transport):
            joining = transport.peer_state(info.id) is not None
            transport.add_peer(info)
            if joining:  # said up again while its link is not: connect now
                transport.reconnect(info.id)
            joined = transport.when_peer_up(info.id, JOIN_WAIT)
            joined.addCallback(_join, server, info, transport)
        else:
            server.add_server(info)
            if INetworkRpcTransport.providedBy(transport):
                transport.reconnect(info.id)
    elif event.kind == "removed":
        forgotten = server.remove_server(info.id)
        if forgotten is None and INetworkRpcTransport.providedBy(transport):
            transport.remove_peer(info.id)  # a join still waiting for its link
    log.info(
        "{server}: server {other} is {kind}",
        server=server.server_id,
        other=info.id,
        kind=event.kind,
    )


def _join(up: bool, server: DiscoveredServer, info: ServerInfo, transport: Any) -> None:
    """Route to ``info`` now that its link is up, or the wait ended; not when it was
    removed meanwhile (its peer is gone)."""
    if up or transport.peer_state(info.id) is not None:
        server.add_server(info)


def server_stats(server: DiscoveredServer) -> dict[str, Any]:
    """Client connections, peer states and the peers whose circuit breaker is not closed
    (``breakers``, only when there are some) of ``server``, for ``pomelo-twisted list``;
    with metrics, also ``requests``, ``routes`` and ``rpc``
    (:func:`pomelo_twisted.metrics.summary.metrics_summary`)."""
    sessions = server.session_service
    transport = server.rpc_transport
    stats: dict[str, Any] = {
        "connections": len(sessions) if sessions is not None else 0,
        "peers": transport.peers(),
    }
    board = getattr(transport, "breakers", None)
    if isinstance(board, BreakerBoard):
        tripped = {peer: state for peer, state in board.states().items() if state != CLOSED}
        if tripped:
            stats["breakers"] = tripped
    metrics = getattr(server, "components", {}).get("metrics")
    if isinstance(metrics, MetricsComponent):
        stats.update(metrics.summary())
    return stats


def observe(fired: Deferred[None]) -> Deferred[None]:
    """A new Deferred that fires None once ``fired`` has (whose own chain is left alone)."""
    observer: Deferred[None] = Deferred()

    def fire(result: object) -> object:
        observer.callback(None)
        return result

    fired.addCallback(fire)
    return observer
