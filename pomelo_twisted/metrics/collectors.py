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

from collections.abc import Callable, Iterator

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
        server = self.server
        counts = pool.metrics
        family = self._gauge("pomelo_connections_open", "Client connections open now.")
        family.add_metric(server, counts.connections_open)
        yield family
        family = self._counter("pomelo_connections_opened", "Client connections opened.")
        family.add_metric(server, counts.connections_opened)
        yield family
        family = self._counter(
            "pomelo_connections_closed", "Client connections closed, by reason.", ["reason"]
        )
        for reason, count in sorted(counts.closed.items()):
            family.add_metric([*server, reason], count)
        yield family
        family = self._counter(
            "pomelo_slow_consumer_closes",
            "Client connections closed because their send queue passed its limit.",
        )
        family.add_metric(server, counts.closed.get(CloseReason.SLOW_CONSUMER, 0))
        yield family
        family = self._counter(
            "pomelo_connections_refused",
            "Client connections refused as they were accepted, by cap.",
            ["cap"],
        )
        for cap, count in sorted(counts.refused.items()):
            family.add_metric([*server, cap], count)
        yield family
        family = self._counter(
            "pomelo_rate_limited_requests",
            "Client requests refused by the connection's rate limit (answered 429).",
        )
        family.add_metric(server, counts.rate_limited)
        yield family
        family = self._counter(
            "pomelo_packages_dropped",
            "Client packages ignored by the protocol state, by reason.",
            ["reason"],
        )
        for reason, count in sorted(counts.dropped.items()):
            family.add_metric([*server, reason], count)
        yield family
        family = self._counter(
            "pomelo_responses_dropped",
            "Responses not sent because their connection had closed.",
        )
        family.add_metric(server, counts.responses_dropped)
        yield family
        family = self._counter(
            "pomelo_ordering_timeouts",
            "Requests and notifies that held their connection's order past order_timeout.",
        )
        family.add_metric(server, counts.ordering_timeouts)
        yield family
        family = self._counter(
            "pomelo_late_answers",
            "Answers dropped because their request had been answered 504 by the order.",
        )
        family.add_metric(server, counts.late_answers)
        yield family
        family = self._gauge(
            "pomelo_send_queue_bytes",
            "Bytes waiting in the send queues of client connections.",
        )
        family.add_metric(server, sum(a.pending_bytes for a in list(pool.agents.values())))
        yield family

    def _sessions(self, sessions: SessionService) -> Iterator[Family]:
        server = self.server
        family = self._gauge("pomelo_sessions", "Client sessions of this frontend.")
        family.add_metric(server, len(sessions))
        yield family
        family = self._counter("pomelo_pushes", "Pushes written to client connections.")
        family.add_metric(server, sessions.pushes_sent)
        yield family
        family = self._counter(
            "pomelo_push_bytes", "Bytes of the pushes written to client connections."
        )
        family.add_metric(server, sessions.push_bytes_sent)
        yield family

    def _peers(self) -> Iterator[Family]:
        server = self.server
        transport = self.transport
        states = transport.peers()
        family = self._gauge(
            "pomelo_rpc_peer_up", "1 when the RPC link to the peer is up, else 0.", ["peer"]
        )
        for peer, state in states.items():
            family.add_metric([*server, peer], 1 if state == "up" else 0)
        yield family
        board = getattr(transport, "breakers", None)
        if isinstance(board, BreakerBoard):
            family = self._gauge(
                "pomelo_rpc_breaker_state",
                "The circuit breaker of each peer: 0 closed, 1 half-open, 2 open.",
                ["peer"],
            )
            for peer, state in board.states().items():
                family.add_metric([*server, peer], BREAKER_STATES.get(state, 2))
            yield family
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
            family = self._counter(f"pomelo_rpc_peer_{field}", doc, ["peer"])
            for peer, count in counters.items():
                family.add_metric([*server, peer], getattr(count, field))
            yield family
