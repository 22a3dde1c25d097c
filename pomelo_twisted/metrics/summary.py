"""A few figures of a server's metrics for its stats (the live dashboard, ``list``).

:func:`metrics_summary` reads the request and RPC metrics (through ``collect``, as a
scrape does) into the keys :func:`pomelo_twisted.discovery.membership.server_stats` adds:
``requests`` (client requests answered so far), ``routes`` (by route: ``count``,
``p50`` and ``p99`` seconds, interpolated within the latency buckets as Prometheus'
``histogram_quantile`` does) and ``rpc`` (``calls`` made, ``errors``, ``timeouts``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram

from .hooks import RequestMetrics, RpcMetrics
from .outcomes import ERROR, TIMEOUT

__all__ = ["bucket_quantile", "metrics_summary"]


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile of a histogram's cumulative ``(upper bound, count)`` buckets
    (the last one ``+Inf``), linear within its bucket; 0.0 without observations. In the
    ``+Inf`` bucket it is the highest finite bound."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return 0.0
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _total(counter: Counter, outcomes: set[str] | None = None) -> int:
    total = 0.0
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and (
                outcomes is None or sample.labels.get("outcome") in outcomes
            ):
                total += sample.value
    return int(total)


def _routes(histogram: Histogram) -> dict[str, dict[str, float | int]]:
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in histogram.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                route = sample.labels["route"]
                buckets.setdefault(route, []).append((float(sample.labels["le"]), sample.value))
    routes: dict[str, dict[str, float | int]] = {}
    for route, found in sorted(buckets.items()):
        found.sort()
        routes[route] = {
            "count": int(found[-1][1]),
            "p50": bucket_quantile(0.5, found),
            "p99": bucket_quantile(0.99, found),
        }
    return routes


def metrics_summary(requests: RequestMetrics | None, rpc: RpcMetrics) -> dict[str, Any]:
    """``requests``, ``routes`` and ``rpc`` (see the module docstring); a backend
    (``requests`` None) has 0 requests and no routes."""
    return {
        "requests": 0 if requests is None else _total(requests.requests),
        "routes": {} if requests is None else _routes(requests.latency),
        "rpc": {
            "calls": _total(rpc.calls),
            "errors": _total(rpc.calls, {ERROR}),
            "timeouts": _total(rpc.calls, {TIMEOUT}),
        },
    }
