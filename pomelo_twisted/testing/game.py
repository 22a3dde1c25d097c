"""A whole game in memory: every server of ``servers.json`` on one Clock, no sockets.

The servers run as in standalone mode (in-process RPC), listeners are recorded
by a ``MemoryReactorClock`` instead of bound, and clients are the real Python
client joined to a frontend's agents through an iosim pump::

    game = GameHarness("example_game")
    alice = game.connect()
    assert alice.call("connector.entryHandler.entry", {"uid": "alice"})["code"] == 200
    game.stop()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from ..acceptors import AgentPool, TCPFactory
from ..app.application import Application
from ..app.build import StandaloneService, build_standalone
from ..app.components import ConnectorComponent
from ..gameconfig import ServerInfo
from ..interfaces import IServerReactor
from ..tracing import TracingSetup
from .memory import MemoryConnection, MemoryServer, NoResponseYet

__all__ = ["GameConnection", "GameHarness"]


class GameConnection(MemoryConnection):
    """A client of a :class:`GameHarness`: delivering also runs in-process RPC hops."""

    server: _FrontendServer

    def flush(self) -> None:
        """Deliver bytes and RPC calls until nothing is due at the current time."""
        self.server.harness.settle()


class _FrontendServer(MemoryServer):
    """A MemoryServer over an existing frontend's agents."""

    connection_class = GameConnection

    def __init__(self, harness: GameHarness, agents: AgentPool) -> None:
        self.clock = harness.clock
        self.agents = agents
        self.factory = TCPFactory(agents)
        self.harness = harness


class GameHarness:
    """Starts every server of the game at ``base_dir`` in memory and connects clients."""

    def __init__(
        self,
        base_dir: Path | str,
        env: str = "development",
        *,
        settings: dict[str, Any] | None = None,
        reactor: MemoryReactorClock | None = None,
        overrides: Callable[[ServerInfo], Mapping[str, Any]] | None = None,
        tracing: TracingSetup | None = None,
    ) -> None:
        """``reactor``: the clock to run on (a new one by default; give one when a fake
        such as a key-value store must share it); ``overrides(server)``: per-server
        settings, as for :func:`~pomelo_twisted.app.build.build_standalone`; ``tracing``:
        trace the servers (:mod:`pomelo_twisted.tracing`)."""
        self.reactor = reactor if reactor is not None else MemoryReactorClock()
        self.clock = self.reactor
        self.connections: list[GameConnection] = []
        # MemoryReactorClock lacks only IReactorProcess, which a standalone game never uses.
        self.service: StandaloneService = build_standalone(
            cast(IServerReactor, self.reactor),
            base_dir,
            env,
            settings=settings,
            overrides=overrides,
            tracing=tracing,
        )
        failures: list[Failure] = []
        self.service.all_started.addErrback(failures.append)
        self.service.startService()
        self.settle()
        if failures:
            failures[0].raiseException()
        if not self.service.all_started.called:
            raise NoResponseYet("the game did not finish starting")

    @property
    def apps(self) -> dict[str, Application]:
        """Every server's Application, by server id."""
        return {app.server_id: app for app in self.service.apps}

    def app(self, server_id: str) -> Application:
        """One server's Application."""
        return self.apps[server_id]

    def settle(self) -> None:
        """Run everything due now: client bytes, RPC hops, zero-delay calls."""
        for _ in range(10_000):
            for conn in self.connections:
                conn.pump.flush()
            due = [c for c in self.clock.getDelayedCalls() if c.getTime() <= self.clock.seconds()]
            if not due:
                return
            self.clock.advance(0)
        raise RuntimeError("the game did not settle: something reschedules itself at once")

    def advance(self, seconds: float) -> None:
        """Move the clock forward, then settle."""
        self.clock.advance(seconds)
        self.settle()

    def connect(self, frontend_id: str | None = None, user: Any = None) -> GameConnection:
        """A handshaken client of ``frontend_id`` (default: the first frontend)."""
        frontends = [a for a in self.service.apps if a.server.frontend]
        if frontend_id is not None:
            frontends = [a for a in frontends if a.server_id == frontend_id]
        if not frontends:
            raise LookupError(f"no frontend {frontend_id or ''} in this game")
        connector = frontends[0].components["connector"]
        assert isinstance(connector, ConnectorComponent) and connector.agents is not None
        server = _FrontendServer(self, connector.agents)
        game_conn = server.connect(user=user, handshake=False)
        assert isinstance(game_conn, GameConnection)
        self.connections.append(game_conn)
        outcome: list[Any] = []
        game_conn.client.ready.addBoth(outcome.append)
        self.settle()
        if not outcome:
            raise NoResponseYet("the handshake did not complete")
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        return game_conn

    def bot_connector(self, frontend_id: str | None = None) -> Callable[..., Deferred[Any]]:
        """A ``connector`` for :class:`pomelo_twisted.bots.Runner`: each bot is a client
        of this game in memory (run the runner on :attr:`clock`, then :meth:`advance`)."""

        def connect(reactor: IServerReactor, target: str, **options: Any) -> Deferred[Any]:
            return succeed(self.connect(frontend_id, user=options.get("user")).client)

        return connect

    def stop(self) -> None:
        """Stop every server (frontends close their clients) and settle."""
        self.service.stopService()
        self.settle()
