"""The master's admin commands (the admin part of IClusterControl), as a mixin.

:class:`AdminCommands` is what the admin CLI asks of
:class:`~pomelo_twisted.cluster.master.MasterService`: the rows of ``list``, ``stop``,
``shutdown``, ``restart`` and ``add``. It reads the master's state through the
attributes declared below. ``add`` takes only an id of ``[A-Za-z0-9_-]+`` (an id names
the server's log file, ``logs/<id>.log``) and a server type the game declares;
``restart`` restarts a server the master started (through its supervisor) or one it
adopted (found running when it started): asked to stop over its own link, killed by
the pid it registered with if it does not leave in time, then spawned anew.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

from ..errors import ConfigError
from ..gameconfig import ServerInfo
from ..interfaces import IServerReactor
from ..rpc.payload import pack_plain, unpack_plain
from ..tlsconfig import CertPaths, check_identity
from .interfaces import CommandRefused, Member
from .supervisor import Supervisor

__all__ = ["SERVER_ID", "AdminCommands", "kill_pid"]

log = Logger()

#: What a server id added by the admin may be: it names a file under ``logs/``.
SERVER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def kill_pid(pid: int) -> None:
    """SIGKILL the process ``pid`` (an adopted server that did not leave when asked)."""
    os.kill(pid, signal.SIGKILL)


class AdminCommands:
    """The admin commands of the master; see the module docstring."""

    reactor: IServerReactor
    id: str
    host: str
    port: IListeningPort | None
    started_at: float
    stopping: bool
    stop_timeout: float
    supervisor: Supervisor
    stop_process: Callable[[], object] | None
    declared: dict[str, ServerInfo]
    members: dict[str, Member]
    adopted: set[str]
    #: Servers being restarted on purpose: their link's drop is no news (logged at info).
    restarting: set[str]
    #: Servers leaving on purpose now: id -> ``draining`` or ``restarting``.
    leaving_states: dict[str, str]
    #: The rolling restarts' restart of a started server (drained, spawned, registered).
    restart_and_wait: Callable[[str], Deferred[int]]
    #: The server types the game declares (servers.json): ``add`` takes no other.
    server_types: frozenset[str]
    #: How an adopted server that does not leave is killed (by its registered pid).
    kill_pid: Callable[[int], object]
    #: The certificates folder when the cluster speaks TLS: ``add`` then needs an id that
    #: can name a certificate, and that certificate (``pomelo-twisted certs ID``).
    tls_root: Path | None = None

    def start_server(self, info: ServerInfo) -> int:
        raise NotImplementedError

    def stop_servers(self, server_ids: Iterable[str], remove: bool = True) -> Deferred[list[str]]:
        raise NotImplementedError

    def stop_member(self, server_id: str) -> Deferred[None]:
        raise NotImplementedError

    def rows(self) -> list[dict[str, Any]]:
        """One row per server, the master's first (see IClusterControl.rows)."""
        now = self.reactor.seconds()
        address = self.port.getHost() if self.port is not None else None
        rows: list[dict[str, Any]] = [
            {
                "id": self.id,
                "type": "master",
                "state": "stopping" if self.stopping else "up",
                "pid": os.getpid(),
                "host": self.host,
                "port": getattr(address, "port", None),
                "clientPort": None,
                "uptime": now - self.started_at,
                "connections": len(self.members),
                "restarts": 0,
            }
        ]
        for info in self.declared.values():
            member = self.members.get(info.id)
            pid = self.supervisor.pid(info.id)
            row: dict[str, Any] = {"id": info.id, "type": info.type, "state": "down", "pid": pid}
            if member is not None:
                row.update(state=self.leaving_states.get(info.id, "up"), pid=member.pid)
            elif pid is not None:
                row["state"] = "starting"
            row.update(host=info.host, port=info.port, clientPort=info.client_port)
            row["uptime"] = now - member.since if member is not None else None
            row.update(connections=None, restarts=self.supervisor.restarts(info.id))
            rows.append(row)
        return rows

    def stop(self, server_ids: list[str]) -> Deferred[list[str]]:
        """Stop these servers for good; unknown ids are refused (CommandRefused)."""
        unknown = [i for i in server_ids if i not in self.declared and i not in self.members]
        if unknown:
            raise CommandRefused(f"no server {', '.join(unknown)} in the cluster")
        return self.stop_servers(server_ids)

    def shutdown(self) -> None:
        """Stop the cluster, then the master's process, from the next turn."""
        if self.stop_process is not None:
            self.reactor.callLater(0, self.stop_process)

    def restart(self, server_id: str) -> Deferred[int]:
        """Stop a server and start it again; its new pid. A server the master started
        restarts through the supervisor; an adopted one is stopped over its link (killed
        by its registered pid if it stays), then spawned."""
        if self.stopping:
            raise CommandRefused("the cluster is stopping")
        if self.supervisor.spec(server_id) is not None:
            # SIGTERM drains it (calls to it are held), then it is spawned again.
            return self.restart_and_wait(server_id)
        member = self.members.get(server_id)
        info = self.declared.get(server_id)
        if member is None or info is None:
            raise CommandRefused(
                f"server {server_id!r} was not started by this master and is not registered"
            )
        self.restarting.add(server_id)
        self.adopted.discard(server_id)  # its loss must not respawn it a second time
        d = self._restart_adopted(member, info)

        def done(result: Any) -> Any:
            self.restarting.discard(server_id)
            return result

        return d.addBoth(done)

    def _restart_adopted(self, member: Member, info: ServerInfo) -> Deferred[int]:
        log.info("restarting adopted server {server} (pid {pid})", server=info.id, pid=member.pid)
        stopped = self.stop_member(info.id)

        def spawn(_: object) -> Deferred[int]:
            if self.members.get(info.id) is member:  # it did not leave when asked
                log.info(
                    "server {server} did not leave in time: killing pid {pid}",
                    server=info.id,
                    pid=member.pid,
                )
                with suppress(OSError):  # gone meanwhile
                    self.kill_pid(member.pid)
            # Its port is freed as the process exits: spawn after the restart delay.
            return deferLater(self.reactor, self.supervisor.min_delay, self.start_server, info)

        return stopped.addCallback(spawn)

    def server_command(
        self, server_id: str, name: str, args: dict[str, Any], timeout: float
    ) -> Deferred[Any]:
        """Relay operator command ``name`` to ``server_id`` over its link (IClusterControl)."""
        member = self.members.get(server_id)
        if member is None:
            raise CommandRefused(f"server {server_id[:80]!r} is not registered with the master")
        try:
            d: Deferred[Any] = member.mind.callRemote(
                "command", pack_plain({"name": name, "args": args})
            )
        except (pb.DeadReferenceError, ValueError) as exc:
            raise CommandRefused(f"{name} on {server_id}: {exc}") from None

        def answered(payload: object) -> Any:
            try:
                return unpack_plain(payload) if type(payload) is bytes else None
            except ValueError as exc:
                raise CommandRefused(f"{name} on {server_id}: malformed answer ({exc})") from None

        def failed(failure: Failure) -> None:
            if failure.check(TimeoutError):
                raise CommandRefused(f"{server_id} did not answer {name} within {timeout:g}s")
            if failure.check(pb.PBConnectionLost, pb.DeadReferenceError, ConnectionDone):
                raise CommandRefused(f"lost the link to {server_id} during {name}")
            raise CommandRefused(failure.getErrorMessage())

        d.addTimeout(timeout, self.reactor)
        return d.addCallbacks(answered, failed)

    def add(self, info: ServerInfo) -> int:
        """Start a new server; it is published once it registers. Its pid. The id must
        match ``[A-Za-z0-9_-]+`` (at most 64) — in a TLS cluster, be a DNS label with its
        certificate made — and the type be one the game declares."""
        if not SERVER_ID.fullmatch(info.id):
            raise CommandRefused(f"bad server id {info.id[:80]!r}: use 1 to 64 of A-Z a-z 0-9 _ -")
        if self.tls_root is not None:
            try:
                check_identity(info.id)
            except ConfigError as exc:
                raise CommandRefused(str(exc)) from None
            if not CertPaths(self.tls_root).cert(info.id).is_file():
                raise CommandRefused(
                    f"no TLS certificate for {info.id!r} in {self.tls_root}: "
                    f"run `pomelo-twisted certs {info.id}` first"
                )
        if info.type not in self.server_types:
            raise CommandRefused(
                f"unknown server type {info.type[:80]!r}: the game declares "
                f"{', '.join(sorted(self.server_types)) or 'none'}"
            )
        if info.id in self.declared or info.id in self.members:
            raise CommandRefused(f"a server with id {info.id!r} exists already")
        if self.stopping:
            raise CommandRefused("the cluster is stopping")
        self.declared[info.id] = info
        try:
            return self.start_server(info)
        except Exception as exc:
            self.declared.pop(info.id, None)
            raise CommandRefused(f"cannot start {info.id}: {exc}") from None
