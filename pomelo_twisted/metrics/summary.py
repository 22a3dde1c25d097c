"""A few figures of a server's metrics for its stats (the live dashboard, ``list``).

:func:`metrics_summary` reads the request and RPC metrics into the keys that
:func:`pomelo_twisted.discovery.membership.server_stats` adds:
``requests`` (client requests answered so far; a backend's: the forwarded requests its
handlers served), ``routes`` (by route: ``count``,
``p50`` and ``p99`` seconds, interpolated within the latency buckets as Prometheus'
``histogram_quantile`` does) and ``rpc`` (``calls`` made, ``errors``, ``timeouts``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .hooks import RequestMetrics, RpcMetrics

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


def _routes(requests: RequestMetrics) -> dict[str, dict[str, float | int]]:
    routes: dict[str, dict[str, float | int]] = {}
    for route, series in sorted(requests.routes.items()):
        if not series.requests:
            continue
        buckets = series.latency.cumulative()
        routes[route] = {
            "count": sum(series.requests.values()),
            "p50": bucket_quantile(0.5, buckets),
            "p99": bucket_quantile(0.99, buckets),
        }
    return routes


def metrics_summary(requests: RequestMetrics | None, rpc: RpcMetrics) -> dict[str, Any]:
    """``requests``, ``routes`` and ``rpc`` (see the module docstring): a frontend's
    client requests, a backend's forwarded requests its handlers served (``requests``
    None: 0 requests and no routes)."""
    return {
        "requests": 0
        if requests is None
        else sum(sum(s.requests.values()) for s in requests.routes.values()),
        "routes": {} if requests is None else _routes(requests),
        "rpc": rpc.totals(),
    }
