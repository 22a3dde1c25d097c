"""Request and RPC metrics, recorded by the instruments' hooks.

:class:`RequestMetrics` (an :class:`~pomelo_twisted.interfaces.IRequestHooks`) counts a
frontend's client requests and notifies by route and outcome and times the requests;
:class:`RpcMetrics` (an :class:`~pomelo_twisted.interfaces.IRpcHooks`) counts and times
the calls a server makes, by peer and remote (``service.method``), and the calls it
serves. The series of one route (one peer and remote) are bound once, the first time it
is seen, and kept: a request costs two dict lookups, a clock read, one counter and one
histogram update. Routes answered 404 count as ``unknown``; past ``max_labels`` distinct
routes (pairs), new ones count as ``other``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Histogram
from twisted.python.failure import Failure
from zope.interface import implementer

from ..callcontext import CallContext
from ..interfaces import CallEnd, IAgent, IRequestHooks, IRpcHooks, RequestEnd
from .outcomes import ERROR, OK, TIMEOUT, call_outcome, request_outcome

__all__ = ["OTHER", "UNKNOWN_ROUTE", "RequestMetrics", "RpcMetrics", "Timer"]

Timer = Callable[[], float]
"""A clock for durations, in seconds (``time.perf_counter``; a test's ``Clock.seconds``)."""

#: The route label of requests for a route that does not exist (answered 404).
UNKNOWN_ROUTE = "unknown"
#: The label of routes (RPC peer and remote pairs) past ``max_labels``.
OTHER = "other"

_SERVER = ("server_id", "server_type")


class _Outcomes:
    """The counter children of one series by outcome, bound on first use."""

    __slots__ = ("_bind", "children")

    def __init__(self, bind: Callable[[str], Counter]) -> None:
        self._bind = bind
        self.children: dict[str, Counter] = {}

    def inc(self, outcome: str) -> None:
        child = self.children.get(outcome)
        if child is None:
            child = self.children[outcome] = self._bind(outcome)
        child.inc()


class _RouteSeries:
    """The series of one route: requests and notifies by outcome, request latency."""

    __slots__ = ("latency", "notifies", "requests")

    def __init__(self, metrics: RequestMetrics, route: str) -> None:
        labels = (*metrics.server, route)
        self.latency = metrics.latency.labels(*labels)
        self.requests = _Outcomes(partial(_bound, metrics.requests, labels))
        self.notifies = _Outcomes(partial(_bound, metrics.notifies, labels))


def _bound(metric: Counter, labels: Sequence[str], outcome: str) -> Counter:
    return metric.labels(*labels, outcome)


@implementer(IRequestHooks)
class RequestMetrics:
    """Client requests and notifies of a frontend, by route and outcome."""

    def __init__(
        self,
        registry: CollectorRegistry,
        server: tuple[str, str],
        timer: Timer,
        buckets: Sequence[float],
        max_labels: int,
    ) -> None:
        self.server = server
        self.timer = timer
        self.max_labels = max_labels
        self.requests = Counter(
            "pomelo_client_requests",
            "Client requests answered, by route and outcome (ok or the error code).",
            [*_SERVER, "route", "outcome"],
            registry=registry,
        )
        self.notifies = Counter(
            "pomelo_client_notifies",
            "Client notifies handled, by route and outcome (ok or the error code).",
            [*_SERVER, "route", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "pomelo_client_request_duration_seconds",
            "Seconds from a client request's arrival to its answer, by route.",
            [*_SERVER, "route"],
            buckets=buckets,
            registry=registry,
        )
        self._routes: dict[str, _RouteSeries] = {}

    def request_started(
        self, agent: IAgent, route: str, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        """Time the request; its end counts it (the context is left as it is)."""
        return context, partial(self._ended, route, notify, self.timer())

    def _ended(self, route: str, notify: bool, started: float, outcome: object) -> None:
        code = request_outcome(outcome)
        if code == "404":
            route = UNKNOWN_ROUTE
        series = self._routes.get(route)
        if series is None:
            series = self._series(route)
        if notify:
            series.notifies.inc(code)
        else:
            series.latency.observe(self.timer() - started)
            series.requests.inc(code)

    def _series(self, route: str) -> _RouteSeries:
        if len(self._routes) >= self.max_labels:
            route = OTHER
            found = self._routes.get(OTHER)
            if found is not None:
                return found
        series = self._routes[route] = _RouteSeries(self, route)
        return series


class _CallSeries:
    """The series of one peer and remote: calls by outcome and their latency."""

    __slots__ = ("error", "latency", "ok", "timeout")

    def __init__(self, calls: Counter, latency: Histogram, labels: tuple[str, ...]) -> None:
        self.latency = latency.labels(*labels)
        self.ok = calls.labels(*labels, OK)
        self.error = calls.labels(*labels, ERROR)
        self.timeout = calls.labels(*labels, TIMEOUT)

    def ended(self, timer: Timer, started: float, failure: Failure | None) -> None:
        self.latency.observe(timer() - started)
        if failure is None:
            self.ok.inc()
        elif call_outcome(failure) == TIMEOUT:
            self.timeout.inc()
        else:
            self.error.inc()


@implementer(IRpcHooks)
class RpcMetrics:
    """The RPCs a server makes (``pomelo_rpc_calls_total``) and serves
    (``pomelo_rpc_served_total``), by peer, remote and outcome, with their latency."""

    def __init__(
        self,
        registry: CollectorRegistry,
        server: tuple[str, str],
        timer: Timer,
        buckets: Sequence[float],
        max_labels: int,
    ) -> None:
        self.server = server
        self.timer = timer
        self.max_labels = max_labels
        labels = [*_SERVER, "peer", "remote"]
        self.calls = Counter(
            "pomelo_rpc_calls",
            "RPCs made, by peer, remote (service.method) and outcome (ok, error, timeout).",
            [*labels, "outcome"],
            registry=registry,
        )
        self.call_latency = Histogram(
            "pomelo_rpc_call_duration_seconds",
            "Seconds from sending an RPC to its answer, by peer and remote.",
            labels,
            buckets=buckets,
            registry=registry,
        )
        self.served = Counter(
            "pomelo_rpc_served",
            "RPCs served, by calling peer, remote (service.method) and outcome.",
            [*labels, "outcome"],
            registry=registry,
        )
        self.serve_latency = Histogram(
            "pomelo_rpc_serve_duration_seconds",
            "Seconds serving an RPC took, by calling peer and remote.",
            labels,
            buckets=buckets,
            registry=registry,
        )
        self._calls: dict[tuple[str, str, str], _CallSeries] = {}
        self._serves: dict[tuple[str, str, str], _CallSeries] = {}

    def call_started(
        self, server_id: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        """Time a call this server sends; its end counts it."""
        key = (server_id, service, method)
        series = self._calls.get(key)
        if series is None:
            series = self._series(self._calls, key, self.calls, self.call_latency)
        return context, partial(series.ended, self.timer, self.timer())

    def serve_started(
        self, peer: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        """Time a call this server serves; its end counts it."""
        key = (peer, service, method)
        series = self._serves.get(key)
        if series is None:
            series = self._series(self._serves, key, self.served, self.serve_latency)
        return context, partial(series.ended, self.timer, self.timer())

    def _series(
        self,
        found: dict[tuple[str, str, str], _CallSeries],
        key: tuple[str, str, str],
        calls: Counter,
        latency: Histogram,
    ) -> _CallSeries:
        labels = (*self.server, key[0], f"{key[1]}.{key[2]}")
        if len(found) >= self.max_labels:
            key = (OTHER, OTHER, OTHER)
            other = found.get(key)
            if other is not None:
                return other
            labels = (*self.server, OTHER, OTHER)
        series = found[key] = _CallSeries(calls, latency, labels)
        return series
