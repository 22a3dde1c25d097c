"""TooBusyFilter: refuse requests with 503 while the reactor lags.

A ``LoopingCall`` on the clock ticks every ``interval`` seconds; the lag of a tick is
how late it runs: ``actual - expected``, where ``expected`` is the previous tick plus
``interval`` (a blocked reactor runs the tick late). While the last measured lag
exceeds ``max_lag``, before-filtering raises ``ServerUnavailable("server too busy")`` (503).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from ..errors import ServerUnavailable
from ..interfaces import IBeforeFilter, IComponent

__all__ = ["TooBusyFilter"]

log = Logger()


@implementer(IBeforeFilter, IComponent)
class TooBusyFilter:
    """A before-filter measuring reactor lag; also a component (``start``/``stop``)."""

    name = "toobusy"

    def __init__(self, clock: IReactorTime, max_lag: float = 0.07, interval: float = 0.1) -> None:
        self.clock = clock
        self.max_lag = max_lag
        self.interval = interval
        self.lag = 0.0
        self.refused = 0
        self._expected = 0.0
        self._loop: LoopingCall | None = None

    @property
    def busy(self) -> bool:
        """Whether the last measured lag exceeds ``max_lag``."""
        return self.lag > self.max_lag

    def start(self) -> None:
        """Start measuring (the first tick is ``interval`` seconds from now)."""
        if self._loop is not None:
            return
        loop = LoopingCall(self._tick)
        loop.clock = self.clock
        self._expected = self.clock.seconds() + self.interval
        self._loop = loop
        loop.start(self.interval, now=False)

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def stop(self, force: bool = False) -> None:
        """Stop measuring and forget the last lag."""
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        self.lag = 0.0

    def _tick(self) -> None:
        now = self.clock.seconds()
        was_busy = self.busy
        self.lag = max(0.0, now - self._expected)
        self._expected = now + self.interval
        if self.busy != was_busy:
            log.warn(
                "reactor lag {lag:.3f}s: {state}",
                lag=self.lag,
                state="refusing requests (503)" if self.busy else "accepting requests again",
            )

    def before(self, context: Any) -> None:
        """Refuse the request with 503 while the reactor lags."""
        if self.busy:
            self.refused += 1
            raise ServerUnavailable("server too busy")
