"""Client ↔ server in memory: the real agent and the real client, no sockets, one Clock.

Bytes cross an :mod:`twisted.test.iosim` pump, so every test is deterministic
and runs the same under trial and pytest::

    server = MemoryServer(EchoHandler(clock), clock=clock)
    conn = server.connect()
    assert conn.call("connector.entryHandler.echo", {"a": 1}) == {"a": 1}
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connect

from ..acceptors import AgentPool, TCPFactory
from ..agent import Agent, AgentConfig, ConnectionMetrics
from ..client import PomeloClient, PomeloClientProtocol
from ..interfaces import IConnectionHandler, ISerializer
from ..protocol import RouteDictionary

__all__ = ["MemoryConnection", "MemoryServer", "NoResponseYet"]


class NoResponseYet(AssertionError):
    """``call`` found no response after flushing: advance the clock first."""


class MemoryConnection:
    """One client connected to a :class:`MemoryServer`."""

    def __init__(self, server: MemoryServer, client: PomeloClient, pump: IOPump) -> None:
        self.server = server
        self.client = client
        self.pump = pump
        self.pushes: list[tuple[str, Any]] = []
        self.kicks: list[str] = []
        client.on_kick(self.kicks.append)

    @property
    def agent(self) -> Agent:
        """The server-side agent of this connection."""
        agent = getattr(self.pump.server, "agent", None)
        assert isinstance(agent, Agent), "no agent: the connection was not accepted"
        return agent

    @property
    def clock(self) -> Clock:
        """The clock both sides run on."""
        return self.server.clock

    def flush(self) -> None:
        """Deliver bytes both ways until neither side has anything to send."""
        self.pump.flush()

    def advance(self, seconds: float) -> None:
        """Move the clock forward, then deliver whatever that produced."""
        self.clock.advance(seconds)
        self.flush()

    def request(self, route: str, msg: Any = None) -> Deferred[Any]:
        """Send a request and deliver it; the Deferred fires once the response is delivered."""
        d = self.client.request(route, {} if msg is None else msg)
        self.flush()
        return d

    def call(self, route: str, msg: Any = None) -> Any:
        """Request and return the response body (raise :class:`NoResponseYet` if none yet)."""
        results: list[Any] = []
        failures: list[Failure] = []
        self.request(route, msg).addCallbacks(results.append, failures.append)
        if failures:
            failures[0].raiseException()
        if not results:
            raise NoResponseYet(f"no response to {route} yet; advance the clock")
        return results[0]

    def notify(self, route: str, msg: Any = None) -> None:
        """Send a notify and deliver it."""
        self.client.notify(route, {} if msg is None else msg)
        self.flush()

    def collect(self, route: str) -> list[Any]:
        """Record every push on ``route``; returns the (live) list."""
        received: list[Any] = []
        self.client.on(route, received.append)
        return received

    def disconnect(self) -> None:
        """Close from the client side and deliver the close."""
        self.client.close()
        self.flush()


class MemoryServer:
    """A frontend's agents for in-memory clients; each :meth:`connect` is one client."""

    connection_class: type[MemoryConnection] = MemoryConnection

    def __init__(
        self,
        handler: IConnectionHandler,
        *,
        clock: Clock | None = None,
        config: AgentConfig | None = None,
        dictionary: RouteDictionary | None = None,
        serializer: ISerializer | None = None,
    ) -> None:
        self.clock = clock if clock is not None else Clock()
        self.agents = AgentPool(
            handler,
            self.clock,
            serializer=serializer,
            config=config,
            dictionary=dictionary,
        )
        self.factory = TCPFactory(self.agents)

    @property
    def metrics(self) -> ConnectionMetrics:
        """Counters of every connection of this server."""
        return self.agents.metrics

    def connect(self, user: Any = None, *, handshake: bool = True) -> MemoryConnection:
        """A new client; with ``handshake`` (the default) handshake + ack are done on return.

        A refused handshake raises the client's ``HandshakeRejected``.
        """
        client = PomeloClient(self.clock, user=user)
        client_protocol = PomeloClientProtocol(client)
        server_protocol = self.factory.buildProtocol(None)
        pump = connect(
            server_protocol,
            FakeTransport(server_protocol, isServer=True),
            client_protocol,
            FakeTransport(client_protocol, isServer=False),
            greet=False,
        )
        conn = self.connection_class(self, client, pump)
        if handshake:
            outcome: list[Any] = []
            client.ready.addBoth(outcome.append)
            conn.flush()
            if not outcome:
                raise NoResponseYet("the handshake did not complete")
            if isinstance(outcome[0], Failure):
                outcome[0].raiseException()
        return conn
