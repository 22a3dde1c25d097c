"""RepeatedWarning: a warning that repeats is logged once per interval, with a count.

What a peer controls (garbage on a PB port, a connection that never logs in) or what
repeats while a peer is down must not write one line per event: the first of a kind
is logged at once, the next ones within ``interval`` seconds are counted, and the first
one after the interval is logged with the count of those it stood for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger, LogLevel

__all__ = ["RepeatedWarning"]


class RepeatedWarning:
    """One ``log.warn`` line (or one at ``level``) per ``interval`` seconds (of
    ``seconds()``) per format."""

    def __init__(
        self,
        log: Logger,
        interval: float = 10.0,
        seconds: Callable[[], float] = time.monotonic,
        level: LogLevel = LogLevel.warn,
    ) -> None:
        self._log = log
        self.level = level
        self.interval = interval
        self._seconds = seconds
        #: format -> [time of its last line, events since not logged]
        self._runs: dict[str, list[float]] = {}
        #: Events counted and not logged (all formats, ever).
        self.suppressed = 0

    def warn(self, format: str, **fields: Any) -> None:
        """Log ``format`` now, or count it when it was logged less than an interval ago."""
        now = self._seconds()
        run = self._runs.get(format)
        if run is not None and now - run[0] < self.interval:
            run[1] += 1
            self.suppressed += 1
            return
        skipped = int(run[1]) if run is not None else 0
        self._runs[format] = [now, 0]
        if skipped:
            self._log.emit(
                self.level,
                format + " (and {repeats} more like it in the last {interval:g}s)",
                repeats=skipped,
                interval=self.interval,
                **fields,
            )
        else:
            self._log.emit(self.level, format, **fields)
