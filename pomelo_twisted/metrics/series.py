"""Counts kept on the hot path as plain numbers, turned into metric families at scrape.

prometheus_client's own ``Counter`` and ``Histogram`` take a lock and walk their buckets
on every update (about 1 µs each); a request or an RPC would pay that twice. The
server's requests and calls all run on the reactor's thread, and so does a scrape (the
``/metrics`` page renders there), so :class:`Latency` and :class:`Outcomes` are plain
counts with no lock, and :func:`histogram_family` / :func:`counter_family` build the
families prometheus_client writes out.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

__all__ = ["Latency", "Outcomes", "counter_family", "histogram_family"]

SERVER_LABELS = ("server_id", "server_type")


class Latency:
    """A histogram's counts: one per bucket (``le`` each bound, then ``+Inf``) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at most that), the last bound ``inf``."""
        running = 0
        found: list[tuple[float, int]] = []
        for bound, count in zip([*self.bounds, float("inf")], self.counts, strict=True):
            running += count
            found.append((bound, running))
        return found


class Outcomes(dict[str, int]):
    """How many ended with each outcome."""

    __slots__ = ()

    def add(self, outcome: str) -> None:
        """Count one ``outcome``."""
        self[outcome] = self.get(outcome, 0) + 1


def histogram_family(
    name: str,
    doc: str,
    labels: Sequence[str],
    series: Iterable[tuple[Sequence[str], Latency]],
) -> HistogramMetricFamily:
    """A histogram family of ``series`` (label values, counts); ``labels`` come after
    ``server_id`` and ``server_type``."""
    family = HistogramMetricFamily(name, doc, labels=[*SERVER_LABELS, *labels])
    for values, latency in series:
        family.add_metric(
            list(values),
            buckets=[(floatToGoString(b), count) for b, count in latency.cumulative()],
            sum_value=latency.total,
        )
    return family


def counter_family(
    name: str,
    doc: str,
    labels: Sequence[str],
    series: Iterable[tuple[Sequence[str], Outcomes]],
) -> CounterMetricFamily:
    """A counter family (``name`` without ``_total``) of each series' outcomes, with an
    ``outcome`` label after ``labels``."""
    family = CounterMetricFamily(name, doc, labels=[*SERVER_LABELS, *labels, "outcome"])
    for values, outcomes in series:
        for outcome, count in sorted(outcomes.items()):
            family.add_metric([*values, outcome], count)
    return family
