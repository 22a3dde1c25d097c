"""Request and RPC metrics, recorded by the instruments' hooks.

:class:`RequestMetrics` (an :class:`~pomelo_twisted.interfaces.IRequestHooks`) counts a
frontend's client requests and notifies by route and outcome and times the requests;
:class:`RpcMetrics` (an :class:`~pomelo_twisted.interfaces.IRpcHooks`) counts and times
the calls a server makes, by peer and remote (``service.method``), and the calls it
serves. Both are collectors of their own registry: the counts are plain numbers
(:mod:`.series`), written out when Prometheus scrapes. The series of one route (one
peer and remote) are made the first time it is seen and kept: a request costs a clock
read, two dict lookups and two increments. Routes answered 404 count as ``unknown``; past
``max_labels`` distinct routes (pairs), new ones count as ``other``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from functools import partial

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from twisted.python.failure import Failure
from zope.interface import implementer

from ..callcontext import CallContext
from ..errors import RpcTimeout
from ..interfaces import CallEnd, IAgent, IHandlerHooks, IRequestHooks, IRpcHooks, RequestEnd
from .outcomes import ERROR, OK, TIMEOUT, request_outcome
from .series import Latency, Outcomes, counter_family, histogram_family

__all__ = ["OTHER", "UNKNOWN_ROUTE", "HandledMetrics", "RequestMetrics", "RpcMetrics", "Timer"]

Timer = Callable[[], float]
"""A clock for durations, in seconds (``time.perf_counter``; a test's ``Clock.seconds``)."""

#: The route label of requests for a route that does not exist (answered 404).
UNKNOWN_ROUTE = "unknown"
#: The label of routes (RPC peer and remote pairs) past ``max_labels``.
OTHER = "other"


class _RouteSeries:
    """One route: requests and notifies by outcome, request latency."""

    __slots__ = ("latency", "notifies", "requests")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.latency = Latency(buckets)
        self.requests = Outcomes()
        self.notifies = Outcomes()


class _Recorder(Collector):
    """What both kinds of recorder keep; registered in ``registry`` as a collector."""

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
        self.buckets = tuple(buckets)
        self.max_labels = max_labels
        registry.register(self)


@implementer(IRequestHooks)
class RequestMetrics(_Recorder):
    """Client requests and notifies of a frontend, by route and outcome."""

    #: The names and help of the request, notify and latency families.
    families = (
        (
            "pomelo_client_requests",
            "Client requests answered, by route and outcome (ok or the error code).",
        ),
        (
            "pomelo_client_notifies",
            "Client notifies handled, by route and outcome (ok or the error code).",
        ),
        (
            "pomelo_client_request_duration_seconds",
            "Seconds from a client request's arrival to its answer, by route.",
        ),
    )

    def __init__(
        self,
        registry: CollectorRegistry,
        server: tuple[str, str],
        timer: Timer,
        buckets: Sequence[float],
        max_labels: int,
    ) -> None:
        self.routes: dict[str, _RouteSeries] = {}
        super().__init__(registry, server, timer, buckets, max_labels)

    def request_started(
        self, agent: IAgent, route: str, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        """Time the request; its end counts it (the context is left as it is)."""
        return context, partial(self._ended, route, notify, self.timer())

    def _ended(self, route: str, notify: bool, started: float, outcome: object) -> None:
        if type(outcome) is dict and outcome.get("code", 200) == 200:  # the usual answer
            code = OK
        else:
            code = request_outcome(outcome)
            if code == "404":
                route = UNKNOWN_ROUTE
        series = self.routes.get(route)
        if series is None:
            series = self._series(route)
        if notify:
            series.notifies.add(code)
        else:  # Latency.observe and Outcomes.add, inlined: this runs for every request
            seconds = self.timer() - started
            latency = series.latency
            latency.counts[bisect_left(latency.bounds, seconds)] += 1
            latency.total += seconds
            requests = series.requests
            requests[code] = requests.get(code, 0) + 1

    def _series(self, route: str) -> _RouteSeries:
        if len(self.routes) >= self.max_labels:
            route = OTHER
            found = self.routes.get(OTHER)
            if found is not None:
                return found
        series = self.routes[route] = _RouteSeries(self.buckets)
        return series

    def collect(self) -> Iterator[Metric]:
        """The request, notify and latency families."""
        routes = sorted(self.routes.items())
        server = self.server
        (requests, requests_help), (notifies, notifies_help), (latency, latency_help) = (
            self.families
        )
        yield counter_family(
            requests,
            requests_help,
            ["route"],
            (((*server, route), s.requests) for route, s in routes),
        )
        yield counter_family(
            notifies,
            notifies_help,
            ["route"],
            (((*server, route), s.notifies) for route, s in routes if s.notifies),
        )
        yield histogram_family(
            latency,
            latency_help,
            ["route"],
            (((*server, route), s.latency) for route, s in routes if s.requests),
        )


@implementer(IHandlerHooks)
class HandledMetrics(RequestMetrics):
    """The requests and notifies a backend's handlers serve for frontends (forwarded),
    by route and outcome, and the time its handlers take."""

    families = (
        (
            "pomelo_handled_requests",
            "Forwarded requests handled here, by route and outcome (ok or the error code).",
        ),
        (
            "pomelo_handled_notifies",
            "Forwarded notifies handled here, by route and outcome (ok or the error code).",
        ),
        (
            "pomelo_handled_request_duration_seconds",
            "Seconds the handling of a forwarded request takes here, by route.",
        ),
    )

    def handler_started(
        self, route: str, session: object, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        """Time the handler; its end counts it (the context is left as it is)."""
        return context, partial(self._ended, route, notify, self.timer())


class _CallSeries:
    """One peer and remote: calls by outcome and their latency."""

    __slots__ = ("latency", "outcomes")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.latency = Latency(buckets)
        self.outcomes = Outcomes()

    def ended(self, timer: Timer, started: float, failure: Failure | None) -> None:
        self.latency.observe(timer() - started)
        if failure is None:
            self.outcomes.add(OK)
        elif failure.check(RpcTimeout):
            self.outcomes.add(TIMEOUT)
        else:
            self.outcomes.add(ERROR)


_Key = tuple[str, str, str]


@implementer(IRpcHooks)
class RpcMetrics(_Recorder):
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
        self.calls: dict[_Key, _CallSeries] = {}
        self.serves: dict[_Key, _CallSeries] = {}
        super().__init__(registry, server, timer, buckets, max_labels)

    def call_started(
        self, server_id: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        """Time a call this server sends; its end counts it."""
        series = self.calls.get((server_id, service, method))
        if series is None:
            series = self._series(self.calls, (server_id, service, method))
        return context, partial(series.ended, self.timer, self.timer())

    def serve_started(
        self, peer: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        """Time a call this server serves; its end counts it."""
        series = self.serves.get((peer, service, method))
        if series is None:
            series = self._series(self.serves, (peer, service, method))
        return context, partial(series.ended, self.timer, self.timer())

    def _series(self, found: dict[_Key, _CallSeries], key: _Key) -> _CallSeries:
        if len(found) >= self.max_labels:
            key = (OTHER, OTHER, "")
            other = found.get(key)
            if other is not None:
                return other
        series = found[key] = _CallSeries(self.buckets)
        return series

    def _labelled(self, found: dict[_Key, _CallSeries]) -> list[tuple[list[str], _CallSeries]]:
        return [
            ([*self.server, peer, f"{service}.{method}" if method else service], series)
            for (peer, service, method), series in sorted(found.items())
        ]

    def collect(self) -> Iterator[Metric]:
        """The call and serve families."""
        calls, serves = self._labelled(self.calls), self._labelled(self.serves)
        labels = ["peer", "remote"]
        yield counter_family(
            "pomelo_rpc_calls",
            "RPCs made, by peer, remote (service.method) and outcome (ok, error, timeout).",
            labels,
            ((values, s.outcomes) for values, s in calls),
        )
        yield histogram_family(
            "pomelo_rpc_call_duration_seconds",
            "Seconds from sending an RPC to its answer, by peer and remote.",
            labels,
            ((values, s.latency) for values, s in calls),
        )
        yield counter_family(
            "pomelo_rpc_served",
            "RPCs served, by calling peer, remote (service.method) and outcome.",
            labels,
            ((values, s.outcomes) for values, s in serves),
        )
        yield histogram_family(
            "pomelo_rpc_serve_duration_seconds",
            "Seconds serving an RPC took, by calling peer and remote.",
            labels,
            ((values, s.latency) for values, s in serves),
        )

    def totals(self) -> dict[str, int]:
        """The RPCs made so far: ``calls``, ``errors``, ``timeouts``."""
        calls = errors = timeouts = 0
        for series in self.calls.values():
            outcomes = series.outcomes
            calls += sum(outcomes.values())
            errors += outcomes.get(ERROR, 0)
            timeouts += outcomes.get(TIMEOUT, 0)
        return {"calls": calls, "errors": errors, "timeouts": timeouts}
