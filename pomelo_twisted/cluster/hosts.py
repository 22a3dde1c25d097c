"""The supervisor of one machine: starts the servers ``servers.json`` places on its host.

``pomelo-twisted start --host HOST`` (``twistd pomelo --type master --host HOST``) with etcd
discovery runs a :class:`HostSupervisor` instead of a master: it registers nothing and
serves no port. It spawns every server whose ``host`` is ``HOST`` (backends first) through
the :class:`~pomelo_twisted.cluster.supervisor.Supervisor` (auto-restart with backoff, as the
master does); the servers register in etcd themselves. It follows ``{prefix}/commands/``
(written by ``pomelo-twisted``):

- ``commands/{id}`` ``stop`` for one of its servers: the server sees the command too and
  exits 0 by itself; its exit is expected (no restart), and it gets SIGTERM only if it is
  still there after ``stop_timeout``;
- ``commands/{id}`` ``restart``: stop it and start it again;
- ``commands/@{HOST}`` ``stop``: stop every server of this host (frontends first), then
  this process;
- ``commands/@{HOST}`` ``add`` with a server entry: start that server on this host
  (``twistd pomelo --server JSON``) and supervise it.

Commands already present when it starts (or re-reads after an etcd outage) are old and
ignored. Stopping it (SIGTERM) stops its servers, frontends first. A server whose RPC port
already answers when it starts (left running by a supervisor that died) is left alone, not
started twice (nor restarted by this supervisor if it dies later).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger

from ..discovery.commands import Command, decode_command
from ..errors import ConfigError
from ..gameconfig import GameConfig, ServerInfo
from ..interfaces import IServerReactor
from ..kv.follower import PrefixFollower
from ..kv.interfaces import IKeyValueStore, KeyValue, WatchEvent
from .probe import rpc_port_answers
from .supervisor import ProcessSpec, Supervisor

__all__ = ["HostSupervisor", "host_command_id"]

log = Logger()


def host_command_id(host: str) -> str:
    """The id under ``commands/`` addressing the supervisor of ``host`` (``*``: the one
    started without ``--host``, which runs every server)."""
    return f"@{host}"


class HostSupervisor(Service):
    """Runs the servers of one host; obeys the commands written in etcd (if any)."""

    def __init__(
        self,
        reactor: IServerReactor,
        config: GameConfig,
        host: str | None,
        *,
        supervisor: Supervisor,
        command: Callable[[GameConfig, ServerInfo, bool], ProcessSpec],
        store: IKeyValueStore | None = None,
        prefix: str = "",
        stop_timeout: float = 10.0,
        stop_process: Callable[[], object] | None = None,
        probe: Callable[[ServerInfo], Deferred[bool]] | None = None,
    ) -> None:
        self.setName("host-supervisor")
        self.probe = probe or partial(rpc_port_answers, reactor)
        #: Servers found running at start (a supervisor restarted): left alone, not spawned.
        self.adopted: set[str] = set()
        self.reactor = reactor
        self.config = config
        self.host = host
        self.supervisor = supervisor
        self.command = command
        self.store = store
        self.prefix = prefix
        self.stop_timeout = stop_timeout
        self.stop_process = stop_process
        self.servers: dict[str, ServerInfo] = {
            info.id: info
            for infos in config.servers().values()
            for info in infos
            if host is None or info.host == host
        }
        self.stopping = False
        self.follower: PrefixFollower | None = None
        if store is not None:
            self.follower = PrefixFollower(
                store,
                f"{prefix}/commands/",
                reactor,
                on_snapshot=self._ignore_old,
                on_event=self._command,
                description=f"supervisor of {host or 'every host'}",
            )

    def startService(self) -> None:
        """Spawn this host's servers (backends first) and follow the commands."""
        super().startService()
        if not self.servers:
            log.warn(
                "no server of {where} is on host {host}: nothing to start",
                where=self.config.where("servers"),
                host=self.host,
            )
        ordered = sorted(self.servers.values(), key=lambda info: info.frontend)
        log.info(
            "supervisor of host {host}: {count} servers ({ids})",
            host=self.host or "*",
            count=len(ordered),
            ids=", ".join(info.id for info in ordered),
        )
        d = gatherResults([self.probe(info) for info in ordered], consumeErrors=True)
        d.addCallback(self._spawn_missing, ordered)
        if self.follower is not None:
            self.follower.start()

    def _spawn_missing(self, running: list[bool], ordered: list[ServerInfo]) -> None:
        """Spawn each server whose RPC port is free; one that answers (left running by a
        supervisor that died) is left alone: it is still registered and serving."""
        for info, is_running in zip(ordered, running, strict=True):
            if self.stopping:
                return
            if is_running:
                self.adopted.add(info.id)
                log.info(
                    "server {server} already answers on its RPC port: leaving it running",
                    server=info.id,
                )
                continue
            pid = self.supervisor.start(self.command(self.config, info, True))
            log.info(
                "started {server} ({type}) as pid {pid}", server=info.id, type=info.type, pid=pid
            )

    def stopService(self) -> Deferred[None]:
        """Stop following commands, then this host's servers: frontends, then backends."""
        super().stopService()
        if self.follower is not None:
            self.follower.stop()
        return self.stop_servers()

    def stop_servers(self) -> Deferred[None]:
        """Stop every server of this host for good, frontends first."""
        self.stopping = True
        self.supervisor.shutting_down()
        frontends = [sid for sid, info in self.servers.items() if info.frontend]
        backends = [sid for sid, info in self.servers.items() if not info.frontend]
        d = self.supervisor.stop_all(self._known(frontends), self.stop_timeout)
        d.addCallback(lambda _: self.supervisor.stop_all(self._known(backends), self.stop_timeout))
        return d

    def _known(self, ids: list[str]) -> list[str]:
        return [sid for sid in ids if self.supervisor.spec(sid) is not None]

    def _ignore_old(self, kvs: list[KeyValue]) -> None:
        """Commands already written before this read are not for this run."""

    def _command(self, event: WatchEvent) -> None:
        if event.kind != "put":
            return
        target = event.kv.key[len(f"{self.prefix}/commands/") :]
        command = decode_command(event.kv.value)
        if command is None or self.stopping:
            return
        if target == host_command_id(self.host or "*"):
            self._host_command(command)
            return
        if self.host is None and target.startswith("@") and command.command == "add":
            self._host_command(command)  # the supervisor of every host adds for any host
            return
        if target not in self.servers or self.supervisor.spec(target) is None:
            return
        log.info(
            "supervisor of {host}: {command} {server}",
            host=self.host or "*",
            command=command.command,
            server=target,
        )
        if command.command == "stop":  # the server reads it too, and exits 0 by itself
            self.supervisor.expect_exit(target, self.stop_timeout)
        elif command.command == "restart":
            self.supervisor.restart(target).addErrback(
                lambda failure: log.warn(
                    "restart of {server} failed: {error}",
                    server=target,
                    error=failure.getErrorMessage(),
                )
            )

    def _host_command(self, command: Command) -> None:
        """``stop``: every server, then this process; ``add``: start a new server."""
        log.info(
            "supervisor of {host}: {command} command from etcd",
            host=self.host or "*",
            command=command.command,
        )
        if command.command == "stop":
            d = self.stop_servers()
            stop_process = self.stop_process
            if stop_process is not None:
                d.addCallback(lambda _: stop_process())
        elif command.command == "add":
            self.add(command.entry)

    def add(self, entry: object) -> int | None:
        """Start the server of ``entry`` (a servers.json entry with its ``type``) on this
        host and supervise it; its pid, or None (logged) when the entry is refused."""
        try:
            info = ServerInfo.from_dict(entry)
        except ConfigError as exc:
            log.warn("add refused: {error}", error=exc)
            return None
        if info.id in self.servers or self.supervisor.pid(info.id) is not None:
            log.warn("add refused: a server {server} runs here already", server=info.id)
            return None
        if self.host is not None and info.host != self.host:
            log.warn(
                "add refused: {server} is on host {other}, not {host}",
                server=info.id,
                other=info.host,
                host=self.host,
            )
            return None
        self.servers[info.id] = info
        pid = self.supervisor.start(self.command(self.config, info, False))
        log.info("added {server} ({type}) as pid {pid}", server=info.id, type=info.type, pid=pid)
        return pid
