"""Applying membership events to a server: its routing table and its RPC connections.

Shared by every :class:`~pomelo_twisted.discovery.interfaces.IServiceDiscovery`: ``up`` adds
(or updates) the server and connects to it now, ``removed`` forgets it (its connection is
closed, nothing routes to it), ``down`` changes nothing (its connection keeps retrying and
calls to it fail fast until it is back). :class:`Listeners` fans events out to subscribers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ..interfaces import INetworkRpcTransport
from ..rpc.breaker import CLOSED, BreakerBoard
from .interfaces import DiscoveredServer, MembershipEvent, MembershipListener

__all__ = ["Listeners", "apply_event", "observe", "server_stats"]

log = Logger()


def apply_event(server: DiscoveredServer, event: MembershipEvent) -> None:
    """Apply ``event`` to ``server`` (events about itself are ignored) and log one line."""
    info = event.server
    if info.id == server.server_id:
        return
    transport = server.rpc_transport
    if event.kind == "up":
        server.add_server(info)
        if INetworkRpcTransport.providedBy(transport):
            transport.reconnect(info.id)
    elif event.kind == "removed":
        server.remove_server(info.id)
    log.info(
        "{server}: server {other} is {kind}",
        server=server.server_id,
        other=info.id,
        kind=event.kind,
    )


def server_stats(server: DiscoveredServer) -> dict[str, Any]:
    """Client connections, peer states and the peers whose circuit breaker is not closed
    (``breakers``, only when there are some) of ``server``, for ``pomelo-twisted list``."""
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
    return stats


class Listeners:
    """The subscribers of a discovery; a failing one is logged, the others still run."""

    def __init__(self) -> None:
        self._listeners: list[MembershipListener] = []

    def subscribe(self, listener: MembershipListener) -> Callable[[], None]:
        """Add ``listener``; the function that removes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self, event: MembershipEvent) -> None:
        """Call every listener with ``event``."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.failure("membership listener {listener!r} failed", listener=listener)


def observe(fired: Deferred[None]) -> Deferred[None]:
    """A new Deferred that fires None once ``fired`` has (whose own chain is left alone)."""
    observer: Deferred[None] = Deferred()

    def fire(result: object) -> object:
        observer.callback(None)
        return result

    fired.addCallback(fire)
    return observer
