"""The drain as a component of a cluster server: the ``drain`` command and SIGTERM.

:class:`DrainComponent` builds the steps of a :class:`~pomelo_twisted.drain.sequence.
DrainSequence` from its server: the connector's listener and agents (a frontend), the RPC
transport's calls in flight, the discovery's announcement (the master's ``leaving``),
and the state hand-off (``logs/<id>.handoff`` next to the server's log; the channels'
members, and each :class:`~pomelo_twisted.drain.interfaces.IStateHandoff` a game adds
with :meth:`DrainComponent.add_handoff`). At start it restores a fresh hand-off file.

Settings: ``drain_grace`` (seconds the requests in flight may take; default
:data:`~pomelo_twisted.drain.sequence.DRAIN_GRACE`), ``handoff_max_age`` (seconds a
hand-off file stays good; default :data:`~pomelo_twisted.drain.handoff.HANDOFF_MAX_AGE`),
``rpc_hold_limit`` (the longest this server holds its calls to a restarting peer; default
:data:`~pomelo_twisted.rpc.pbhold.HOLD_LIMIT`). Each must be a number of seconds, ``> 0``
(``drain_grace`` may be 0): a server started with another value fails naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ..errors import ConfigError
from ..interfaces import IComponent, IRpcTransport
from ..rpc.pbhold import HOLD_LIMIT
from ..servercommands import ServerCommandError, ServerCommands
from .handoff import (
    HANDOFF_MAX_AGE,
    ChannelsHandoff,
    read_handoff,
    restore_states,
    snapshot_states,
    write_handoff,
)
from .interfaces import IStateHandoff
from .sequence import DRAIN_GRACE, DrainSequence

__all__ = ["DrainComponent", "DrainedServer"]

log = Logger()


class DrainedServer(Protocol):
    """What a drain needs of its server (an Application; drain/ never imports app/)."""

    @property
    def server_id(self) -> str: ...

    @property
    def clock(self) -> IReactorTime: ...

    @property
    def rpc_transport(self) -> IRpcTransport: ...

    @property
    def base_dir(self) -> Path | None: ...

    @property
    def commands(self) -> ServerCommands: ...

    @property
    def channel_service(self) -> Any: ...

    @property
    def components(self) -> dict[str, Any]: ...

    def get(self, key: str, default: Any = None) -> Any: ...


def _no_announcement(grace: float) -> Deferred[str]:
    return succeed("")


@implementer(IComponent)
class DrainComponent:
    """Drains its server on the ``drain`` command or SIGTERM, then stops the process."""

    name = "drain"

    def __init__(
        self,
        app: DrainedServer,
        *,
        stop_process: Callable[[], object],
        announce: Callable[[float], Deferred[str]] = _no_announcement,
    ) -> None:
        self.app = app
        self.stop_process = stop_process
        #: Tells discovery this server leaves: ``announce(grace)`` fires with the state
        #: published (the master's ``leaving``; etcd's record state), ``""`` for none.
        self.announce = announce
        self.handoffs: list[IStateHandoff] = [ChannelsHandoff(app.channel_service)]
        self.sequence = DrainSequence(
            app.clock,
            app.server_id,
            close_listener=self.close_listener,
            announce=lambda grace: self.announce(grace),
            in_flight=self.in_flight,
            kick_all=self.kick_all,
            hand_off=self.hand_off,
            remaining=self.remaining,
        )
        #: The names of the states restored from the previous incarnation's hand-off.
        self.restored: list[str] = []
        #: The hand-off read at construction (before anything is served), by name.
        self.taken: dict[str, Any] = self._take_over()

    def add_handoff(self, handoff: IStateHandoff) -> None:
        """Hand ``handoff`` to the next incarnation too; its part of the previous
        incarnation's hand-off, if any, is restored now (add it from ``configure`` or an
        ``init`` hook, before it is used)."""
        self.handoffs.append(handoff)
        if handoff.name in self.taken:
            self.restored += restore_states([handoff], self.taken)

    def _take_over(self) -> dict[str, Any]:
        """Read the previous incarnation's fresh hand-off and restore the channels now:
        before the RPC port serves a single call (the component is built before the
        server starts)."""
        path = self.handoff_path
        max_age = self._seconds("handoff_max_age", HANDOFF_MAX_AGE)
        if path is None:
            return {}
        states = read_handoff(path, self.app.server_id, self.app.clock.seconds(), max_age)
        if states is None:
            return {}
        self.restored = restore_states(self.handoffs, states)
        log.info(
            "{server}: took over {names} from its previous incarnation",
            server=self.app.server_id,
            names=", ".join(sorted(states)) or "nothing",
        )
        return states

    @property
    def grace(self) -> float:
        """The ``drain_grace`` setting (seconds)."""
        return float(self.app.get("drain_grace", DRAIN_GRACE))

    @property
    def handoff_path(self) -> Path | None:
        """``logs/<id>.handoff`` of the game folder (None without one)."""
        base = self.app.base_dir
        return None if base is None else base / "logs" / f"{self.app.server_id}.handoff"

    # -- component --------------------------------------------------------------------

    def _seconds(self, key: str, default: float, zero: bool = False) -> float:
        value = self.app.get(key, default)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = float("nan")
        if not (seconds >= 0 if zero else seconds > 0):
            bound = "0 or more" if zero else "more than 0"
            raise ConfigError(
                f"server {self.app.server_id}: {key} must be {bound} seconds, not {value!r}"
            )
        return seconds

    def start(self) -> None:
        """Check the settings; serve the ``drain`` command."""
        self._seconds("drain_grace", DRAIN_GRACE, zero=True)
        limit = self._seconds("rpc_hold_limit", HOLD_LIMIT)
        holds = getattr(self.app.rpc_transport, "holds", None)
        if holds is not None:
            holds.limit = limit
        self.app.commands.register(
            "drain",
            self._command,
            "stop taking clients, finish what is in flight (grace=S), kick, stop",
        )

    def after_start(self) -> None:
        """Nothing."""

    def stop(self, force: bool) -> None:
        """Stop serving the command."""
        self.app.commands.unregister("drain")

    # -- drain --------------------------------------------------------------------------

    def _command(self, args: dict[str, Any]) -> Deferred[dict[str, Any]]:
        grace = args.get("grace", self.grace)
        try:
            grace = float(grace)
        except (TypeError, ValueError):
            raise ServerCommandError(f"drain: grace must be seconds, not {grace!r}") from None
        if not grace >= 0:
            raise ServerCommandError(f"drain: grace must be 0 or more seconds, not {grace!r}")
        return self.drain(grace)

    def drain(self, grace: float | None = None) -> Deferred[dict[str, Any]]:
        """Drain (once), then stop the process from the next turn; the drain report."""
        first = not self.sequence.started
        d = self.sequence.run(self.grace if grace is None else grace)
        if first:
            d.addCallback(self._stop)
        return d

    def _stop(self, report: dict[str, Any]) -> dict[str, Any]:
        self.app.clock.callLater(0, self.stop_process)
        return report

    # -- steps --------------------------------------------------------------------------

    def _agents(self) -> list[Any]:
        pool = getattr(self.app.components.get("connector"), "agents", None)
        return [] if pool is None else list(pool.agents.values())

    def close_listener(self) -> Deferred[Any] | None:
        """Stop listening for clients (a frontend); the connections stay."""
        acceptor = getattr(self.app.components.get("connector"), "acceptor", None)
        port = getattr(acceptor, "port", None)
        if acceptor is None or port is None:
            return None
        acceptor.port = None
        log.info("{server}: no longer accepting clients", server=self.app.server_id)
        result: Deferred[Any] | None = port.stopListening()
        return result

    def in_flight(self) -> int:
        """Client requests being handled here, plus calls this server made not answered."""
        requests = sum(agent.requests.admission.inflight for agent in self._agents())
        count = getattr(self.app.rpc_transport, "in_flight", None)
        return requests + (count() if count is not None else 0)

    def remaining(self) -> int:
        """Client connections still open, plus calls this server made not answered."""
        count = getattr(self.app.rpc_transport, "in_flight", None)
        return len(self._agents()) + (count() if count is not None else 0)

    def kick_all(self, reason: str) -> int:
        """Kick every client with ``reason``; how many."""
        agents = self._agents()
        for agent in agents:
            agent.kick(reason)
        return len(agents)

    def hand_off(self) -> int:
        """Write the states to the hand-off file; its size (0: nothing to hand off)."""
        path = self.handoff_path
        if path is None:
            return 0
        states = snapshot_states(self.handoffs)
        if not any(states.values()):
            return 0
        try:
            return write_handoff(path, self.app.server_id, states, self.app.clock.seconds())
        except OSError as exc:
            log.warn(
                "{server}: cannot write {path}: {why}",
                server=self.app.server_id,
                path=str(path),
                why=exc,
            )
            return 0
