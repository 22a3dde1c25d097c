"""The master's PB door: the avatars of its logins, on the master's control API.

Every login to the master's port gets an avatar: the admin CLI (``admin``, with the
admin secret) an :class:`AdminAvatar`, a server (an id the game knows, with the
cluster secret, its monitor as mind) a :class:`ServerAvatar`. Both only decode PB arguments, call
:class:`~pomelo_twisted.cluster.interfaces.IClusterControl` and encode its answers:
every argument and answer is msgpack ``bytes`` (or nothing), and a refused
command raises ``pb.Error`` with a message naming the culprit.

The admin commands:

- ``list()`` — one row per server (the master first): id, type, state, pid,
  host, port, clientPort, uptime, connections, restarts;
- ``stop(ids)`` — stop these servers for good (``[]``: the whole cluster, in
  order, then the master);
- ``kill()`` — SIGKILL every server the master started, then stop the master;
- ``restart(id)`` — stop a server and start it again;
- ``add(entry)`` — start a new server (``{"type", "id", "host", "port", ...}``)
  and publish it once it is up.

A server's: ``register({"server": {...}, "pid": n})`` (the answer is the
membership); its logout is its loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredList
from twisted.spread import pb

from ..errors import ConfigError
from ..gameconfig import ServerInfo
from ..rpc.payload import pack_plain, unpack_plain
from ..rpc.pbauth import ADMIN
from .interfaces import CommandRefused, IClusterControl, ServerLink

__all__ = ["ADMIN", "COMMAND_TIMEOUT", "STATS_TIMEOUT", "AdminAvatar", "ServerAvatar", "avatar_for"]


#: Seconds ``list`` waits for each server's stats.
STATS_TIMEOUT = 2.0
#: Seconds a relayed server command may take unless the admin says otherwise.
COMMAND_TIMEOUT = 60.0
#: The longest a relayed server command may be given.
MAX_COMMAND_TIMEOUT = 3600.0

_T = TypeVar("_T")


def _args(payload: object, what: str) -> Any:
    if type(payload) is not bytes:
        raise pb.Error(f"{what} takes msgpack bytes")
    try:
        return unpack_plain(payload)
    except ValueError as exc:
        raise pb.Error(f"{what}: {exc}") from None


def _command(fn: Callable[..., _T], *args: Any) -> _T:
    """Run a control command; a refusal becomes the ``pb.Error`` the caller sees."""
    try:
        return fn(*args)
    except CommandRefused as exc:
        raise pb.Error(str(exc)) from None


def _packed(d: Deferred[Any]) -> Deferred[bytes]:
    def refused(failure: Any) -> Any:
        failure.trap(CommandRefused)
        raise pb.Error(failure.getErrorMessage())

    return d.addCallbacks(pack_plain, refused)


def avatar_for(control: IClusterControl, name: str, mind: ServerLink | None) -> pb.Avatar:
    """The avatar of a login: the admin interface, or a server with its mind."""
    if name == ADMIN:
        return AdminAvatar(control)
    if mind is None:
        raise pb.Error(f"server {name!r} logged in without its monitor as mind")
    return ServerAvatar(control, name, mind)


class ServerAvatar(pb.Avatar):
    """A server logged in to the master: it may register; its logout is its loss."""

    def __init__(self, control: IClusterControl, server_id: str, mind: ServerLink) -> None:
        self.control = control
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
        answer = _command(self.control.join, info, pid, self.mind)
        if isinstance(answer, Deferred):
            return _packed(answer)
        return pack_plain(answer)

    def perspective_leaving(self, payload: object) -> Deferred[bytes]:
        """This server leaves on purpose (it drains): ``{"grace": seconds}``; the answer,
        ``{"state": "draining"|"restarting"}``, comes once every other server knows."""
        request = _args(payload, "leaving")
        grace = request.get("grace") if isinstance(request, dict) else None
        if not isinstance(grace, (int, float)) or not 0 <= grace <= MAX_COMMAND_TIMEOUT:
            raise pb.Error("leaving takes {'grace': seconds}")
        d = self.control.leaving(self.server_id, float(grace), self.mind)
        return d.addCallback(lambda state: pack_plain({"state": state}))

    def logout(self) -> None:
        """The link dropped (or the server left)."""
        self.control.leave(self.server_id, self.mind)


class AdminAvatar(pb.Avatar):
    """The admin login of the master."""

    def __init__(self, control: IClusterControl) -> None:
        self.control = control

    def perspective_list(self) -> Deferred[bytes]:
        """Every server's row, the master's first (msgpack bytes of a list of dicts);
        a registered server's own stats (connections, uptime) complete its row."""
        rows = self.control.rows()
        stats = [self._stats(row) for row in rows[1:] if row["state"] == "up"]
        d = DeferredList(stats, consumeErrors=True)
        return d.addCallback(lambda _: pack_plain(rows))

    def _stats(self, row: dict[str, Any]) -> Deferred[None]:
        def got(data: dict[str, Any] | None) -> None:
            if data is not None:
                row["connections"] = data.get("connections")
                if isinstance(data.get("breakers"), dict):
                    row["breakers"] = data["breakers"]
                if isinstance(data.get("uptime"), (int, float)):
                    row["uptime"] = data["uptime"]

        return self.control.stats(row["id"], STATS_TIMEOUT).addCallback(got)

    def perspective_stop(self, payload: object) -> Deferred[bytes] | bytes:
        """Stop the given servers for good, or (no ids) the whole cluster and the master."""
        ids = _args(payload, "stop")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise pb.Error("stop takes a list of server ids")
        if not ids:
            self.control.shutdown()
            return pack_plain({"stopping": "cluster"})
        d = _command(self.control.stop, ids)
        return d.addCallback(lambda stopped: pack_plain({"stopped": stopped}))

    def perspective_kill(self) -> bytes:
        """SIGKILL every server the master started; then the master stops."""
        return pack_plain({"killed": self.control.kill_all()})

    def perspective_restart(self, server_id: object) -> Deferred[bytes]:
        """Stop a server the master started, and start it again."""
        if not isinstance(server_id, str):
            raise pb.Error(f"server {server_id!r} was not started by this master")
        d = _command(self.control.restart, server_id)
        return d.addCallback(lambda pid: pack_plain({"restarted": server_id, "pid": pid}))

    def perspective_restart_rolling(self, server_type: object) -> Deferred[bytes]:
        """Restart every server of a type one by one; a row (id, pid) per server."""
        if not isinstance(server_type, str):
            raise pb.Error("restart_rolling takes a server type")
        return _packed(_command(self.control.restart_rolling, server_type))

    def perspective_drain(self, payload: object) -> Deferred[bytes]:
        """Drain a server and stop it for good: ``{"server": id, "grace": s|None}``."""
        request = _args(payload, "drain")
        server = request.get("server") if isinstance(request, dict) else None
        grace = request.get("grace") if isinstance(request, dict) else None
        if type(server) is not str or not (grace is None or isinstance(grace, (int, float))):
            raise pb.Error("drain takes {'server': id, 'grace': seconds or None}")
        limit = None if grace is None else float(grace)
        if limit is not None and not 0 <= limit <= MAX_COMMAND_TIMEOUT:
            raise pb.Error(f"drain grace must be in [0, {MAX_COMMAND_TIMEOUT:g}] seconds")
        return _packed(_command(self.control.drain, server, limit))

    def perspective_command(self, payload: object) -> Deferred[bytes]:
        """Run an operator command on one server: ``{"server", "name", "args",
        "timeout"}``; the server's answer."""
        request = _args(payload, "command")
        if not isinstance(request, dict):
            raise pb.Error("command takes {'server': id, 'name': str, 'args': {...}}")
        server, name = request.get("server"), request.get("name")
        args, timeout = request.get("args", {}), request.get("timeout", COMMAND_TIMEOUT)
        if type(server) is not str or type(name) is not str or not isinstance(args, dict):
            raise pb.Error("command takes {'server': id, 'name': str, 'args': {...}}")
        if type(timeout) not in (int, float) or not 0 < timeout <= MAX_COMMAND_TIMEOUT:
            raise pb.Error(f"command timeout must be in (0, {MAX_COMMAND_TIMEOUT:g}] seconds")
        return _packed(_command(self.control.server_command, server, name, args, float(timeout)))

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
        return pack_plain({"added": info.id, "pid": _command(self.control.add, info)})
