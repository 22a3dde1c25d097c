"""A latency histogram that merges exactly: log-linear buckets of integer microseconds.

A load test runs its bots in several processes; each one records latencies into a
:class:`Histogram`, ships it to the parent as JSON (:meth:`Histogram.to_dict`) and the parent
adds the bucket counts together (:meth:`Histogram.merge`).  Percentiles are only computed on
the merged histogram: averaging per-process percentiles would be wrong, adding counts is
exact.

Bucketing
---------
A latency is rounded to whole microseconds, ``us``.  Values below ``2 * SUB_BUCKETS`` (2048)
µs each have their own bucket (index ``us``): they are exact.  Above, every power of two
``[2**e, 2**(e+1))`` is split into ``SUB_BUCKETS`` (1024) buckets of equal width
``2**(e - 10)``, so a bucket is never wider than 1/1024 of its lower bound (< 0.1%).  The
index is ``shift * 1024 + (us >> shift)`` with ``shift = us.bit_length() - 11``, which
continues the exact range without a gap; :func:`bucket_index` and :func:`bucket_bounds`
convert both ways.

A percentile is the **midpoint of the integer microseconds of the bucket** holding the
nearest-rank sample (its lower bound when the bucket is one microsecond wide), clamped to
the exact ``[min, max]`` seen.  Against the raw samples it is off by at most half a bucket
plus the half microsecond of rounding: under 0.05% + 0.5 µs.

``total`` (and so :meth:`Histogram.mean`) is the sum of the rounded microseconds, kept as an
integer so that merging in any order gives exactly the same total.  ``min`` and ``max`` are
the exact values recorded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

__all__ = [
    "SUB_BUCKETS",
    "Histogram",
    "bucket_bounds",
    "bucket_index",
    "bucket_value",
    "nearest_rank",
]

SUB_BITS = 10
#: Buckets per power of two above the exact range; values below this many µs are exact.
SUB_BUCKETS = 1 << SUB_BITS
# Bucket indices and microsecond values coincide below this.
_LINEAR_LIMIT = 2 * SUB_BUCKETS
_DICT_KEYS = frozenset({"buckets", "count", "min", "max", "total"})


def bucket_index(us: int) -> int:
    """The index of the bucket holding ``us`` microseconds (a non-negative integer)."""
    if us < _LINEAR_LIMIT:
        return us
    shift = us.bit_length() - SUB_BITS - 1
    return (shift << SUB_BITS) + (us >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The microseconds ``[lower, upper)`` that bucket ``index`` holds."""
    if index < _LINEAR_LIMIT:
        return index, index + 1
    shift = (index >> SUB_BITS) - 1
    lower = (index - (shift << SUB_BITS)) << shift
    return lower, lower + (1 << shift)


def bucket_value(index: int) -> float:
    """The value, in microseconds, that stands for bucket ``index``: its integers' midpoint."""
    lower, upper = bucket_bounds(index)
    return lower + (upper - 1 - lower) / 2


