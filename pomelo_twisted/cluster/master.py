"""The master: starts the cluster, keeps its membership, and stops it in order.

``MasterService`` listens on the master's port (``config/master.json``) with a
PB portal guarded by the cluster secret, then starts every server of
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
- on its own stop (SIGTERM, ``pomelo-twisted stop``) stops the frontends
  first (no new requests), then the backends, then itself.

The admin interface (:mod:`pomelo_twisted.cluster.admin_api`) is served on the
same port to the ``admin`` login.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, gatherResults, succeed
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

from ..errors import ConfigError
from ..gameconfig import GameConfig, ServerInfo
from ..rpc.payload import pack_plain, unpack_plain
from ..rpc.pbauth import make_portal
from .spawn import TWISTD, server_command
from .supervisor import ProcessSpec, Supervisor

__all__ = ["ADMIN", "TWISTD", "MasterService", "Member", "ServerAvatar", "server_command"]

log = Logger()

#: The login name of the admin CLI.
ADMIN = "admin"


class Member:
    """A server registered with the master: its info, pid and link (the PB mind)."""

    __slots__ = ("info", "mind", "pid", "since")

    def __init__(self, info: ServerInfo, pid: int, mind: Any, since: float) -> None:
        self.info = info
        self.pid = pid
        self.mind = mind
        self.since = since


class ServerAvatar(pb.Avatar):
    """A server logged in to the master: it may register; its logout is its loss."""

    def __init__(self, master: MasterService, server_id: str, mind: Any) -> None:
        self.master = master
        self.server_id = server_id
        self.mind = mind

    def perspective_register(self, payload: object) -> bytes | Deferred[bytes]:
        """Register this server; the answer is the membership (msgpack bytes)."""
        if type(payload) is not bytes:
            raise pb.Error("register takes msgpack bytes")
        data = unpack_plain(payload)
        if not isinstance(data, dict) or not isinstance(data.get("server"), dict):
            raise pb.Error("register takes {'server': {...}, 'pid': n}")
        try:
            info = ServerInfo.from_dict(data["server"])
        except ConfigError as exc:
            raise pb.Error(str(exc)) from None
        if info.id != self.server_id:
            raise pb.Error(f"logged in as {self.server_id!r} but registering {info.id!r}")
        raw_pid = data.get("pid")
        pid = raw_pid if isinstance(raw_pid, int) else 0
        master = self.master
        current = master.members.get(info.id)
        if current is None or current.mind is self.mind or master.stopping:
            return pack_plain(master.register(info, pid, self))
        # The id is taken: by a live twin (refused), or by this very server's old link
        # that the master has not seen drop yet (a restart, a reconnect): replaced.
        d = master.alive(current)

        def decide(alive: bool) -> bytes:
            if alive or master.members.get(info.id) is not current:
                # A live twin: register() refuses it (pb.Error). Or the old link went
                # away meanwhile: register() accepts this one.
                return pack_plain(master.register(info, pid, self))
            log.warn(
                "server {server}: its old link (pid {old}) does not answer; replaced by pid {pid}",
                server=info.id,
                old=current.pid,
                pid=pid,
            )
            del master.members[info.id]
            return pack_plain(master.register(info, pid, self))

        return d.addCallback(decide)

    def logout(self) -> None:
        """The link dropped (or the server left)."""
        self.master.lost(self)


class MasterService(Service):
    """The master of one game's cluster (see the module docstring)."""

    def __init__(
        self,
        reactor: Any,
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
    ) -> None:
        self.setName("master")
        self.reactor = reactor
        self.config = config
        self.secret = secret
        entry = config.master()
        self.id = str(entry.get("id", "master-server-1"))
        self.host = str(entry.get("host", "127.0.0.1"))
        self.listen_endpoint = listen or config.master_settings().listen_endpoint
        self.supervisor = supervisor or Supervisor(reactor, stop_timeout=stop_timeout)
        self.supervisor.on_exit = self._exited
        self.command = command
        self.spawn = spawn
        self.stop_process = stop_process
        self.stop_timeout = stop_timeout
        self.probe = probe or self._probe
        #: Servers found running at start (a master restart): joined, not spawned.
        self.adopted: set[str] = set()
        self.declared: dict[str, ServerInfo] = {
            info.id: info for infos in config.servers().values() for info in infos
        }
        self.from_config = set(self.declared)
        self.members: dict[str, Member] = {}
        self.removing: set[str] = set()
        self.cluster_up = False
        self.stopping = False
        self.started_at = reactor.seconds()
        self.cluster_started: Deferred[None] = Deferred()
        self.port: IListeningPort | None = None
        #: Called when the master cannot listen (the process should exit 1).
        self.on_listen_failure: Callable[[], object] | None = None

    # -- service ----------------------------------------------------------------------

    def portal_avatar(self, name: str, mind: Any) -> pb.Avatar:
        """The avatar of a login: the admin interface, or a server."""
        if name == ADMIN:
            from .admin_api import AdminAvatar

            return AdminAvatar(self)
        return ServerAvatar(self, name, mind)

    def startService(self) -> None:
        """Listen, then start every declared server (backends first)."""
        super().startService()
        factory = pb.PBServerFactory(make_portal(self.secret, self.portal_avatar))
        d: Deferred[IListeningPort] = serverFromString(self.reactor, self.listen_endpoint).listen(
            factory
        )
        d.addCallbacks(self._listening, self._listen_failed)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        log.info(
            "master {id} listening on {endpoint}; {count} servers declared",
            id=self.id,
            endpoint=self.listen_endpoint,
            count=len(self.declared),
        )
        if self.spawn:
            ordered = sorted(self.declared.values(), key=lambda info: info.frontend)
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
                log.warn(
                    "server {server} already answers on {host}:{port}: adopting it",
                    server=info.id,
                    host=info.host,
                    port=info.port,
                )
            else:
                self.start_server(info)

    def _probe(self, info: ServerInfo) -> Deferred[bool]:
        """Whether something accepts connections on ``info``'s RPC port (1 s at most)."""
        endpoint = clientFromString(self.reactor, info.rpc_client_endpoint + ":timeout=1")
        factory = Factory.forProtocol(Protocol)
        factory.noisy = False
        d: Deferred[Any] = endpoint.connect(factory)

        def connected(protocol: Protocol) -> bool:
            if protocol.transport is not None:
                protocol.transport.loseConnection()
            return True

        return d.addCallbacks(connected, lambda _: False)

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

    def register(self, info: ServerInfo, pid: int, avatar: ServerAvatar) -> dict[str, Any]:
        """A server registered: publish it and answer the membership."""
        current = self.members.get(info.id)
        if current is not None and current.mind is not avatar.mind:
            raise pb.Error(
                f"a server with id {info.id!r} is registered already (pid {current.pid})"
            )
        if self.stopping:
            raise pb.Error("the cluster is stopping")
        self.declared[info.id] = info
        self.members[info.id] = Member(info, pid, avatar.mind, self.reactor.seconds())
        log.info(
            "server {server} ({type}) is up, pid {pid}", server=info.id, type=info.type, pid=pid
        )
        self.publish("up", info, exclude=info.id)
        if self.cluster_up:
            self._call(info.id, "after_start")
        elif all(server_id in self.members for server_id in self.declared):
            self.reactor.callLater(0, self._all_up)
        return {"servers": [s.to_dict() for s in self.declared.values()]}

    def alive(self, member: Member, timeout: float = 2.0) -> Deferred[bool]:
        """Whether ``member``'s link still answers (a stats call within ``timeout``)."""
        try:
            d: Deferred[Any] = member.mind.callRemote("stats")
        except pb.DeadReferenceError:
            return succeed(False)
        timer = self.reactor.callLater(timeout, d.cancel)

        def answered(_: object) -> bool:
            if timer.active():
                timer.cancel()
            return True

        def silent(_: Failure) -> bool:
            if timer.active():
                timer.cancel()
            return False

        return d.addCallbacks(answered, silent)

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

    def lost(self, avatar: ServerAvatar) -> None:
        """A server's link dropped: publish ``down`` (or ``removed`` when stopped on purpose)."""
        member = self.members.get(avatar.server_id)
        if member is None or member.mind is not avatar.mind:
            return
        del self.members[avatar.server_id]
        if avatar.server_id in self.removing:
            self.publish("removed", member.info)
            self.declared.pop(avatar.server_id, None)
        else:
            level = log.info if self.stopping else log.warn
            level("server {server} is down", server=avatar.server_id)
            self.publish("down", member.info)
            info = member.info
            if avatar.server_id in self.adopted and info.auto_restart and not self.stopping:
                # Not our child, so the supervisor cannot see it die: start it anew.
                self.adopted.discard(avatar.server_id)
                self.reactor.callLater(self.supervisor.min_delay, self._respawn, info)

    def _respawn(self, info: ServerInfo) -> None:
        if not self.stopping and info.id in self.declared and info.id not in self.members:
            self.start_server(info)

    def publish(self, event: str, info: ServerInfo, exclude: str | None = None) -> None:
        """Tell every registered server (but ``exclude``) about ``event`` on ``info``."""
        payload = pack_plain({"event": event, "server": info.to_dict()})
        for server_id in list(self.members):
            if server_id != exclude:
                self._call(server_id, "membership", payload)

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
                waits.append(self._stop_member(server_id))
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

    def _stop_member(self, server_id: str) -> Deferred[None]:
        """Ask a server the master did not start to stop; fires when its link is gone."""
        gone: Deferred[None] = Deferred()

        def give_up() -> None:
            if not gone.called:
                gone.callback(None)

        timer = self.reactor.callLater(self.stop_timeout, give_up)

        def poll() -> None:
            if gone.called:
                return
            if server_id not in self.members:
                if timer.active():
                    timer.cancel()
                gone.callback(None)
            else:
                self.reactor.callLater(0.05, poll)

        self._call(server_id, "stop").addBoth(lambda _: poll())
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
        """SIGKILL every process the master started; the master then stops."""
        self.stopping = True
        self.supervisor.shutting_down()
        killed = self.supervisor.running()
        for server_id in killed:
            self.supervisor.kill(server_id)
        return killed
