"""How the process itself is doing: the reactor's lag and the garbage collector's pauses.

:class:`ReactorLag` asks the clock to call it every ``interval`` seconds and records how
late each call came (``pomelo_reactor_lag_seconds``): a reactor busy with long callbacks
runs it late. :class:`GcPauses` times each collection between the ``start`` and ``stop``
callbacks of the garbage collector (``pomelo_gc_pause_seconds``, by generation).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = ["GcPauses", "ReactorLag"]

#: Buckets of the reactor's lag and of GC pauses: 1 ms to 5 s.
PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ReactorLag:
    """Measures the reactor's lag every ``interval`` seconds while started."""

    def __init__(
        self,
        clock: IReactorTime,
        interval: float,
        registry: CollectorRegistry,
        server: Sequence[str],
    ) -> None:
        self.clock = clock
        self.interval = interval
        self.lag = Histogram(
            "pomelo_reactor_lag_seconds",
            "How late the reactor ran a call scheduled every few seconds.",
            ["server_id", "server_type"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        ).labels(*server)
        self._call: IDelayedCall | None = None
        self._due = 0.0

    def start(self) -> None:
        """Measure from now on."""
        if self._call is None:
            self._schedule()

    def stop(self) -> None:
        """Stop measuring."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _schedule(self) -> None:
        self._due = self.clock.seconds() + self.interval
        self._call = self.clock.callLater(self.interval, self._measure)

    def _measure(self) -> None:
        self.lag.observe(max(0.0, self.clock.seconds() - self._due))
        self._schedule()


class GcPauses:
    """Times every garbage collection while started (``callbacks``: the collector's
    callback list, ``gc.callbacks``; ``timer``: a performance counter)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        server: Sequence[str],
        timer: Callable[[], float],
        callbacks: list[Callable[[str, dict[str, Any]], object]] | None = None,
    ) -> None:
        self.timer = timer
        self.callbacks = gc.callbacks if callbacks is None else callbacks
        histogram = Histogram(
            "pomelo_gc_pause_seconds",
            "Seconds the garbage collector stopped the process, by generation.",
            ["server_id", "server_type", "generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self.pauses = {gen: histogram.labels(*server, str(gen)) for gen in (0, 1, 2)}
        self._started: float | None = None

    def start(self) -> None:
        """Time collections from now on."""
        if self._observe not in self.callbacks:
            self.callbacks.append(self._observe)

    def stop(self) -> None:
        """Stop timing collections."""
        if self._observe in self.callbacks:
            self.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self.timer()
            return
        started, self._started = self._started, None
        pause = self.pauses.get(info.get("generation", 2))
        if started is not None and pause is not None:
            pause.observe(self.timer() - started)
