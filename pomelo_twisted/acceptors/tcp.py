"""Raw TCP (and TLS) client connections: a stream of packages.

:class:`AgentPool` holds the live agents of one listener and what they share
(handler, clock, serializer, limits, dictionary, metrics, deadline scheduler); it
creates one :class:`~pomelo_twisted.agent.Agent` per connection. The WebSocket and
hybrid acceptors build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IAddress, IConsumer, IPushProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from ..agent import Agent, AgentConfig, CloseReason, ConnectionMetrics
from ..agent.ordering import order_maker
from ..deadlines import DeadlineScheduler
from ..eagerwrite import Send, socket_send, write_eagerly
from ..interfaces import (
    IAgentLink,
    IConnectionHandler,
    IHandshakeNegotiator,
    ISerializer,
    ISlicedLink,
)
from ..protocol import RouteDictionary
from ..serializers import JsonSerializer

__all__ = ["AgentPool", "PomeloTCPProtocol", "TCPFactory", "format_address"]


def format_address(address: IAddress) -> str:
    """``host:port`` for IP addresses, ``repr`` otherwise."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"{host}:{port}"
    return repr(address)


class AgentPool:
    """The live agents of one listener, with their config, metrics and deadline scheduler.

    ``new_agent`` makes (and starts) one per accepted connection, ``agent_gone`` forgets
    a closed one, ``close_all`` closes them all and waits until they are gone. ``admit``
    and ``release`` hold the listener's connection caps (a factory refuses a connection
    ``admit`` turns down by building no protocol: Twisted closes it at once).
    """

    def __init__(
        self,
        handler: IConnectionHandler,
        clock: IReactorTime,
        *,
        serializer: ISerializer | None = None,
        config: AgentConfig | None = None,
        dictionary: RouteDictionary | None = None,
        metrics: ConnectionMetrics | None = None,
        negotiators: Sequence[IHandshakeNegotiator] = (),
    ) -> None:
        self.handler = handler
        self.clock = clock
        self.serializer = serializer if serializer is not None else JsonSerializer()
        self.config = config if config is not None else AgentConfig()
        self.dictionary = dictionary
        self.metrics = metrics if metrics is not None else ConnectionMetrics()
        self.agents: dict[int, Agent] = {}
        self.deadlines = DeadlineScheduler(clock)
        """The handshake and idle timeouts of every connection, under one DelayedCall."""
        self.push_format = (self.serializer, dictionary if self.config.use_dict else None)
        """Shared by the agents: a push is encoded once for all of them."""
        self.negotiators = tuple(negotiators)
        """What a client's handshake decides about its connection, in order."""
        self.orders = order_maker(clock, self.deadlines, self.config, self.metrics)
        """Makes each connection's per-user order when it first needs one (shared)."""
        self.push_formats: dict[Hashable, Hashable] = {}
        """The push formats handshakes negotiated apart from the default, one object each."""
        self._next_sid = 1
        self._drain_waiters: list[Deferred[None]] = []
        self.connections = 0
        """Accepted connections not yet lost (sniffing ones included)."""
        self._per_host: dict[str, int] = {}

    def admit(self, address: IAddress | None) -> bool:
        """Count a new connection from ``address``; False (counted as refused) over a cap."""
        config = self.config
        if self.connections >= config.max_connections:
            self.metrics.refused["connection cap"] += 1
            return False
        host = getattr(address, "host", None)
        if host is not None:
            count = self._per_host.get(host, 0)
            if count >= config.max_connections_per_ip:
                self.metrics.refused["per-IP connection cap"] += 1
                return False
            self._per_host[host] = count + 1
        self.connections += 1
        return True

    def release(self, address: IAddress | None) -> None:
        """Forget a connection ``admit`` counted."""
        self.connections -= 1
        host = getattr(address, "host", None)
        if host is not None:
            count = self._per_host.get(host, 0) - 1
            if count > 0:
                self._per_host[host] = count
            else:
                self._per_host.pop(host, None)

    def new_agent(self, link: IAgentLink, accepted_at: float | None = None) -> Agent:
        """A started agent for a new connection, registered until it closes.

        ``accepted_at`` is the clock time the connection was accepted when phases came
        before the agent (the hybrid sniff, a WebSocket upgrade): the handshake deadline
        counts from it, so accept to ack is one ``handshake_timeout``, not one per phase.
        """
        sid = self._next_sid
        self._next_sid += 1
        agent = Agent(
            link,
            self.handler,
            clock=self.clock,
            serializer=self.serializer,
            sid=sid,
            config=self.config,
            dictionary=self.dictionary,
            metrics=self.metrics,
            deadlines=self.deadlines,
            push_format=self.push_format,
            negotiators=self.negotiators,
            push_formats=self.push_formats,
            orders=self.orders,
        )
        self.agents[sid] = agent
        agent.start(accepted_at)
        return agent

    def agent_gone(self, agent: Agent) -> None:
        """Forget a closed agent."""
        self.agents.pop(agent.sid, None)
        if not self.agents and self._drain_waiters:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def close_all(self, reason: str = CloseReason.SERVER_CLOSED) -> Deferred[None]:
        """Close every live connection (server shutdown).

        The Deferred fires once every connection is gone; each is aborted at the
        latest ``close_grace`` seconds after its graceful close began.
        """
        for agent in list(self.agents.values()):
            agent.close(reason)
        if not self.agents:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._drain_waiters.append(waiter)
        return waiter


