"""The latency histogram: buckets, percentiles against raw samples, exact merging, JSON."""

from __future__ import annotations

import itertools
import json
import math
import random
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.bots.histogram import (
    SUB_BUCKETS,
    Histogram,
    bucket_bounds,
    bucket_index,
    bucket_value,
    nearest_rank,
)

PERCENTILES = (0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)


def raw_percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile of the raw samples (computed independently of the module)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(Decimal(str(p)) * len(ordered) / 100))
    return ordered[rank - 1]


def precision(raw: float) -> float:
    """How far the histogram may be from a raw value: half a bucket plus µs rounding."""
    return raw / (2 * SUB_BUCKETS) + 0.51e-6


def histogram_of(samples: list[float]) -> Histogram:
    hist = Histogram()
    for value in samples:
        hist.record(value)
    return hist


class BucketTests(SynchronousTestCase):
    """The log-linear bucket layout."""

    def test_index_and_bounds_agree(self) -> None:
        """Each bucket's bounds map back to it, and buckets tile the integers without gaps."""
        indices = [*range(40_000), *random.Random(7).sample(range(40_000, 10**6), 2000)]
        for index in indices:
            lower, upper = bucket_bounds(index)
            self.assertEqual(bucket_index(lower), index)
            self.assertEqual(bucket_index(upper - 1), index)
            self.assertEqual(bucket_index(upper), index + 1)
            self.assertEqual(bucket_bounds(index + 1)[0], upper)

    def test_buckets_narrower_than_a_thousandth(self) -> None:
        """Every bucket above the exact range is narrower than 0.1% of its lower bound."""
        for index in range(2 * SUB_BUCKETS, 60 * SUB_BUCKETS, 97):
            lower, upper = bucket_bounds(index)
            self.assertLess((upper - lower) / lower, 0.001)
            self.assertLessEqual((upper - lower) * SUB_BUCKETS, lower)

    def test_exact_range(self) -> None:
        """Values below 2 × SUB_BUCKETS µs have a one-microsecond bucket of their own."""
        for us in range(2 * SUB_BUCKETS):
            self.assertEqual(bucket_index(us), us)
            self.assertEqual(bucket_bounds(us), (us, us + 1))
            self.assertEqual(bucket_value(us), us)

    def test_representative_is_the_integer_midpoint(self) -> None:
        """A wider bucket stands for the midpoint of the integer microseconds it holds."""
        index = bucket_index(4094)
        self.assertEqual(bucket_bounds(index), (4094, 4096))
        self.assertEqual(bucket_value(index), 4094.5)
        self.assertEqual(bucket_bounds(bucket_index(8199)), (8192, 8200))
        self.assertEqual(bucket_value(bucket_index(8192)), 8195.5)

    def test_nearest_rank(self) -> None:
        """Nearest rank reads p as written: 99% of 100 is rank 99, 99.9% of 1000 is 999."""
        self.assertEqual(nearest_rank(99, 100), 99)
        self.assertEqual(nearest_rank(99.9, 1000), 999)
        self.assertEqual(nearest_rank(50, 1), 1)
        self.assertEqual(nearest_rank(0.001, 10), 1)
        self.assertEqual(nearest_rank(100, 7), 7)
        self.assertEqual(nearest_rank(50, 0), 1)


