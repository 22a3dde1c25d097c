"""Drain and rolling restarts, as the master runs them (a mixin of the master).

A server leaving on purpose drains (:mod:`pomelo_twisted.drain`): it closes its client
listener, then tells the master it leaves (:meth:`RollingRestarts.leaving`). The master
publishes it ``restarting`` when the master itself is restarting it (every other server
then holds its calls to it until its next incarnation logs in), or ``draining`` (they
stop forwarding to it), and answers once every other server has answered: their calls
to it have ended. The server then finishes what it serves, kicks its clients with
"server restarting", hands its state to its next incarnation and exits 0.

- ``drain ID``: the server drains and stops for good (``removed`` once its link drops);
- ``restart ID``: SIGTERM (which drains), then spawned again; done once it has
  registered again;
- ``restart --rolling TYPE``: ``restart`` of every server of the type, one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..gameconfig import ServerInfo
from ..interfaces import IServerReactor
from ..rpc.payload import pack_plain
from .interfaces import CommandRefused, Member
from .supervisor import Supervisor

__all__ = ["REJOIN_TIMEOUT", "RollingRestarts"]

log = Logger()

#: Seconds a restarted server may take to register again before a rolling restart
#: gives up (the servers after it are left alone).
REJOIN_TIMEOUT = 60.0


class RollingRestarts:
    """The master's side of drains and restarts; see the module docstring."""

    reactor: IServerReactor
    stopping: bool
    stop_timeout: float
    supervisor: Supervisor
    declared: dict[str, ServerInfo]
    members: dict[str, Member]
    restarting: set[str]
    removing: set[str]
    departures: dict[str, list[Deferred[None]]]
    #: Servers leaving on purpose now: id -> ``draining`` or ``restarting``.
    leaving_states: dict[str, str]
    #: Restarts waiting for a server to register again, by id.
    rejoin_waiters: dict[str, list[Deferred[int]]]
    rejoin_timeout: float = REJOIN_TIMEOUT

    #: The master's: call a member over its link (errors logged, not raised).
    _call: Callable[..., Deferred[Any]]
    #: The master's: relay an operator command to a member.
    server_command: Callable[[str, str, dict[str, Any], float], Deferred[Any]]

    def leaving(self, server_id: str, grace: float, link: object = None) -> Deferred[str]:
        """Publish that ``server_id`` leaves; fires with the state once all answered.
        Asked over a ``link`` that is not the member's (a twin the master refused),
        nothing is published and the answer is ``""``."""
        member = self.members.get(server_id)
        if link is not None and (member is None or member.mind is not link):
            return succeed("")
        info = member.info if member is not None else self.declared.get(server_id)
        state = "restarting" if server_id in self.restarting else "draining"
        if info is None:
            return succeed(state)
        self.leaving_states[server_id] = state
        log.info("server {server} is {state}", server=server_id, state=state)
        payload = pack_plain({"event": state, "server": info.to_dict(), "settle": grace})
        acks = [
            self._call(other, "membership", payload)
            for other in list(self.members)
            if other != server_id
        ]
        done = DeferredList(acks, consumeErrors=True)
        return done.addCallback(lambda _: state)

    def drain(self, server_id: str, grace: float | None) -> Deferred[dict[str, Any]]:
        """Drain ``server_id`` and stop it for good; its drain report once it has left."""
        if self.stopping:
            raise CommandRefused("the cluster is stopping")
        if server_id not in self.members:
            raise CommandRefused(f"server {server_id[:80]!r} is not registered with the master")
        self.removing.add(server_id)
        gone: Deferred[None] = Deferred()
        self.departures.setdefault(server_id, []).append(gone)
        bound = (grace if grace is not None else self.stop_timeout) + self.stop_timeout
        if self.supervisor.spec(server_id) is not None:
            self.supervisor.expect_exit(server_id, bound)  # no restart of it
        args: dict[str, Any] = {} if grace is None else {"grace": grace}
        d = self.server_command(server_id, "drain", args, bound)

        def left(report: dict[str, Any]) -> Deferred[dict[str, Any]]:
            return gone.addCallback(lambda _: report)

        def refused(failure: Failure) -> Failure:
            self.removing.discard(server_id)
            if gone in self.departures.get(server_id, []):
                self.departures[server_id].remove(gone)
            return failure

        return d.addCallbacks(left, refused)

    def restart_rolling(self, server_type: str) -> Deferred[list[dict[str, Any]]]:
        """Restart every server of ``server_type``, one by one; a row per server."""
        if self.stopping:
            raise CommandRefused("the cluster is stopping")
        ids = [info.id for info in self.declared.values() if info.type == server_type]
        if not ids:
            types = sorted({info.type for info in self.declared.values()})
            raise CommandRefused(
                f"no server of type {server_type[:80]!r} (types: {', '.join(types) or 'none'})"
            )
        log.info("rolling restart of {type}: {ids}", type=server_type, ids=", ".join(ids))
        return _one_by_one(ids, self._restart_row)

    def _restart_row(self, server_id: str) -> Deferred[dict[str, Any]]:
        d = self.restart_and_wait(server_id)
        return d.addCallback(lambda pid: {"id": server_id, "pid": pid})

    def restart_and_wait(self, server_id: str) -> Deferred[int]:
        """SIGTERM a server the master started (it drains), spawn it again, and fire with
        its pid once it has registered again (CommandRefused after rejoin_timeout)."""
        if self.supervisor.spec(server_id) is None:
            raise CommandRefused(f"server {server_id!r} was not started by this master")
        self.restarting.add(server_id)
        d = self.supervisor.restart(server_id)
        d.addCallback(self._rejoined, server_id)

        def done(result: Any) -> Any:
            self.restarting.discard(server_id)
            return result

        return d.addBoth(done)

    def _rejoined(self, pid: int, server_id: str) -> Deferred[int] | int:
        member = self.members.get(server_id)
        if member is not None and member.pid == pid:
            return self._serving(pid, server_id)
        d: Deferred[int] = Deferred()
        self.rejoin_waiters.setdefault(server_id, []).append(d)

        def too_late(_: object, timeout: float) -> None:
            self.rejoin_waiters.get(server_id, []).remove(d)
            raise CommandRefused(
                f"server {server_id} (pid {pid}) did not register again within {timeout:g}s"
            )

        d.addTimeout(self.rejoin_timeout, self.reactor, onTimeoutCancel=too_late)
        return d.addCallback(self._serving, server_id)

    def _serving(self, pid: int, server_id: str) -> int:
        log.info("server {server} serves again (pid {pid})", server=server_id, pid=pid)
        return pid

    def joined(self, server_id: str, pid: int) -> None:
        """``server_id`` registered (the master says so): a restart waiting for it ends."""
        for waiter in self.rejoin_waiters.pop(server_id, []):
            waiter.callback(pid)


def _one_by_one(
    ids: Iterable[str], step: Callable[[str], Deferred[dict[str, Any]]]
) -> Deferred[list[dict[str, Any]]]:
    """``step(id)`` for each id in turn, each once the previous one has fired; the rows.
    The first failure stops the run (the servers after it are left alone)."""
    pending = list(ids)
    rows: list[dict[str, Any]] = []

    def next_one(row: dict[str, Any] | None = None) -> Deferred[list[dict[str, Any]]] | list[Any]:
        if row is not None:
            rows.append(row)
        if not pending:
            return rows
        return step(pending.pop(0)).addCallback(next_one)

    return succeed(None).addCallback(next_one)