def nearest_rank(p: float, count: int) -> int:
    """The 1-based rank of percentile ``p`` among ``count`` samples (nearest-rank method).

    ``p`` is read as the decimal it is written as (99.9 means 999/10, not the binary float
    just above), so ``p=99`` of 100 samples is rank 99, never 100.
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p!r}")
    return max(1, math.ceil(Fraction(str(p)) * count / 100))


def _to_us(seconds: float) -> int:
    return round(seconds * 1_000_000)


class Histogram:
    """Latencies in seconds, in log-linear buckets of integer microseconds.

    Values below :data:`SUB_BUCKETS` (1024) µs are exact (in fact up to 2048 µs); above,
    each power of two is split into 1024 sub-buckets (relative error < 0.1%).  Merging adds
    bucket counts, so it is exact.  ``count``, ``min``, ``max`` and ``total`` (seconds) are
    read-only; ``min``/``max`` are ``None`` while the histogram is empty.
    """

    __slots__ = ("_buckets", "_count", "_max", "_min", "_total_us")
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self._count = 0
        self._min: float | None = None
        self._max: float | None = None
        self._total_us = 0

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return self._count

    @property
    def min(self) -> float | None:
        """The smallest value recorded (seconds, exact), ``None`` when empty."""
        return self._min

    @property
    def max(self) -> float | None:
        """The largest value recorded (seconds, exact), ``None`` when empty."""
        return self._max

    @property
    def total(self) -> float:
        """The sum of the values recorded, each rounded to the microsecond (seconds)."""
        return self._total_us / 1_000_000

    @property
    def buckets(self) -> dict[int, int]:
        """A copy of the non-empty buckets: index -> count."""
        return dict(self._buckets)

    def record(self, seconds: float) -> None:
        """Add one latency; negative values count as 0, NaN and infinities are refused."""
        if not math.isfinite(seconds):
            raise ValueError(f"cannot record a latency of {seconds!r}")
        seconds = float(seconds) if seconds > 0 else 0.0
        us = _to_us(seconds)
        index = bucket_index(us)
        buckets = self._buckets
        buckets[index] = buckets.get(index, 0) + 1
        self._count += 1
        self._total_us += us
        if self._min is None or seconds < self._min:
            self._min = seconds
        if self._max is None or seconds > self._max:
            self._max = seconds

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s values to this histogram (exact: bucket counts are added)."""
        buckets = self._buckets
        for index, n in list(other._buckets.items()):
            buckets[index] = buckets.get(index, 0) + n
        self._count += other._count
        self._total_us += other._total_us
        if other._min is not None and (self._min is None or other._min < self._min):
            self._min = other._min
        if other._max is not None and (self._max is None or other._max > self._max):
            self._max = other._max

    def percentile(self, p: float) -> float:
        """Percentile ``p`` (0 < p <= 100) in seconds; 0.0 when empty.

        Nearest rank over the bucket counts, the bucket's midpoint, clamped to [min, max].
        """
        return self.percentiles([p])[0]

    def percentiles(self, ps: Iterable[float]) -> list[float]:
        """Several percentiles (seconds) in one pass over the buckets, in the order given."""
        wanted = list(ps)
        ranks = [nearest_rank(p, self._count) for p in wanted]
        if self._count == 0:
            return [0.0 for _ in wanted]
        assert self._min is not None and self._max is not None
        order = sorted(range(len(ranks)), key=ranks.__getitem__)
        results = [0.0] * len(ranks)
        seen = 0
        position = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            while position < len(order) and ranks[order[position]] <= seen:
                value = bucket_value(index) / 1_000_000
                results[order[position]] = min(max(value, self._min), self._max)
                position += 1
            if position == len(order):
                break
        return results

    def mean(self) -> float:
        """The mean in seconds (0.0 when empty), clamped to [min, max]."""
        if self._count == 0:
            return 0.0
        assert self._min is not None and self._max is not None
        return min(max(self.total / self._count, self._min), self._max)

    def copy(self) -> Histogram:
        """An independent copy."""
        clone = Histogram()
        clone.merge(self)
        return clone

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form that :meth:`from_dict` reads back exactly."""
        return {
            "buckets": {str(index): self._buckets[index] for index in sorted(self._buckets)},
            "count": self._count,
            "min": self._min,
            "max": self._max,
            "total": self.total,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """Read :meth:`to_dict`'s form back, checking it; ``ValueError`` names the problem."""
        if not isinstance(data, Mapping):
            raise ValueError(f"histogram must be a mapping, got {type(data).__name__}")
        missing = sorted(_DICT_KEYS - set(data))
        if missing:
            raise ValueError(f"histogram is missing {', '.join(missing)}")
        unknown = sorted(str(key) for key in set(data) - _DICT_KEYS)
        if unknown:
            raise ValueError(f"histogram has unknown keys: {', '.join(unknown)}")
        raw_buckets = data["buckets"]
        if not isinstance(raw_buckets, Mapping):
            raise ValueError("histogram buckets must be a mapping of index to count")
        buckets: dict[int, int] = {}
        for key, n in raw_buckets.items():
            index = _parse_index(key)
            if not _is_int(n) or n < 0:
                raise ValueError(f"histogram bucket {key!r} has a bad count {n!r}")
            if n:
                buckets[index] = buckets.get(index, 0) + n
        count = data["count"]
        if not _is_int(count) or count < 0:
            raise ValueError(f"histogram count must be a non-negative integer, got {count!r}")
        if count != sum(buckets.values()):
            raise ValueError(
                f"histogram count {count} is not the sum of its buckets ({sum(buckets.values())})"
            )
        total = data["total"]
        if not _is_number(total) or not math.isfinite(total) or total < 0:
            raise ValueError(f"histogram total must be a non-negative number, got {total!r}")
        low, high = data["min"], data["max"]
        hist = cls()
        if count == 0:
            if low is not None or high is not None or total != 0:
                raise ValueError("an empty histogram must have min and max null and total 0")
            return hist
        for name, value in (("min", low), ("max", high)):
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"histogram {name} must be a non-negative number, got {value!r}")
        if low > high:
            raise ValueError(f"histogram min {low!r} is above its max {high!r}")
        if bucket_index(_to_us(low)) != min(buckets):
            raise ValueError(f"histogram min {low!r} is not in its lowest bucket")
        if bucket_index(_to_us(high)) != max(buckets):
            raise ValueError(f"histogram max {high!r} is not in its highest bucket")
        total_us = _to_us(total)
        lowest = sum(bucket_bounds(index)[0] * n for index, n in buckets.items())
        highest = sum((bucket_bounds(index)[1] - 1) * n for index, n in buckets.items())
        if not lowest <= total_us <= highest:
            raise ValueError(f"histogram total {total!r} does not fit its buckets")
        hist._buckets = buckets
        hist._count = count
        hist._min = float(low)
        hist._max = float(high)
        hist._total_us = total_us
        return hist

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return (
            self._buckets == other._buckets
            and self._count == other._count
            and self._min == other._min
            and self._max == other._max
            and self._total_us == other._total_us
        )

    def __repr__(self) -> str:
        return f"<Histogram count={self._count} min={self._min!r} max={self._max!r}>"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_index(key: object) -> int:
    if _is_int(key):
        index = key
    elif isinstance(key, str) and key.isascii() and key.isdigit():
        index = int(key)
    else:
        raise ValueError(f"histogram bucket index {key!r} is not a non-negative integer")
    assert isinstance(index, int)
    if index < 0:
        raise ValueError(f"histogram bucket index {key!r} is negative")
    return index
