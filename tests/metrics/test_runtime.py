"""Reactor lag and GC pauses, measured on an injected clock and timer; the settings."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.metrics.runtime import GcPauses, ReactorLag
from pomelo_twisted.metrics.settings import DEFAULT_BUCKETS, MetricsSettings

from .helpers import scrape, value

SERVER = ("chat-server-1", "chat")


class ReactorLagTests(SynchronousTestCase):
    """ReactorLag: how late its periodic call ran."""

    def test_lateness_observed(self) -> None:
        """A call due at 1 s that runs at 1.5 s observes 0.5 s; one on time 0."""
        clock = Clock()
        registry = CollectorRegistry()
        lag = ReactorLag(clock, 1.0, registry, SERVER)
        lag.start()
        clock.advance(1.5)  # due at 1.0, runs at 1.5
        clock.advance(1.0)  # due at 2.5, on time
        samples = scrape(registry)
        self.assertEqual(value(samples, "pomelo_reactor_lag_seconds_count"), 2.0)
        self.assertAlmostEqual(value(samples, "pomelo_reactor_lag_seconds_sum"), 0.5)

    def test_stop_cancels(self) -> None:
        """Stopped, nothing stays scheduled; started twice, one call is scheduled."""
        clock = Clock()
        lag = ReactorLag(clock, 1.0, CollectorRegistry(), SERVER)
        lag.start()
        lag.start()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        lag.stop()
        self.assertEqual(clock.getDelayedCalls(), [])


class GcPausesTests(SynchronousTestCase):
    """GcPauses: the time between the collector's start and stop callbacks."""

    def test_pause_observed_by_generation(self) -> None:
        """A collection of generation 1 taking 0.02 s is observed under generation 1."""
        clock = Clock()
        callbacks: list[Any] = []
        registry = CollectorRegistry()
        pauses = GcPauses(registry, SERVER, clock.seconds, callbacks)
        pauses.start()
        self.assertEqual(len(callbacks), 1)
        callbacks[0]("start", {"generation": 1})
        clock.advance(0.02)
        callbacks[0]("stop", {"generation": 1, "collected": 3})
        samples = scrape(registry)
        self.assertEqual(value(samples, "pomelo_gc_pause_seconds_count", generation="1"), 1.0)
        self.assertAlmostEqual(value(samples, "pomelo_gc_pause_seconds_sum", generation="1"), 0.02)
        self.assertEqual(value(samples, "pomelo_gc_pause_seconds_count", generation="0"), 0.0)
        pauses.stop()
        self.assertEqual(callbacks, [])

    def test_real_collector_callbacks(self) -> None:
        """Registered in gc.callbacks by default, a real collection is timed."""
        import gc

        registry = CollectorRegistry()
        before = list(gc.callbacks)
        pauses = GcPauses(registry, SERVER, Clock().seconds)
        pauses.start()
        try:
            gc.collect()
        finally:
            pauses.stop()
        self.assertEqual(gc.callbacks, before)
        count = value(scrape(registry), "pomelo_gc_pause_seconds_count", generation="2")
        self.assertGreaterEqual(count, 1.0)


class MetricsSettingsTests(SynchronousTestCase):
    """MetricsSettings.from_settings: defaults and errors naming the setting."""

    def test_defaults(self) -> None:
        """No setting: off, default buckets, 500 labels, a lag measure every second."""
        settings = MetricsSettings.from_settings({})
        self.assertEqual(settings, MetricsSettings(False, DEFAULT_BUCKETS, 500, 1.0))

    def test_values(self) -> None:
        """Given settings are read."""
        settings = MetricsSettings.from_settings(
            {
                "metrics": "true",
                "metrics_buckets": [0.1, 1],
                "metrics_max_labels": 7,
                "metrics_lag_interval": 5,
            }
        )
        self.assertEqual(settings, MetricsSettings(True, (0.1, 1.0), 7, 5.0))

    def test_errors_name_the_setting(self) -> None:
        """A bad value is refused with the setting's name."""
        for key, bad in (
            ("metrics", "yes"),
            ("metrics_buckets", [1, 0.5]),
            ("metrics_buckets", []),
            ("metrics_buckets", [0, 1]),
            ("metrics_max_labels", 0),
            ("metrics_lag_interval", -1),
        ):
            with self.assertRaises(ValueError) as caught:
                MetricsSettings.from_settings({key: bad})
            self.assertIn(repr(key), str(caught.exception))