class RecordTests(SynchronousTestCase):
    """Recording values and reading percentiles."""

    def test_small_values_are_exact(self) -> None:
        """Whole microseconds below 2048 µs come back exactly as recorded."""
        values = [0.0, 0.000001, 0.000017, 0.0005, 0.001023, 0.001024, 0.002, 0.002047]
        hist = histogram_of(values)
        n = len(values)
        for i, value in enumerate(values, start=1):
            self.assertEqual(hist.percentile(100 * i / n), value)  # 12.5, 25, ... exact
        self.assertEqual(hist.count, n)
        self.assertEqual(hist.min, 0.0)
        self.assertEqual(hist.max, 0.002047)

    def test_nearest_rank_percentiles(self) -> None:
        """1..100 ms: p50 is 50 ms, p99 is 99 ms, p100 is 100 ms, p0.5 is 1 ms."""
        hist = histogram_of([i / 1000 for i in range(1, 101)])
        for p, expected in ((0.5, 1), (1, 1), (50, 50), (90, 90), (99, 99), (100, 100)):
            raw = expected / 1000
            self.assertLessEqual(abs(hist.percentile(p) - raw), precision(raw), f"p{p}")

    def test_percentiles_close_to_raw_samples(self) -> None:
        """For random data from 1 ms up, percentiles are within 0.1% of the raw samples'."""
        rng = random.Random(20240601)
        samples = [0.001 + rng.lognormvariate(-4, 1.5) for _ in range(20_000)]
        hist = histogram_of(samples)
        for p in PERCENTILES:
            raw = raw_percentile(samples, p)
            self.assertLess(abs(hist.percentile(p) - raw) / raw, 0.001, f"p{p}")

    def test_sub_millisecond_within_half_a_microsecond(self) -> None:
        """Below the bucketed range the only error is rounding to the microsecond."""
        rng = random.Random(5)
        samples = [rng.uniform(0, 0.002) for _ in range(5000)]
        hist = histogram_of(samples)
        for p in PERCENTILES:
            self.assertLessEqual(abs(hist.percentile(p) - raw_percentile(samples, p)), 0.5e-6)

    def test_percentiles_in_one_pass(self) -> None:
        """percentiles() returns the same values as percentile(), in the order asked."""
        hist = histogram_of([random.Random(3).random() for _ in range(1000)])
        asked = [99, 50, 100, 1, 50]
        self.assertEqual(hist.percentiles(asked), [hist.percentile(p) for p in asked])

    def test_clamped_to_min_and_max(self) -> None:
        """A percentile never leaves [min, max]: one sample is returned exactly."""
        hist = histogram_of([5.0003217])
        for p in PERCENTILES:
            self.assertEqual(hist.percentile(p), 5.0003217)
        hist = histogram_of([0.004094, 0.004095])
        self.assertEqual(hist.percentile(50), 0.0040945)

    def test_mean_and_total(self) -> None:
        """total sums the values (to the microsecond); mean divides it by the count."""
        hist = histogram_of([0.001, 0.002, 0.006])
        self.assertAlmostEqual(hist.total, 0.009, places=12)
        self.assertAlmostEqual(hist.mean(), 0.003, places=12)

    def test_mean_clamped(self) -> None:
        """The mean of sub-microsecond values stays within [min, max]."""
        hist = histogram_of([1.4e-6, 1.4e-6])
        self.assertEqual(hist.mean(), 1.4e-6)

    def test_negative_counts_as_zero(self) -> None:
        """A negative latency (clock step) is recorded as 0."""
        hist = histogram_of([-0.5, -0.0])
        self.assertEqual((hist.count, hist.min, hist.max, hist.total), (2, 0.0, 0.0, 0.0))
        self.assertEqual(hist.percentile(100), 0.0)

    def test_non_finite_refused(self) -> None:
        """NaN and infinities raise ValueError and record nothing."""
        hist = Histogram()
        for value in (math.nan, math.inf, -math.inf):
            self.assertRaises(ValueError, hist.record, value)
        self.assertEqual(hist.count, 0)

    def test_percentile_out_of_range(self) -> None:
        """p must be in (0, 100]: 0, negatives, above 100 and NaN raise ValueError."""
        hist = histogram_of([0.1])
        for p in (0, -1, 100.01, math.nan):
            self.assertRaises(ValueError, hist.percentile, p)
        self.assertRaises(ValueError, Histogram().percentile, 0)

    def test_empty(self) -> None:
        """An empty histogram: no min/max, percentiles and mean 0.0."""
        hist = Histogram()
        self.assertEqual((hist.count, hist.min, hist.max, hist.total), (0, None, None, 0.0))
        self.assertEqual(hist.percentile(50), 0.0)
        self.assertEqual(hist.percentiles([50, 99]), [0.0, 0.0])
        self.assertEqual(hist.mean(), 0.0)
        self.assertEqual(
            hist.to_dict(), {"buckets": {}, "count": 0, "min": None, "max": None, "total": 0.0}
        )


