"""The monitor component: every server's link to the master.

Once its Application has started, the server logs in to the master's PB port
as its own id (with the cluster secret) and registers (its ServerInfo and pid).
The master answers with the membership it knows, and from then on calls back
the :class:`MonitorClient` the server handed over at login:

- ``membership(event)`` — a server is ``up`` (joined or came back: route to
  it, connect to it now), ``down`` (crashed: calls to it fail fast until it is
  back) or ``removed`` (stopped on purpose: stop routing to it);
- ``after_start()`` — the whole cluster is up: run ``after_start`` hooks;
- ``stop()`` — stop this server gracefully (the process exits 0);
- ``stats()`` — uptime, client connections and peer states, for ``list``.

The link reconnects by itself (a server outlives a master restart) and
re-registers each time. A server started by hand joins the same way.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sized
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb
from zope.interface import implementer

from ..gameconfig import ServerInfo
from ..interfaces import IComponent, INetworkRpcTransport, IRpcTransport, IServerReactor
from ..rpc.breaker import CLOSED, BreakerBoard
from ..rpc.payload import pack_plain, unpack_plain
from ..rpc.pbconnection import PersistentLogin

__all__ = ["MonitorClient", "MonitorComponent", "MonitoredServer"]

log = Logger()


class MonitoredServer(Protocol):
    """What the monitor needs of its server (an Application; cluster/ never imports app/)."""

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
    def rpc_transport(self) -> IRpcTransport:
        """Its RPC transport."""

    @property
    def session_service(self) -> Sized | None:
        """Its client sessions (a frontend), or None."""

    @property
    def started(self) -> Deferred[None]:
        """Fires once the server has started."""

    @property
    def server_id(self) -> str:
        """This server's id."""

    def all_servers(self) -> list[ServerInfo]:
        """Every server of the cluster, this one included."""

    def add_server(self, info: ServerInfo) -> None:
        """A server joined the cluster (or changed address)."""

    def remove_server(self, server_id: str) -> ServerInfo | None:
        """A server left the cluster for good."""

    def after_start(self) -> Deferred[None]:
        """The whole cluster is up: run the after_start hooks, once."""


class MonitorClient(pb.Referenceable):
    """What the master may call on a server (the PB *mind* of its login)."""

    def __init__(self, monitor: MonitorComponent) -> None:
        self.monitor = monitor

    def remote_membership(self, payload: object) -> None:
        """A membership event: ``{"event": "up"|"down"|"removed", "server": {...}}``."""
        if type(payload) is not bytes:
            raise pb.Error("membership payload must be msgpack bytes")
        self.monitor.membership(unpack_plain(payload))

    def remote_after_start(self) -> Deferred[None]:
        """The cluster is up: run this server's ``after_start`` hooks."""
        d: Deferred[None] = self.monitor.app.after_start()
        return d.addCallback(lambda _: None)

    def remote_stop(self) -> None:
        """Stop this server gracefully, after answering."""
        self.monitor.app.clock.callLater(0, self.monitor.stop_process)

    def remote_stats(self) -> bytes:
        """Uptime, client connections and peer states, as msgpack bytes."""
        return pack_plain(self.monitor.stats())


@implementer(IComponent)
class MonitorComponent:
    """Registers this server with the master and applies what the master publishes."""

    name = "monitor"

    def __init__(
        self,
        app: MonitoredServer,
        master_endpoint: str,
        secret: bytes,
        *,
        stop_process: Callable[[], object],
        rng: random.Random | None = None,
        pid: int | None = None,
    ) -> None:
        self.app = app
        self.master_endpoint = master_endpoint
        self.stop_process = stop_process
        self.pid = os.getpid() if pid is None else pid
        self.started_at = app.clock.seconds()
        self.registered = 0
        self.refused = ""
        rng = rng or random.Random()
        self.connection = PersistentLogin(
            clientFromString(app.reactor, master_endpoint),
            app.server_id,
            secret,
            clock=app.clock,
            jitter=lambda: rng.random() * 0.2,
            mind=MonitorClient(self),
            initial_delay=0.2,
            max_delay=2.0,
            description=f"the master ({master_endpoint})",
            on_up=self._register,
        )

    def start(self) -> None:
        """Connect to the master once this server has started."""
        self.app.started.addCallback(self._connect)

    def _connect(self, result: object) -> object:
        self.connection.start()
        return result

    def after_start(self) -> None:
        """Nothing: the master triggers ``after_start`` (this is how)."""

    def stop(self, force: bool) -> Deferred[None]:
        """Leave the master."""
        return self.connection.stop()

    # -- registration and membership --------------------------------------------------

    def _register(self, master: pb.RemoteReference) -> Deferred[None]:
        payload = pack_plain({"server": self.app.server.to_dict(), "pid": self.pid})
        d: Deferred[Any] = master.callRemote("register", payload)
        return d.addCallbacks(self._registered, self._refused)

    def _registered(self, answer: object) -> None:
        try:
            reply = unpack_plain(answer) if type(answer) is bytes else None
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("servers"), list):
            log.error("{server}: malformed answer from the master", server=self.app.server_id)
            return
        self.registered += 1
        known = {info.id for info in self.app.all_servers()}
        listed = set()
        for entry in reply["servers"]:
            info = _server_info(entry)
            if info is not None:
                listed.add(info.id)
                self.app.add_server(info)
        for server_id in known - listed - {self.app.server_id}:
            self.app.remove_server(server_id)
        log.info(
            "{server}: registered with the master ({count} servers)",
            server=self.app.server_id,
            count=len(listed),
        )

    def _refused(self, failure: Failure) -> None:
        """A server the master refuses (a live twin has its id, or the cluster is
        stopping) must not serve outside the cluster: it stops."""
        self.refused = failure.getErrorMessage()
        log.critical(
            "{server}: the master refused the registration: {error}; stopping",
            server=self.app.server_id,
            error=self.refused,
        )
        self.connection.stop()
        self.app.clock.callLater(0, self.stop_process)

    def membership(self, event: object) -> None:
        """Apply one membership event published by the master."""
        if not isinstance(event, dict):
            return
        info = _server_info(event.get("server"))
        if info is None or info.id == self.app.server_id:
            return
        kind = event.get("event")
        transport = self.app.rpc_transport
        if kind == "up":
            self.app.add_server(info)
            if INetworkRpcTransport.providedBy(transport):
                transport.reconnect(info.id)
        elif kind == "removed":
            self.app.remove_server(info.id)
        log.info(
            "{server}: server {other} is {kind}",
            server=self.app.server_id,
            other=info.id,
            kind=kind,
        )

    def stats(self) -> dict[str, Any]:
        """What ``pomelo-twisted list`` shows about this server."""
        sessions = self.app.session_service
        transport = self.app.rpc_transport
        peers = transport.peers()
        stats: dict[str, Any] = {
            "pid": self.pid,
            "uptime": self.app.clock.seconds() - self.started_at,
            "connections": len(sessions) if sessions is not None else 0,
            "peers": peers,
        }
        board = getattr(transport, "breakers", None)
        if isinstance(board, BreakerBoard):  # the peers whose circuit breaker is not closed
            tripped = {peer: state for peer, state in board.states().items() if state != CLOSED}
            if tripped:
                stats["breakers"] = tripped
        return stats


def _server_info(entry: object) -> ServerInfo | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        return None
    try:
        return ServerInfo.from_dict(entry)
    except Exception:
        log.failure("bad server entry from the master: {entry!r}", entry=entry)
        return None
