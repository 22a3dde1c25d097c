"""The cluster's interfaces: the master's control API, what its PB avatars may ask of it.

:class:`IClusterControl` is the whole surface the avatars of
:mod:`pomelo_twisted.cluster.avatars` use, so they never touch the master's state
and the master module never has to be imported by them. A command the master
refuses raises :class:`CommandRefused`, whose message names the culprit.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred
from zope.interface import Interface

from ..gameconfig import ServerInfo

__all__ = ["CommandRefused", "IClusterControl", "IClusterView", "Member", "ServerLink"]


class CommandRefused(Exception):
    """The master refuses a command (unknown id, id taken, the cluster is stopping...)."""


class ServerLink(Protocol):
    """A registered server as the master holds it: the PB reference of its monitor."""

    def callRemote(self, _name: str, *args: Any) -> Deferred[Any]:  # noqa: N802 (PB's name)
        """Call ``remote_<_name>`` on the server's monitor."""


class Member:
    """A server registered with the master: its info, pid and link (the PB mind)."""

    __slots__ = ("info", "mind", "pid", "since")

    def __init__(self, info: ServerInfo, pid: int, mind: ServerLink, since: float) -> None:
        self.info = info
        self.pid = pid
        self.mind = mind
        self.since = since


class IClusterView(Interface):
    """The part of the master a viewer (the live dashboard) reads and acts through."""

    def rows() -> list[dict[str, Any]]:
        """One row per server, the master's first (see IClusterControl.rows)."""

    def stats(server_id: str, timeout: float) -> Deferred[dict[str, Any] | None]:
        """A registered server's own stats, or None (see IClusterControl.stats)."""

    def restart(server_id: str) -> Deferred[int]:
        """Restart a server; its new pid (see IClusterControl.restart)."""

    def stop(server_ids: list[str]) -> Deferred[list[str]]:
        """Stop these servers for good (see IClusterControl.stop)."""

    def server_command(
        server_id: str, name: str, args: dict[str, Any], timeout: float
    ) -> Deferred[Any]:
        """Run an operator command on a server (see IClusterControl.server_command)."""


class IClusterControl(IClusterView):
    """The master of a cluster, as its servers and the admin CLI see it."""

    def join(
        info: ServerInfo, pid: int, link: ServerLink
    ) -> dict[str, Any] | Deferred[dict[str, Any]]:
        """A server registers over ``link``: publish it; the answer is
        ``{"servers": [entry, ...]}``. An id held by a live twin is refused; one held by
        this server's old, silent link is taken over."""

    def leave(server_id: str, link: ServerLink) -> None:
        """The link of ``server_id`` dropped (it crashed, or stopped on purpose)."""

    def rows() -> list[dict[str, Any]]:
        """One row per server, the master's first: id, type, state (``up``, ``starting``,
        ``down``; the master ``up`` or ``stopping``), pid, host, port, clientPort,
        uptime, connections (None: the member's own stats tell), restarts."""

    def stats(server_id: str, timeout: float) -> Deferred[dict[str, Any] | None]:
        """What a registered server reports about itself (uptime, connections, peers),
        or None when it is not registered or does not answer within ``timeout``."""

    def alive(server_id: str, timeout: float) -> Deferred[bool]:
        """Whether the link of ``server_id`` answers within ``timeout`` seconds."""

    def stop(server_ids: list[str]) -> Deferred[list[str]]:
        """Stop these servers for good (they leave the cluster); unknown ids are refused."""

    def shutdown() -> None:
        """Stop the whole cluster in order, then the master's process (from the next turn)."""

    def kill_all() -> list[str]:
        """SIGKILL every server the master started (their ids); the master's process stops
        shortly after."""

    def restart(server_id: str) -> Deferred[int]:
        """Stop a server the master started and start it again; its new pid."""

    def add(info: ServerInfo) -> int:
        """Start a new server; it is published once it registers. Its pid."""

    def server_command(
        server_id: str, name: str, args: dict[str, Any], timeout: float
    ) -> Deferred[Any]:
        """Run operator command ``name`` on a registered server; its answer.
        ``CommandRefused`` naming why: not registered, refused by the server, no answer
        within ``timeout`` seconds, link lost."""

    def leaving(server_id: str, grace: float, link: object = None) -> Deferred[str]:
        """``server_id`` leaves on purpose (it drains): publish it ``restarting`` (the
        master restarts it) or ``draining``; fires with that state once every other
        server has answered (their calls to it ended), within ``grace`` seconds. Asked
        over a ``link`` that is not the registered member's: nothing, ``""``."""

    def drain(server_id: str, grace: float | None) -> Deferred[dict[str, Any]]:
        """Drain ``server_id`` and stop it for good (it leaves the cluster); what it
        reported. ``grace`` (None: its own setting) bounds the requests in flight."""

    def restart_rolling(server_type: str) -> Deferred[list[dict[str, Any]]]:
        """Restart every server of ``server_type`` one by one, each drained, spawned again
        and serving before the next; one row per server (id, pid)."""
