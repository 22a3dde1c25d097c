"""Fixtures for the REPL tests: an in-memory connector and a loopback echo server."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import connectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from pomelo_twisted.acceptors import AcceptorService, AgentPool
from pomelo_twisted.client import PomeloClient
from pomelo_twisted.protocol import RouteDictionary
from pomelo_twisted.repl import ReplSession
from pomelo_twisted.testing import EchoHandler, MemoryConnection, MemoryServer, echo_dictionary

ECHO = "connector.entryHandler.echo"
PUSH = "connector.entryHandler.push"
KICK = "connector.entryHandler.kick"
FAIL = "connector.entryHandler.fail"
ERROR = "connector.entryHandler.error"
REFUSED = "tcp:127.0.0.1:1"


class MemoryConnector:
    """A stand-in for ``client.connect``: every target joins a :class:`MemoryServer`.

    ``REFUSED`` fails like a refused connection; ``calls`` records what was asked.
    """

    def __init__(self, dictionary: RouteDictionary | None = None, *, plain: bool = False) -> None:
        self.clock = Clock()
        self.handler = EchoHandler(self.clock)
        self.server = MemoryServer(
            self.handler, clock=self.clock, dictionary=None if plain else echo_dictionary()
        )
        self.connections: list[MemoryConnection] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, reactor: Any, target: str, **kwargs: Any) -> Deferred[PomeloClient]:
        self.calls.append((target, kwargs))
        if target == REFUSED:
            return fail(ConnectionRefusedError("nothing listens"))
        conn = self.server.connect(user=kwargs.get("user"))
        self.connections.append(conn)
        return succeed(conn.client)

    @property
    def conn(self) -> MemoryConnection:
        """The latest connection."""
        return self.connections[-1]

    def settle(self, rounds: int = 5) -> None:
        """Deliver every byte and run what is due now, until things are quiet."""
        for _ in range(rounds):
            for conn in self.connections:
                conn.flush()
            self.clock.advance(0)


def memory_session(
    connector: MemoryConnector | None = None, **kwargs: Any
) -> tuple[ReplSession, MemoryConnector, list[str]]:
    """A session on a memory connector, and the list its output goes to."""
    connector = connector if connector is not None else MemoryConnector()
    lines: list[str] = []
    session = ReplSession(connector.clock, lines.append, connect=connector, **kwargs)
    return session, connector, lines


class LoopbackEchoServer:
    """The echo server on an ephemeral 127.0.0.1 port; ``stop`` waits for its connections."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.handler = EchoHandler(reactor)
        agents = AgentPool(self.handler, reactor, dictionary=echo_dictionary())
        self.service = AcceptorService(reactor, "tcp:0:interface=127.0.0.1", agents)
        self.port = 0
        self._open = 0
        self._idle: list[Deferred[None]] = []
        build = self.service.factory.buildProtocol

        def build_tracked(addr: Any) -> Any:
            proto = build(addr)
            assert proto is not None
            lost = proto.connectionLost

            def connection_lost(reason: Failure = connectionDone) -> None:
                try:
                    lost(reason)
                finally:
                    self._gone()

            proto.connectionLost = connection_lost  # type: ignore[method-assign]
            self._open += 1
            return proto

        self.service.factory.buildProtocol = build_tracked  # type: ignore[method-assign]

    async def start(self) -> LoopbackEchoServer:
        """Listen; returns self once the port is known."""
        self.service.startService()
        port: IListeningPort = await self.service.listening
        self.port = port.getHost().port  # type: ignore[attr-defined]
        return self

    def _gone(self) -> None:
        self._open -= 1
        if self._open == 0:
            waiters, self._idle = self._idle, []
            for d in waiters:
                d.callback(None)

    async def stop(self) -> None:
        """Stop listening and wait (at most 5 s) until every server-side connection is gone."""
        await self.service.stopService()
        if self._open:
            idle: Deferred[None] = Deferred()
            self._idle.append(idle)
            await idle.addTimeout(5.0, self.reactor)
