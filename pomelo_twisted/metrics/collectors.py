"""What the framework counts anyway, read when Prometheus scrapes (no hot-path cost).

:class:`FrameworkCollector` turns a server's own counters into metric families at
scrape time: the frontend's connections (:class:`~pomelo_twisted.agent.ConnectionMetrics`:
opened, open, closed by reason, slow consumers, refused by cap, rate-limited requests,
dropped packages and responses), the bytes waiting in send queues, the sessions and the
pushes written (:class:`~pomelo_twisted.session.service.SessionService`), and over a
network RPC transport each peer's link state, circuit breaker state (0 closed,
1 half-open, 2 open) and call counters (:class:`~pomelo_twisted.rpc.RpcCounters`: these
also count calls refused before they were sent, which the RPC hooks never see).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..acceptors import AgentPool
from ..agent.metrics import CloseReason
from ..interfaces import INetworkRpcTransport, IRpcTransport
from ..rpc.breaker import CLOSED, HALF_OPEN, OPEN, BreakerBoard
from ..session.service import SessionService

__all__ = ["BREAKER_STATES", "FrameworkCollector"]

#: The value of ``pomelo_rpc_breaker_state`` for each breaker state.
BREAKER_STATES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

Family = CounterMetricFamily | GaugeMetricFamily
Maker = Callable[..., Family]
"""``FrameworkCollector._counter`` or ``._gauge``: ``make(name, doc, labels=None)``."""


class FrameworkCollector(Collector):
    """A server's framework counters as metric families (see the module docstring).

    ``agents`` gives the frontend's :class:`AgentPool` once its connector has built it
    (None before, and always on a backend)."""

    def __init__(
        self,
        server: tuple[str, str],
        agents: Callable[[], AgentPool | None],
        sessions: SessionService | None,
        transport: IRpcTransport,
    ) -> None:
        self.server = list(server)
        self.agents = agents
        self.sessions = sessions
        self.transport = transport

    def _counter(self, name: str, doc: str, labels: list[str] | None = None) -> Family:
        return CounterMetricFamily(name, doc, labels=["server_id", "server_type", *(labels or [])])

    def _gauge(self, name: str, doc: str, labels: list[str] | None = None) -> Family:
        return GaugeMetricFamily(name, doc, labels=["server_id", "server_type", *(labels or [])])

    def _one(self, make: Maker, name: str, doc: str, value: float) -> Family:
        """A family of one sample: this server's ``value``."""
        family = make(name, doc)
        family.add_metric(self.server, value)
        return family

    def _by(
        self, make: Maker, name: str, doc: str, label: str, values: Iterable[tuple[str, float]]
    ) -> Family:
        """A family of one sample per ``label`` value, from ``(label value, value)`` pairs."""
        family = make(name, doc, [label])
        for key, value in values:
            family.add_metric([*self.server, key], value)
        return family

    def collect(self) -> Iterator[Family]:
        """Every family, read now."""
        pool = self.agents()
        if pool is not None:
            yield from self._connections(pool)
        if self.sessions is not None:
            yield from self._sessions(self.sessions)
        if INetworkRpcTransport.providedBy(self.transport):
            yield from self._peers()

    def _connections(self, pool: AgentPool) -> Iterator[Family]:
        counts = pool.metrics
        one, by, counter = self._one, self._by, self._counter
        yield one(
            self._gauge,
            "pomelo_connections_open",
            "Client connections open now.",
            counts.connections_open,
        )
        yield one(
            counter,
            "pomelo_connections_opened",
            "Client connections opened.",
            counts.connections_opened,
        )
        yield by(
            counter,
            "pomelo_connections_closed",
            "Client connections closed, by reason.",
            "reason",
            sorted(counts.closed.items()),
        )
        yield one(
            counter,
            "pomelo_slow_consumer_closes",
            "Client connections closed because their send queue passed its limit.",
            counts.closed.get(CloseReason.SLOW_CONSUMER, 0),
        )
        yield by(
            counter,
            "pomelo_connections_refused",
            "Client connections refused as they were accepted, by cap.",
            "cap",
            sorted(counts.refused.items()),
        )
        yield one(
            counter,
            "pomelo_rate_limited_requests",
            "Client requests refused by the connection's rate limit (answered 429).",
            counts.rate_limited,
        )
        yield by(
            counter,
            "pomelo_packages_dropped",
            "Client packages ignored by the protocol state, by reason.",
            "reason",
            sorted(counts.dropped.items()),
        )
        yield one(
            counter,
            "pomelo_responses_dropped",
            "Responses not sent because their connection had closed.",
            counts.responses_dropped,
        )
        yield one(
            counter,
            "pomelo_ordering_timeouts",
            "Requests and notifies that held their connection's order past order_timeout.",
            counts.ordering_timeouts,
        )
        yield one(
            counter,
            "pomelo_late_answers",
            "Answers dropped because their request had been answered 504 by the order.",
            counts.late_answers,
        )
        yield one(
            self._gauge,
            "pomelo_send_queue_bytes",
            "Bytes waiting in the send queues of client connections.",
            sum(a.pending_bytes for a in list(pool.agents.values())),
        )

    def _sessions(self, sessions: SessionService) -> Iterator[Family]:
        yield self._one(
            self._gauge, "pomelo_sessions", "Client sessions of this frontend.", len(sessions)
        )
        yield self._one(
            self._counter,
            "pomelo_pushes",
            "Pushes written to client connections.",
            sessions.pushes_sent,
        )
        yield self._one(
            self._counter,
            "pomelo_push_bytes",
            "Bytes of the pushes written to client connections.",
            sessions.push_bytes_sent,
        )

    def _peers(self) -> Iterator[Family]:
        transport = self.transport
        states = transport.peers()
        yield self._by(
            self._gauge,
            "pomelo_rpc_peer_up",
            "1 when the RPC link to the peer is up, else 0.",
            "peer",
            ((peer, 1 if state == "up" else 0) for peer, state in states.items()),
        )
        board = getattr(transport, "breakers", None)
        if isinstance(board, BreakerBoard):
            yield self._by(
                self._gauge,
                "pomelo_rpc_breaker_state",
                "The circuit breaker of each peer: 0 closed, 1 half-open, 2 open.",
                "peer",
                ((peer, BREAKER_STATES.get(state, 2)) for peer, state in board.states().items()),
            )
        counters_of = getattr(transport, "counters", None)
        if not callable(counters_of):
            return
        counters = {peer: counters_of(peer) for peer in states}
        for field, doc in (
            ("calls", "RPCs to the peer, sent or refused before sending."),
            ("failures", "RPCs to the peer that failed (any error but a deadline)."),
            ("timeouts", "RPCs to the peer whose deadline passed."),
            ("late", "Answers from the peer that came after their call had ended."),
            ("expired", "RPCs not sent: their request's deadline had passed."),
        ):
            yield self._by(
                self._counter,
                f"pomelo_rpc_peer_{field}",
                doc,
                "peer",
                ((peer, getattr(count, field)) for peer, count in counters.items()),
            )
