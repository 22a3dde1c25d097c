"""Applying membership events to a server: its routing table and its RPC connections.

Shared by every :class:`~pomelo_twisted.discovery.interfaces.IServiceDiscovery`: ``up`` adds
(or updates) the server and connects to it now, ``removed`` forgets it (its connection is
closed, nothing routes to it), ``down`` changes nothing (its connection keeps retrying and
calls to it fail fast until it is back). Subscribers are told through a
:class:`~pomelo_twisted.listeners.Listeners`.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from ..gameconfig import ServerInfo
from ..interfaces import INetworkRpcTransport
from ..metrics.listener import MetricsComponent
from ..rpc.breaker import CLOSED, BreakerBoard
from .interfaces import DiscoveredServer, MembershipEvent

__all__ = ["JOIN_WAIT", "LEAVING", "SETTLE", "apply_event", "observe", "server_stats"]

log = Logger()

#: Seconds a joining server's link may take before it is routed to anyway (its calls
#: then fail fast until the link is up, as for any server that is down).
JOIN_WAIT = 5.0
#: Seconds a server told that a peer leaves waits at most for its calls to it to end.
SETTLE = 10.0
#: The events of a server leaving on purpose.
LEAVING = frozenset({"draining", "restarting"})


def apply_event(
    server: DiscoveredServer, event: MembershipEvent, settle: float = SETTLE
) -> Deferred[int] | None:
    """Apply ``event`` to ``server`` (events about itself are ignored) and log one line.

    A server that *joins* (``up``, and not one this server routes to already) is
    connected to first and routed to once its link is up (or after
    :data:`JOIN_WAIT` seconds): requests are not sent to a server that cannot take them
    yet. A server this server knows (back after a crash, a new address) is routed to at
    once, as before.

    For ``draining`` and ``restarting`` the answer is a Deferred of the calls to that
    server still in flight, fired once there are none (or after ``settle`` seconds): the
    leaving server waits for every server's answer before it counts what it serves.
    """
    info = event.server
    if info.id == server.server_id:
        return None
    transport = server.rpc_transport
    settled: Deferred[int] | None = None
    if event.kind in LEAVING:
        if event.kind == "draining":
            _stop_routing(server, info)
        holds = getattr(transport, "holds", None)
        if (
            event.kind == "restarting"
            and holds is not None
            and INetworkRpcTransport.providedBy(transport)
            and transport.peer_state(info.id) is not None
        ):
            settled = holds.hold(info.id, settle)
        else:
            settled = _settled(server, info.id, settle)
    elif event.kind == "up":
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
    return settled


def _stop_routing(server: DiscoveredServer, info: ServerInfo) -> None:
    """No new forwards to ``info``: out of the list routing reads; its connection stays
    (its pushes and the calls in flight still need it) until it is ``removed``."""
    routed = server.servers_of(info.type)
    for known in list(routed):
        if known.id == info.id:
            routed.remove(known)


def _settled(server: DiscoveredServer, server_id: str, settle: float) -> Deferred[int]:
    """Fires with the calls to ``server_id`` in flight once there are none, or after
    ``settle`` seconds (a transport that cannot count them: 0 at once)."""
    count = getattr(server.rpc_transport, "in_flight", None)
    if count is None:
        return succeed(0)
    clock = server.clock
    until = clock.seconds() + settle
    d: Deferred[int] = Deferred()

    def look() -> None:
        left = count(server_id)
        if left == 0 or clock.seconds() >= until:
            d.callback(left)
        else:
            clock.callLater(SETTLE_POLL, look)

    look()
    return d


#: Seconds between two looks at the calls in flight to a leaving server.
SETTLE_POLL = 0.01


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
