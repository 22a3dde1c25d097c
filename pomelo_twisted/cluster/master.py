"""The master: starts the cluster, keeps its membership, and stops it in order.

``MasterService`` listens on the master's port (``config/master.json``) with a
guarded PB portal (a server id the game knows logs in with the cluster secret, the
admin CLI with its own ``adminSecret``), then starts every server of
``config/servers.json`` as its own process through the :class:`Supervisor`
(backends first). Each server's monitor logs in and registers; the master
then:

- publishes ``up`` (with the ServerInfo) to every other server, and hands the
  newcomer the whole membership;
- once every declared server is up, runs ``after_start`` on all of them
  (a server joining later gets it at once);
- when a server's link drops, publishes ``down`` (it stays a member: requests
  routed to it fail fast until it is back) and, when its entry says
  ``"auto-restart": true``, the supervisor restarts it with backoff;
- on ``stop`` of one server, stops it for good and publishes ``removed``;
- when a server drains (SIGTERM, ``drain``, ``restart``, ``restart --rolling``:
  :mod:`pomelo_twisted.cluster.rolling`), publishes it ``draining`` or ``restarting``;
- on its own stop (SIGTERM, ``pomelo-twisted stop``) stops the frontends
  first (no new requests), then the backends, then itself.

Servers and the admin CLI reach it through the PB avatars of
:mod:`pomelo_twisted.cluster.avatars`, which use only its control API
(:class:`~pomelo_twisted.cluster.interfaces.IClusterControl`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, fail, gatherResults, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb
from zope.interface import implementer

from ..gameconfig import GameConfig, ServerInfo
from ..interfaces import IServerReactor
from ..metrics.filesd import write_file_sd
from ..rpc.payload import pack_plain, unpack_plain
from ..rpc.pbauth import make_portal
from ..rpc.pbguard import GuardedServerFactory, PortLimits
from ..tlsconfig import ClusterTLS, cluster_tls
from .avatars import ADMIN, avatar_for
from .commands import AdminCommands, kill_pid
from .interfaces import CommandRefused, IClusterControl, Member, ServerLink
from .probe import rpc_port_answers
from .rolling import RollingRestarts
from .spawn import TWISTD, server_command
from .supervisor import ProcessSpec, Supervisor

__all__ = ["ADMIN", "TWISTD", "MasterService", "Member", "server_command"]

log = Logger()

#: Seconds a silent old link gets to answer before a re-registering server replaces it.
ALIVE_TIMEOUT = 2.0


@implementer(IClusterControl)
class MasterService(RollingRestarts, AdminCommands, Service):
    """The master of one game's cluster (see the module docstring)."""

    def __init__(
        self,
        reactor: IServerReactor,
        config: GameConfig,
        secret: bytes,
        *,
        supervisor: Supervisor | None = None,
        command: Callable[[GameConfig, ServerInfo, bool], ProcessSpec] = server_command,
        spawn: bool = True,
        listen: str | None = None,
        stop_process: Callable[[], object] | None = None,
        stop_timeout: float = 10.0,
        probe: Callable[[ServerInfo], Deferred[bool]] | None = None,
        admin_secret: bytes | None = None,
        spawn_host: str | None = None,
    ) -> None:
        self.setName("master")
        #: Spawn only the servers on this host (``--host``; None: every server).
        self.spawn_host = spawn_host
        self.reactor = reactor
        self.config = config
        self.secret = secret
        #: The admin CLI's secret; None: no admin login is accepted.
        self.admin_secret = admin_secret
        settings = config.master_settings()
        self.id = settings.id
        self.host = settings.host
        self.listen_endpoint = listen or settings.listen_endpoint
        #: The master's TLS material when master.json declares ``tls`` (else plaintext).
        self.tls: ClusterTLS | None = cluster_tls(config, self.id)
        self.supervisor = supervisor or Supervisor(reactor, stop_timeout=stop_timeout)
        self.supervisor.on_exit = self._exited
        self.command = command
        self.spawn = spawn
        self.stop_process = stop_process
        self.stop_timeout = stop_timeout
        self.probe = probe or partial(rpc_port_answers, reactor)
        #: Servers found running at start (a master restart): joined, not spawned.
        self.adopted: set[str] = set()
        servers = config.servers()
        self.declared: dict[str, ServerInfo] = {
            info.id: info for infos in servers.values() for info in infos
        }
        self.server_types = frozenset(servers)
        self.tls_root = config.tls_dir()
        self.restarting: set[str] = set()
        self.kill_pid = kill_pid
        self.from_config = set(self.declared)
        self.members: dict[str, Member] = {}
        self.removing: set[str] = set()
        self.leaving_states: dict[str, str] = {}
        self.rejoin_waiters: dict[str, list[Deferred[int]]] = {}
        #: Servers asked to stop over their link: fired when the link drops.
        self.departures: dict[str, list[Deferred[None]]] = {}
        self.cluster_up = False
        self.stopping = False
        self.started_at = reactor.seconds()
        self.cluster_started: Deferred[None] = Deferred()
        self.port: IListeningPort | None = None
        #: The factory of the master's port (its counters tell what it refused).
        self.port_factory: GuardedServerFactory | None = None
        #: Called when the master cannot listen (the process should exit 1).
        self.on_listen_failure: Callable[[], object] | None = None
        #: The Prometheus file_sd target file (master.json's ``metricsTargets``).
        self.targets_path = config.base_dir / settings.metrics_targets

    # -- service ----------------------------------------------------------------------

    def portal_avatar(self, name: str, mind: ServerLink | None) -> pb.Avatar:
        """The avatar of a login: the admin interface, or a server."""
        return avatar_for(self, name, mind)

    def secret_for(self, name: str) -> bytes | None:
        """The secret a login as ``name`` must prove: the admin secret for ``admin``
        (None when none is configured: refused), the cluster secret for a server id the
        game declares or that is a member, None for any other name."""
        if name == ADMIN:
            return self.admin_secret
        if name in self.declared or name in self.members:
            return self.secret
        return None

    def startService(self) -> None:
        """Listen, then start every declared server (backends first)."""
        super().startService()
        portal = make_portal(self.secret, self.portal_avatar, secret_for=self.secret_for)
        links = self.config.master_settings().rpc
        factory = GuardedServerFactory(
            portal,
            self.reactor,
            PortLimits(links.login_deadline, links.pre_login_bytes),
            name=f"master port of {self.id}",
        )
        self.port_factory = factory
        d: Deferred[IListeningPort] = self._endpoint().listen(factory)
        d.addCallbacks(self._listening, self._listen_failed)

    def _endpoint(self) -> IStreamServerEndpoint:
        """The master's listener: TLS requiring a certificate of the cluster CA when
        master.json declares ``tls``, else plain TCP."""
        if self.tls is None:
            return serverFromString(self.reactor, self.listen_endpoint)
        return self.tls.server(self.reactor, self.listen_endpoint)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        log.info(
            "master {id} listening on {endpoint}{tls}; {count} servers declared",
            id=self.id,
            endpoint=self.listen_endpoint,
            tls="" if self.tls is None else " (mutual TLS)",
            count=len(self.declared),
        )
        self.write_targets()
        if self.spawn:
            ordered = sorted(self.declared.values(), key=lambda info: info.frontend)
            if self.spawn_host is not None:
                ordered = [info for info in ordered if info.host == self.spawn_host]
            probes = [self.probe(info) for info in ordered]
            d = gatherResults(probes, consumeErrors=True)
            d.addCallback(self._spawn_missing, ordered)

    def _spawn_missing(self, running: list[bool], ordered: list[ServerInfo]) -> None:
        """Spawn every server whose RPC port is free; one already answering (left by a
        master that died) is adopted: it registers by itself, as it keeps retrying."""
        for info, is_running in zip(ordered, running, strict=True):
            if self.stopping:
                return
            if is_running:
                self.adopted.add(info.id)
                log.info(
                    "server {server} already answers on {host}:{port}: adopting it",
                    server=info.id,
                    host=info.host,
                    port=info.port,
                )
            else:
                self.start_server(info)

    def _listen_failed(self, failure: Failure) -> None:
        log.critical(
            "master {id} cannot listen on {endpoint}: {error}",
            id=self.id,
            endpoint=self.listen_endpoint,
            error=failure.getErrorMessage(),
        )
        if self.on_listen_failure is not None:
            self.on_listen_failure()

    def start_server(self, info: ServerInfo) -> int:
        """Spawn ``info``'s process; its pid."""
        spec = self.command(self.config, info, info.id in self.from_config)
        pid = self.supervisor.start(spec)
        # A removed id started again is a new server: its loss is "down", not "removed".
        self.removing.discard(info.id)
        log.info("started {server} ({type}) as pid {pid}", server=info.id, type=info.type, pid=pid)
        return pid

    def stopService(self) -> Deferred[None]:
        """Stop the cluster in order, then stop listening."""
        super().stopService()
        d = self.stop_cluster()

        def close(_: object) -> Deferred[Any] | None:
            port, self.port = self.port, None
            return None if port is None else port.stopListening()

        return d.addCallback(close).addCallback(lambda _: None)

    # -- membership ---------------------------------------------------------------------

    def join(
        self, info: ServerInfo, pid: int, link: ServerLink
    ) -> dict[str, Any] | Deferred[dict[str, Any]]:
        """A server registers: publish it; answer the membership (IClusterControl)."""
        current = self.members.get(info.id)
        if current is None or current.mind is link or self.stopping:
            return self._admit(info, pid, link)
        # The id is taken: by a live twin (refused), or by this very server's old link
        # that the master has not seen drop yet (a restart, a reconnect): replaced.
        d = self._answers(current.mind, ALIVE_TIMEOUT)

        def decide(alive: bool) -> dict[str, Any]:
            if not alive and self.members.get(info.id) is current:
                log.warn(
                    "server {server}: its old link (pid {old}) does not answer; "
                    "replaced by pid {pid}",
                    server=info.id,
                    old=current.pid,
                    pid=pid,
                )
                del self.members[info.id]
            return self._admit(info, pid, link)

        return d.addCallback(decide)

    def _admit(self, info: ServerInfo, pid: int, link: ServerLink) -> dict[str, Any]:
        current = self.members.get(info.id)
        if current is not None and current.mind is not link:
            raise CommandRefused(
                f"a server with id {info.id!r} is registered already (pid {current.pid})"
            )
        if self.stopping:
            raise CommandRefused("the cluster is stopping")
        self.declared[info.id] = info
        self.leaving_states.pop(info.id, None)
        self.members[info.id] = Member(info, pid, link, self.reactor.seconds())
        log.info(
            "server {server} ({type}) is up, pid {pid}", server=info.id, type=info.type, pid=pid
        )
        self.publish("up", info, exclude=info.id)
        self.joined(info.id, pid)
        if self.cluster_up:
            self._call(info.id, "after_start")
        elif all(server_id in self.members for server_id in self.declared):
            self.reactor.callLater(0, self._all_up)
        return {"servers": [s.to_dict() for s in self.declared.values()]}

    def _ask(self, link: ServerLink, method: str, timeout: float) -> Deferred[Any]:
        """``link.callRemote(method)``, cancelled after ``timeout`` seconds."""
        try:
            d: Deferred[Any] = link.callRemote(method)
        except pb.DeadReferenceError as exc:
            return fail(exc)
        return d.addTimeout(timeout, self.reactor)

    def _answers(self, link: ServerLink, timeout: float) -> Deferred[bool]:
        return self._ask(link, "stats", timeout).addCallbacks(lambda _: True, lambda _: False)

    def alive(self, server_id: str, timeout: float = ALIVE_TIMEOUT) -> Deferred[bool]:
        """Whether ``server_id``'s link answers (a stats call within ``timeout``)."""
        member = self.members.get(server_id)
        return succeed(False) if member is None else self._answers(member.mind, timeout)

    def stats(self, server_id: str, timeout: float) -> Deferred[dict[str, Any] | None]:
        """What a registered server reports about itself, or None (IClusterControl)."""
        member = self.members.get(server_id)
        if member is None:
            return succeed(None)

        def decoded(payload: object) -> dict[str, Any] | None:
            data = unpack_plain(payload) if type(payload) is bytes else None
            return data if isinstance(data, dict) else None

        return self._ask(member.mind, "stats", timeout).addCallbacks(decoded, lambda _: None)

    def _all_up(self) -> None:
        if self.cluster_up or self.stopping:
            return
        self.cluster_up = True
        ids = list(self.members)
        d = gatherResults([self._call(server_id, "after_start") for server_id in ids])

        def done(_: object) -> None:
            log.info(
                "cluster started: {count} servers up ({ids})", count=len(ids), ids=", ".join(ids)
            )
            for info in self.declared.values():
                if info.frontend and info.client_port is not None:
                    host = info.client_host or info.host
                    log.info(
                        "clients connect to {server} at tcp:{host}:{port} or ws://{host}:{port}/",
                        server=info.id,
                        host=host,
                        port=info.client_port,
                    )
            if not self.cluster_started.called:
                self.cluster_started.callback(None)

        d.addBoth(done)

    def leave(self, server_id: str, link: ServerLink) -> None:
        """A server's link dropped: publish ``down`` (or ``removed`` when stopped on purpose)."""
        member = self.members.get(server_id)
        if member is None or member.mind is not link:
            return
        del self.members[server_id]
        leaving = server_id in self.leaving_states
        if self.leaving_states.get(server_id) != "restarting":
            self.leaving_states.pop(server_id, None)
        if server_id in self.removing:
            self.publish("removed", member.info)
            self.declared.pop(server_id, None)
        else:
            deliberate = self.stopping or server_id in self.restarting or leaving
            level = log.info if deliberate else log.warn
            level("server {server} is down", server=server_id)
            self.publish("down", member.info)
            info = member.info
            if server_id in self.adopted and info.auto_restart and not self.stopping:
                # Not our child, so the supervisor cannot see it die: start it anew.
                self.adopted.discard(server_id)
                self.reactor.callLater(self.supervisor.min_delay, self._respawn, info)
        for gone in self.departures.pop(server_id, []):
            gone.callback(None)

    def _respawn(self, info: ServerInfo) -> None:
        if not self.stopping and info.id in self.declared and info.id not in self.members:
            self.start_server(info)

    def publish(self, event: str, info: ServerInfo, exclude: str | None = None) -> None:
        """Tell every registered server (but ``exclude``) about ``event`` on ``info``."""
        payload = pack_plain({"event": event, "server": info.to_dict()})
        for server_id in list(self.members):
            if server_id != exclude:
                self._call(server_id, "membership", payload)
        self.write_targets()

    def write_targets(self) -> None:
        """Rewrite the Prometheus file_sd target file: every declared or registered
        server with a ``metricsPort`` (a server down stays a target: its scrape fails).
        Not written while no server has one and it does not exist."""
        servers = dict(self.declared)
        servers.update((server_id, member.info) for server_id, member in self.members.items())
        metered = any(info.metrics_port is not None for info in servers.values())
        if not metered and not self.targets_path.exists():
            return
        try:
            write_file_sd(self.targets_path, servers.values())
        except OSError as exc:
            log.warn("cannot write {path}: {error}", path=self.targets_path, error=exc)

    def _call(self, server_id: str, method: str, *args: object) -> Deferred[Any]:
        member = self.members.get(server_id)
        if member is None:
            return succeed(None)
        try:
            d: Deferred[Any] = member.mind.callRemote(method, *args)
        except pb.DeadReferenceError:
            return succeed(None)

        def failed(failure: Failure) -> None:
            if not failure.check(pb.PBConnectionLost, pb.DeadReferenceError):
                log.warn(
                    "{method} on server {server} failed: {error}",
                    method=method,
                    server=server_id,
                    error=failure.getErrorMessage(),
                )

        return d.addErrback(failed)

    def _exited(self, server_id: str, code: int | None, signal: int | None, expected: bool) -> None:
        if expected or self.stopping:
            return
        info = self.declared.get(server_id)
        if info is not None and not info.auto_restart:
            log.error(
                "server {server} died (code {code}, signal {signal}) and has no auto-restart",
                server=server_id,
                code=code,
                signal=signal,
            )

    # -- stopping ---------------------------------------------------------------------------

    def stop_servers(self, server_ids: Iterable[str], remove: bool = True) -> Deferred[list[str]]:
        """Stop these servers (in parallel); when ``remove``, they leave the cluster."""
        ids = list(server_ids)
        waits: list[Deferred[Any]] = []
        for server_id in ids:
            if remove:
                self.removing.add(server_id)
            running = self.supervisor.pid(server_id) is not None
            if self.supervisor.spec(server_id) is not None:
                # Stops its process, or cancels the restart pending after a crash.
                waits.append(self.supervisor.stop(server_id, self.stop_timeout))
            if not running and server_id in self.members:
                waits.append(self.stop_member(server_id))
        d = DeferredList(waits, consumeErrors=True)

        def finished(_: object) -> list[str]:
            if remove:
                for server_id in ids:
                    info = self.declared.pop(server_id, None)
                    if server_id not in self.members and info is not None:
                        self.publish("removed", info)
                    self.supervisor.forget(server_id)
            return ids

        return d.addCallback(finished)

    def stop_member(self, server_id: str) -> Deferred[None]:
        """Ask a server the master did not start to stop; fires when its link drops
        (:meth:`leave`), or after ``stop_timeout`` when it stays."""
        gone: Deferred[None] = Deferred()
        waiting = self.departures.setdefault(server_id, [])
        waiting.append(gone)

        def given_up(_: object, timeout: float) -> None:
            waiting.remove(gone)
            log.warn("server {server} did not leave within {t}s", server=server_id, t=timeout)

        gone.addTimeout(self.stop_timeout, self.reactor, onTimeoutCancel=given_up)
        self._call(server_id, "stop")
        return gone

    def stop_cluster(self) -> Deferred[None]:
        """Frontends first, then backends; no restarts from now on."""
        if self.stopping:
            return succeed(None)
        self.stopping = True
        self.supervisor.shutting_down()
        known = list(self.declared.values())
        frontends = [info.id for info in known if info.frontend]
        backends = [info.id for info in known if not info.frontend]
        log.info("stopping the cluster: frontends {f}, then backends {b}", f=frontends, b=backends)
        d = self.stop_servers(frontends, remove=False)
        d.addCallback(lambda _: self.stop_servers(backends, remove=False))
        d.addCallback(lambda _: log.info("every server has stopped"))
        return d.addCallback(lambda _: None)

    def kill_all(self) -> list[str]:
        """SIGKILL every process the master started; the master's process stops 0.2 s later."""
        self.stopping = True
        self.supervisor.shutting_down()
        killed = self.supervisor.running()
        for server_id in killed:
            self.supervisor.kill(server_id)
        if self.stop_process is not None:
            self.reactor.callLater(0.2, self.stop_process)
        return killed
