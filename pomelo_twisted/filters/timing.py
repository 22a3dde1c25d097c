"""TimingFilter: per-route request count and latency, for metrics (no per-request logs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ..interfaces import IAfterFilter

__all__ = ["RouteTiming", "TimingFilter"]


@dataclass(slots=True)
class RouteTiming:
    """Latencies of one route, in seconds."""

    count: int = 0
    total: float = 0.0
    max: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """``count``, ``total``, ``max`` and ``mean``."""
        mean = self.total / self.count if self.count else 0.0
        return {"count": self.count, "total": self.total, "max": self.max, "mean": mean}


@implementer(IAfterFilter)
class TimingFilter:
    """Measures each request from ``context.started`` (when dispatch began, so the time
    spent in before-filters and queues counts) to this after-filter."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._routes: dict[str, RouteTiming] = {}

    def after(self, context: Any, response: Any) -> Any:
        """Record the request's latency; the response passes unchanged."""
        elapsed = max(0.0, self.clock.seconds() - context.started)
        timing = self._routes.get(context.route)
        if timing is None:
            timing = self._routes[context.route] = RouteTiming()
        timing.count += 1
        timing.total += elapsed
        timing.max = max(timing.max, elapsed)
        return response

    def stats(self) -> dict[str, dict[str, float]]:
        """``{route: {"count", "total", "max", "mean"}}`` of every route seen."""
        return {route: timing.as_dict() for route, timing in sorted(self._routes.items())}

    def reset(self) -> None:
        """Forget every measurement."""
        self._routes.clear()