@implementer(ISlicedLink)
class PomeloTCPProtocol(Protocol):
    """One raw TCP connection: bytes in to the agent, packages out to the transport.

    What the agent writes while it handles one read (the responses to the requests of
    that read) goes to the transport in one ``write``: a stream needs no message
    boundaries, and a single write is much cheaper than one per package.
    """

    agent: Agent | None = None
    agents: AgentPool
    admitted: IAddress | None = None
    """The address its factory counted with ``AgentPool.admit`` (released when lost)."""
    _counted = False
    _batch: list[bytes] | None = None
    _socket_send: Send | None = None

    def __init__(self, agents: AgentPool, accepted_at: float | None = None) -> None:
        self.agents = agents
        self.accepted_at = accepted_at
        """When the connection was accepted, if before this protocol got it (hybrid)."""

    @property
    def peer(self) -> str:
        """The client's address."""
        assert self.transport is not None
        return format_address(self.transport.getPeer())

    def connectionMade(self) -> None:
        """Create the agent (which starts the handshake timer)."""
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        self._socket_send = socket_send(self.transport)
        self.agent = self.agents.new_agent(self, self.accepted_at)

    def dataReceived(self, data: bytes) -> None:
        """Feed the agent; what it writes meanwhile goes out in one write."""
        assert self.agent is not None
        batch: list[bytes] = []
        self._batch = batch
        try:
            self.agent.data_received(data)
        finally:
            self._batch = None
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[bytes]) -> None:
        """The packages of one read or slice, in one write."""
        write_eagerly(
            self.transport, self._socket_send, batch[0] if len(batch) == 1 else b"".join(batch)
        )

    def call_batched(self, f: Callable[[], None]) -> None:
        """Call ``f``; the packages written meanwhile go out in one write."""
        batch: list[bytes] = []
        self._batch = batch
        try:
            f()
        finally:
            self._batch = None
            if batch:
                self._write_batch(batch)

    def _flush(self, batch: list[bytes]) -> None:
        write_eagerly(
            self.transport, self._socket_send, batch[0] if len(batch) == 1 else b"".join(batch)
        )
        batch.clear()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """Tell the agent and forget it."""
        agent = self.agent
        if agent is not None:
            agent.connection_lost()
            self.agents.agent_gone(agent)
        if self._counted:
            self._counted = False
            self.agents.release(self.admitted)

    # IAgentLink
    def write(self, data: bytes) -> None:
        """Write one package (joined with the others of the same read)."""
        batch = self._batch
        if batch is not None:
            batch.append(data)
            return
        write_eagerly(self.transport, self._socket_send, data)

    def close(self) -> None:
        """Close once written bytes are sent."""
        assert self.transport is not None
        if self._batch:
            self._flush(self._batch)
        self.transport.loseConnection()

    def abort(self) -> None:
        """Close at once."""
        transport = self.transport
        if self._batch and transport is not None:
            # As if written before the abort (which discards them all the same).
            self._flush(self._batch)
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        elif transport is not None:
            transport.loseConnection()

    def pause_reading(self) -> None:
        """Stop reading from the socket (the agent has a slice left to handle)."""
        assert self.transport is not None
        cast(IPushProducer, self.transport).pauseProducing()

    def resume_reading(self) -> None:
        """Read from the socket again."""
        assert self.transport is not None
        cast(IPushProducer, self.transport).resumeProducing()

    def register_producer(self, producer: IPushProducer) -> None:
        """Register the agent's send queue as the transport's streaming producer."""
        assert self.transport is not None
        cast(IConsumer, self.transport).registerProducer(producer, True)


class TCPFactory(Factory):
    """The Twisted factory of a raw TCP/TLS listener."""

    def __init__(self, agents: AgentPool) -> None:
        self.agents = agents

    def buildProtocol(self, addr: IAddress | None) -> PomeloTCPProtocol | None:
        """One protocol per connection, sharing the agent pool; None over a cap."""
        if not self.agents.admit(addr):
            return None
        proto = PomeloTCPProtocol(self.agents)
        proto.factory = self
        proto.admitted, proto._counted = addr, True
        return proto