class MergeTests(SynchronousTestCase):
    """Merged histograms give the same percentiles as the raw samples."""

    def assert_merge_exact(self, samples: list[float], cuts: list[int]) -> None:
        whole = histogram_of(samples)
        merged = Histogram()
        bounds = [0, *sorted(cuts), len(samples)]
        for start, end in itertools.pairwise(bounds):
            part = histogram_of(samples[start:end])
            merged.merge(Histogram.from_dict(json.loads(json.dumps(part.to_dict()))))
        self.assertEqual(merged, whole)
        self.assertEqual(merged.to_dict(), whole.to_dict())
        self.assertEqual(
            (merged.count, merged.min, merged.max, merged.total),
            (len(samples), min(samples), max(samples), whole.total),
        )
        self.assertEqual(merged.mean(), whole.mean())
        for p in PERCENTILES:
            got = merged.percentile(p)
            self.assertEqual(got, whole.percentile(p))
            raw = raw_percentile(samples, p)
            self.assertLessEqual(abs(got - raw), precision(raw), f"p{p}")

    @settings(max_examples=200, deadline=None, database=None)
    @given(
        samples=st.lists(
            st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=300,
        ),
        data=st.data(),
    )
    def test_merged_split_sample_equals_whole(self, samples: list[float], data: Any) -> None:
        """A sample split at random, recorded apart and merged, equals one histogram of all
        of it (count, min, max, total, percentiles) and matches the raw percentiles.
        """
        cuts = data.draw(st.lists(st.integers(0, len(samples)), max_size=6), label="cuts")
        self.assert_merge_exact(samples, cuts)

    def test_merged_workers_match_raw_samples(self) -> None:
        """Eight workers' histograms, merged through JSON, match 40,000 raw samples."""
        rng = random.Random(99)
        samples = [rng.expovariate(1 / 0.02) for _ in range(40_000)]
        self.assert_merge_exact(samples, list(range(5000, 40_000, 5000)))

    def test_merge_order_does_not_matter(self) -> None:
        """a+b and b+a are equal, to the last bit of the total."""
        a = histogram_of([0.1, 0.2, 0.7])
        b = histogram_of([0.3, 1e-7, 12.5])
        ab, ba = a.copy(), b.copy()
        ab.merge(b)
        ba.merge(a)
        self.assertEqual(ab, ba)
        self.assertEqual(ab.total, ba.total)

    def test_merge_with_empty(self) -> None:
        """Merging an empty histogram changes nothing; merging into one copies."""
        hist = histogram_of([0.25, 0.5])
        before = hist.to_dict()
        hist.merge(Histogram())
        self.assertEqual(hist.to_dict(), before)
        empty = Histogram()
        empty.merge(hist)
        self.assertEqual(empty, hist)

    def test_copy_is_independent(self) -> None:
        """Recording into a copy leaves the original alone."""
        hist = histogram_of([0.25])
        clone = hist.copy()
        clone.record(1.0)
        self.assertEqual((hist.count, clone.count), (1, 2))


def valid_dict() -> dict[str, Any]:
    return histogram_of([0.001, 0.0025, 0.75]).to_dict()


class DictTests(SynchronousTestCase):
    """to_dict / from_dict."""

    def test_round_trip_through_json(self) -> None:
        """to_dict is JSON-able and from_dict reads it back equal, percentiles included."""
        rng = random.Random(11)
        hist = histogram_of([rng.lognormvariate(-3, 2) for _ in range(3000)])
        data = hist.to_dict()
        self.assertEqual(set(data), {"buckets", "count", "min", "max", "total"})
        self.assertTrue(all(isinstance(key, str) for key in data["buckets"]))
        back = Histogram.from_dict(json.loads(json.dumps(data)))
        self.assertEqual(back, hist)
        self.assertEqual(back.to_dict(), data)
        self.assertEqual(back.percentiles(PERCENTILES), hist.percentiles(PERCENTILES))
        self.assertEqual(back.mean(), hist.mean())

    def test_round_trip_empty(self) -> None:
        """An empty histogram survives the round trip."""
        back = Histogram.from_dict(json.loads(json.dumps(Histogram().to_dict())))
        self.assertEqual(back, Histogram())

    def test_zero_count_buckets_dropped(self) -> None:
        """A bucket with a zero count is accepted and dropped."""
        data = valid_dict()
        data["buckets"]["5"] = 0
        self.assertEqual(Histogram.from_dict(data), Histogram.from_dict(valid_dict()))

    def test_from_dict_errors(self) -> None:
        """Malformed or inconsistent data raises ValueError naming the problem."""
        cases: list[tuple[str, Any]] = [
            ("must be a mapping", []),
            ("missing count", {k: v for k, v in valid_dict().items() if k != "count"}),
            ("unknown keys: extra", {**valid_dict(), "extra": 1}),
            ("buckets must be a mapping", {**valid_dict(), "buckets": [1, 2]}),
            ("bucket index 'x'", {**valid_dict(), "buckets": {"x": 3}}),
            ("bucket index '-1'", {**valid_dict(), "buckets": {"-1": 3}}),
            ("bad count -1", {**valid_dict(), "buckets": {"1000": -1}}),
            ("bad count '3'", {**valid_dict(), "buckets": {"1000": "3"}}),
            ("bad count True", {**valid_dict(), "buckets": {"1000": True}}),
            ("count must be", {**valid_dict(), "count": 2.5}),
            ("not the sum of its buckets", {**valid_dict(), "count": 4}),
            ("total must be", {**valid_dict(), "total": -1}),
            ("total must be", {**valid_dict(), "total": math.inf}),
            ("min must be", {**valid_dict(), "min": None}),
            ("max must be", {**valid_dict(), "max": math.nan}),
            ("above its max", {**valid_dict(), "min": 0.9}),
            ("lowest bucket", {**valid_dict(), "min": 0.0005}),
            ("highest bucket", {**valid_dict(), "max": 0.8}),
            ("does not fit its buckets", {**valid_dict(), "total": 0.9}),
            (
                "empty histogram",
                {"buckets": {}, "count": 0, "min": 0.1, "max": None, "total": 0},
            ),
        ]
        for fragment, data in cases:
            with self.assertRaises(ValueError, msg=fragment) as caught:
                Histogram.from_dict(data)
            self.assertIn(fragment, str(caught.exception))
