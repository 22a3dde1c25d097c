"""The master's admin interface: what ``pomelo-twisted`` may ask over PB.

The admin CLI logs in to the master's port as ``admin`` with the cluster
secret. Every argument and answer is msgpack ``bytes`` (or nothing); a
refused command raises ``pb.Error`` with a message naming the culprit.

- ``list()`` — one row per server (the master first): id, type, state, pid,
  host, port, clientPort, uptime, connections, restarts;
- ``stop(ids)`` — stop these servers for good (``[]``: the whole cluster, in
  order, then the master);
- ``kill()`` — SIGKILL every server the master started, then stop the master;
- ``restart(id)`` — stop a server and start it again;
- ``add(entry)`` — start a new server (``{"type", "id", "host", "port", ...}``)
  and publish it once it is up.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.spread import pb

from ..errors import ConfigError
from ..gameconfig import ServerInfo
from ..rpc.payload import pack_plain, unpack_plain

if TYPE_CHECKING:
    from .master import MasterService

__all__ = ["STATS_TIMEOUT", "AdminAvatar"]

#: Seconds ``list`` waits for each server's stats.
STATS_TIMEOUT = 2.0


def _args(payload: object, what: str) -> Any:
    if type(payload) is not bytes:
        raise pb.Error(f"{what} takes msgpack bytes")
    try:
        return unpack_plain(payload)
    except ValueError as exc:
        raise pb.Error(f"{what}: {exc}") from None


class AdminAvatar(pb.Avatar):
    """The admin login of the master."""

    def __init__(self, master: MasterService) -> None:
        self.master = master

    def perspective_list(self) -> Deferred[bytes]:
        """Every server's row, the master's first (msgpack bytes of a list of dicts)."""
        master = self.master
        now = master.reactor.seconds()
        address = master.port.getHost() if master.port is not None else None
        rows: list[dict[str, Any]] = [
            {
                "id": master.id,
                "type": "master",
                "state": "stopping" if master.stopping else "up",
                "pid": os.getpid(),
                "host": master.host,
                "port": getattr(address, "port", None),
                "clientPort": None,
                "uptime": now - master.started_at,
                "connections": len(master.members),
                "restarts": 0,
            }
        ]
        stats: list[Deferred[Any]] = []
        for info in master.declared.values():
            member = master.members.get(info.id)
            if member is not None:
                state = "up"
            elif master.supervisor.pid(info.id) is not None:
                state = "starting"
            else:
                state = "down"
            row = {
                "id": info.id,
                "type": info.type,
                "state": state,
                "pid": member.pid if member is not None else master.supervisor.pid(info.id),
                "host": info.host,
                "port": info.port,
                "clientPort": info.client_port,
                "uptime": now - member.since if member is not None else None,
                "connections": None,
                "restarts": master.supervisor.restarts(info.id),
            }
            rows.append(row)
            if member is not None:
                stats.append(self._stats(member.mind, row))
        d = DeferredList(stats, consumeErrors=True)
        return d.addCallback(lambda _: pack_plain(rows))

    def _stats(self, mind: Any, row: dict[str, Any]) -> Deferred[None]:
        try:
            d: Deferred[Any] = mind.callRemote("stats")
        except pb.DeadReferenceError:
            return succeed(None)
        timer = self.master.reactor.callLater(STATS_TIMEOUT, d.cancel)

        def got(payload: object) -> None:
            if timer.active():
                timer.cancel()
            data = unpack_plain(payload) if type(payload) is bytes else {}
            if isinstance(data, dict):
                row["connections"] = data.get("connections")
                if isinstance(data.get("uptime"), (int, float)):
                    row["uptime"] = data["uptime"]

        def failed(_: object) -> None:
            if timer.active():
                timer.cancel()

        return d.addCallbacks(got, failed)

    def perspective_stop(self, payload: object) -> Deferred[bytes] | bytes:
        """Stop the given servers for good, or (no ids) the whole cluster and the master."""
        ids = _args(payload, "stop")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise pb.Error("stop takes a list of server ids")
        master = self.master
        if not ids:
            if master.stop_process is not None:
                master.reactor.callLater(0, master.stop_process)
            return pack_plain({"stopping": "cluster"})
        unknown = [i for i in ids if i not in master.declared and i not in master.members]
        if unknown:
            raise pb.Error(f"no server {', '.join(unknown)} in the cluster")
        d = master.stop_servers(ids)
        return d.addCallback(lambda stopped: pack_plain({"stopped": stopped}))

    def perspective_kill(self) -> bytes:
        """SIGKILL every server the master started; then the master stops."""
        killed = self.master.kill_all()
        if self.master.stop_process is not None:
            self.master.reactor.callLater(0.2, self.master.stop_process)
        return pack_plain({"killed": killed})

    def perspective_restart(self, server_id: object) -> Deferred[bytes]:
        """Stop a server the master started, and start it again."""
        master = self.master
        if not isinstance(server_id, str) or master.supervisor.spec(server_id) is None:
            raise pb.Error(f"server {server_id!r} was not started by this master")
        d: Deferred[int] = master.supervisor.restart(server_id)
        return d.addCallback(lambda pid: pack_plain({"restarted": server_id, "pid": pid}))

    def perspective_add(self, payload: object) -> bytes:
        """Start a new server from its entry; it is published once it registers."""
        entry = _args(payload, "add")
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise pb.Error("add takes an entry with at least type, id, host and port")
        entry = dict(entry)
        server_type = entry.pop("type")
        try:
            info = ServerInfo.from_entry(server_type, entry)
        except ConfigError as exc:
            raise pb.Error(str(exc)) from None
        master = self.master
        if info.id in master.declared or info.id in master.members:
            raise pb.Error(f"a server with id {info.id!r} exists already")
        if master.stopping:
            raise pb.Error("the cluster is stopping")
        master.declared[info.id] = info
        try:
            pid = master.start_server(info)
        except Exception as exc:
            master.declared.pop(info.id, None)
            raise pb.Error(f"cannot start {info.id}: {exc}") from None
        return pack_plain({"added": info.id, "pid": pid})
