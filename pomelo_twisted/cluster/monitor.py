"""The monitor component: every server's link to the master.

Once its Application has started, the server logs in to the master's PB port
as its own id (with the cluster secret) and registers (its ServerInfo and pid).
The master answers with the membership it knows, and from then on calls back
the :class:`MonitorClient` the server handed over at login:

- ``membership(event)`` — a server is ``up`` (joined or came back: route to
  it, connect to it now), ``down`` (crashed: calls to it fail fast until it is
  back) or ``removed`` (stopped on purpose: stop routing to it); ``draining`` or
  ``restarting`` (it leaves on purpose: no new forwards, or calls held until it is back;
  answered once this server's calls to it have ended, :mod:`pomelo_twisted.drain`);
- ``after_start()`` — the whole cluster is up: run ``after_start`` hooks;
- ``stop()`` — stop this server gracefully (the process exits 0);
- ``stats()`` — uptime, client connections and peer states, for ``list``.

The link reconnects by itself (a server outlives a master restart) and
re-registers each time. A server started by hand joins the same way.

:class:`MasterRegistry` is this link seen as an
:class:`~pomelo_twisted.discovery.interfaces.IServiceDiscovery` (the component's
``discovery``): its view is the application's, its events are the master's.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb
from zope.interface import implementer

from ..discovery.interfaces import (
    DiscoveredServer,
    IServiceDiscovery,
    MembershipEvent,
    MembershipListener,
    ServerRecord,
)
from ..discovery.membership import apply_event, observe, server_stats
from ..gameconfig import ServerInfo
from ..interfaces import IComponent
from ..listeners import Listeners
from ..rpc.payload import pack_plain, unpack_plain
from ..rpc.pbconnection import PersistentLogin
from ..servercommands import ServerCommandError

__all__ = ["MasterRegistry", "MonitorClient", "MonitorComponent", "MonitoredServer"]

log = Logger()


#: What the monitor needs of its server (an Application; cluster/ never imports app/).
MonitoredServer = DiscoveredServer


class MonitorClient(pb.Referenceable):
    """What the master may call on a server (the PB *mind* of its login)."""

    def __init__(self, monitor: MonitorComponent) -> None:
        self.monitor = monitor

    def remote_membership(self, payload: object) -> Deferred[int] | None:
        """A membership event: ``{"event": "up"|"down"|"removed"|"draining"|"restarting",
        "server": {...}}`` (``settle``: seconds a leaving server's calls may take); for a
        leaving server the answer comes once the calls to it have ended."""
        if type(payload) is not bytes:
            raise pb.Error("membership payload must be msgpack bytes")
        return self.monitor.membership(unpack_plain(payload))

    def remote_after_start(self) -> Deferred[None]:
        """The cluster is up: run this server's ``after_start`` hooks."""
        d: Deferred[None] = self.monitor.app.after_start()
        return d.addCallback(lambda _: None)

    def remote_stop(self) -> None:
        """Stop this server gracefully (it drains first), after answering."""
        self.monitor.app.clock.callLater(0, self.monitor.graceful_stop)

    def remote_stats(self) -> bytes:
        """Uptime, client connections and peer states, as msgpack bytes."""
        return pack_plain(self.monitor.stats())

    def remote_command(self, payload: object) -> Deferred[bytes]:
        """Run an operator command: ``{"name": str, "args": {...}}`` (msgpack bytes); its
        answer as msgpack bytes. A refusal is a ``pb.Error`` with the server's message."""
        request = unpack_plain(payload) if type(payload) is bytes else None
        name = request.get("name") if isinstance(request, dict) else None
        args = request.get("args") if isinstance(request, dict) else None
        if type(name) is not str or not isinstance(args, dict):
            raise pb.Error("command takes msgpack bytes of {'name': str, 'args': {...}}")
        server_id = self.monitor.app.server_id

        def answered(answer: object) -> bytes:
            try:
                return pack_plain(answer)
            except ValueError as exc:
                raise pb.Error(
                    f"{name} on {server_id}: the answer is not plain data ({exc})"
                ) from None

        def failed(failure: Failure) -> bytes:
            if not failure.check(ServerCommandError):
                log.failure(
                    "command {name} failed on {server}", failure, name=name, server=server_id
                )
                raise pb.Error(f"{name} failed on {server_id}: {failure.getErrorMessage()}")
            raise pb.Error(failure.getErrorMessage())

        d = self.monitor.app.commands.run(name, args)
        return d.addCallbacks(answered, failed)


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
        #: What the master's ``stop`` runs: the drain once one is set (build), else a stop.
        self.graceful_stop: Callable[[], object] = stop_process
        self.pid = os.getpid() if pid is None else pid
        self.started_at = app.clock.seconds()
        self.registered = 0
        self.refused = ""
        self.listeners: Listeners[[MembershipEvent]] = Listeners("membership")
        self.discovery = MasterRegistry(self)
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
        self.discovery.start()
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
            gone = self.app.remove_server(server_id)
            if gone is not None:
                self.listeners.notify(MembershipEvent("removed", gone))
        for entry in reply["servers"]:
            info = _server_info(entry)
            if info is not None and info.id != self.app.server_id:
                self.listeners.notify(MembershipEvent("up", info))
        self.discovery.registered()
        log.info(
            "{server}: registered with the master ({count} servers)",
            server=self.app.server_id,
            count=len(listed),
        )

    def _refused(self, failure: Failure) -> None:
        """A server the master refuses (a live twin has its id, or the cluster is
        stopping) must not serve outside the cluster: it stops. A connection closed
        before the answer (the master restarting) refused nothing: the next login
        registers again."""
        if failure.check(pb.PBConnectionLost, pb.DeadReferenceError, ConnectionDone):
            log.info(
                "{server}: the master closed the connection during registration",
                server=self.app.server_id,
            )
            return
        self.refused = failure.getErrorMessage()
        log.critical(
            "{server}: the master refused the registration: {error}; stopping",
            server=self.app.server_id,
            error=self.refused,
        )
        self.connection.stop()
        self.app.clock.callLater(0, self.stop_process)

    def membership(self, event: object) -> Deferred[int] | None:
        """Apply one membership event published by the master; for a server leaving on
        purpose, a Deferred fired once this server's calls to it have ended."""
        if not isinstance(event, dict):
            return None
        info = _server_info(event.get("server"))
        if info is None or info.id == self.app.server_id:
            return None
        kind = event.get("event")
        settle = event.get("settle")
        if kind not in ("up", "down", "removed", "draining", "restarting"):
            log.info(
                "{server}: server {other} is {kind}",
                server=self.app.server_id,
                other=info.id,
                kind=kind,
            )
            return None
        membership = MembershipEvent(kind, info)
        if isinstance(settle, (int, float)):
            settled = apply_event(self.app, membership, float(settle))
        else:
            settled = apply_event(self.app, membership)
        self.listeners.notify(membership)
        return settled

    def announce_leaving(self, grace: float) -> Deferred[str]:
        """Tell the master this server leaves on purpose; fires with what the master
        published (``draining``, or ``restarting`` when it restarts this server) once
        every other server has answered it (their calls to this one ended, within
        ``grace`` seconds), or with ``""`` when the master cannot be told."""
        master = self.connection.avatar
        if master is None:
            return succeed("")
        try:
            d: Deferred[Any] = master.callRemote("leaving", pack_plain({"grace": grace}))
        except pb.DeadReferenceError:
            return succeed("")

        def answered(payload: object) -> str:
            reply = unpack_plain(payload) if type(payload) is bytes else None
            state = reply.get("state") if isinstance(reply, dict) else None
            return state if isinstance(state, str) else ""

        def failed(failure: Failure) -> str:
            log.info(
                "{server}: could not tell the master it leaves: {why}",
                server=self.app.server_id,
                why=failure.getErrorMessage(),
            )
            return ""

        return d.addCallbacks(answered, failed)

    def stats(self) -> dict[str, Any]:
        """What ``pomelo-twisted list`` shows about this server."""
        return {
            "pid": self.pid,
            "uptime": self.app.clock.seconds() - self.started_at,
            **server_stats(self.app),
        }


@implementer(IServiceDiscovery)
class MasterRegistry:
    """The master's registry as this server's discovery: the monitor's link, seen through
    :class:`~pomelo_twisted.discovery.interfaces.IServiceDiscovery`.

    ``start`` logs in (and re-registers after every reconnect); ``first_view`` fires at
    the first registration; the view is the application's servers, kept by the master's
    answers and events; ``stop`` leaves the master (which publishes ``down`` or, for a
    server it stopped on purpose, ``removed``).
    """

    def __init__(self, monitor: MonitorComponent) -> None:
        self.monitor = monitor
        self.first_view: Deferred[None] = Deferred()

    def start(self) -> Deferred[None]:
        """Log in to the master; fires at the first registration."""
        self.monitor.connection.start()
        return observe(self.first_view)

    def registered(self) -> None:
        """The master accepted a registration (the monitor says so)."""
        if not self.first_view.called:
            self.first_view.callback(None)

    def stop(self) -> Deferred[None]:
        """Leave the master."""
        return self.monitor.connection.stop()

    def servers(self) -> list[ServerInfo]:
        """The servers the application knows (the master keeps them)."""
        return self.monitor.app.all_servers()

    def subscribe(self, listener: MembershipListener) -> Callable[[], None]:
        """Be told the master's membership events."""
        return self.monitor.listeners.subscribe(listener)

    def record(self) -> ServerRecord:
        """This server's pid, host (its RPC address), start time and stats."""
        monitor = self.monitor
        return ServerRecord(
            server=monitor.app.server.to_dict(),
            pid=monitor.pid,
            host=monitor.app.server.host,
            started=monitor.started_at,
            stats=server_stats(monitor.app),
        )


def _server_info(entry: object) -> ServerInfo | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        return None
    try:
        return ServerInfo.from_dict(entry)
    except Exception:
        log.failure("bad server entry from the master: {entry!r}", entry=entry)
        return None
