"""The settings of a server's metrics (application settings, e.g. from ``configure``).

- ``metrics``: true collects metrics even without a ``metricsPort`` (for the live
  dashboard's stats); without either a server has no metrics and pays nothing for them;
- ``metrics_buckets``: the upper bounds, in seconds, of the latency histograms' buckets
  (requests and RPCs), in increasing order;
- ``metrics_max_labels``: how many distinct routes (and, apart, RPC peer and remote
  pairs) get their own series; the rest are counted under ``other``, so clients sending
  made-up routes cannot grow the registry;
- ``metrics_lag_interval``: seconds between two measures of the reactor's lag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_BUCKETS", "MetricsSettings"]

#: Latency buckets (seconds) fit for game requests: 0.5 ms to 10 s.
DEFAULT_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Checked metrics settings; :meth:`from_settings` reads them."""

    enabled: bool = False
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    max_labels: int = 500
    lag_interval: float = 1.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> MetricsSettings:
        """The metrics settings of an application's ``settings``; ``ValueError`` naming
        the setting that is wrong."""
        enabled = settings.get("metrics", False)
        if enabled not in (True, False, "true", "false"):
            raise ValueError(f"setting 'metrics' must be true or false, not {enabled!r}")
        buckets = settings.get("metrics_buckets", DEFAULT_BUCKETS)
        if (
            not isinstance(buckets, list | tuple)
            or not buckets
            or not all(type(b) in (int, float) and b > 0 for b in buckets)
            or list(buckets) != sorted(set(buckets))
        ):
            raise ValueError(
                "setting 'metrics_buckets' must be increasing positive numbers of seconds, "
                f"not {buckets!r}"
            )
        max_labels = settings.get("metrics_max_labels", 500)
        if type(max_labels) is not int or max_labels < 1:
            raise ValueError(
                f"setting 'metrics_max_labels' must be a positive integer, not {max_labels!r}"
            )
        interval = settings.get("metrics_lag_interval", 1.0)
        if type(interval) not in (int, float) or interval <= 0:
            raise ValueError(
                f"setting 'metrics_lag_interval' must be a positive number of seconds, "
                f"not {interval!r}"
            )
        return cls(
            enabled=enabled in (True, "true"),
            buckets=tuple(float(b) for b in buckets),
            max_labels=max_labels,
            lag_interval=float(interval),
        )
