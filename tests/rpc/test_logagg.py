"""RepeatedWarning: one line per interval per kind, with the count of those it stood for."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.rpc.logagg import RepeatedWarning


class RepeatedWarningTests(SynchronousTestCase):
    """Aggregation of repeated warnings on a Clock."""

    def test_repeats_within_the_interval_are_counted(self) -> None:
        """The first warning is logged; repeats within the interval are counted and the
        first after it says how many it stood for; another format is its own run."""
        clock = Clock()
        warnings = RepeatedWarning(Logger(), interval=10.0, seconds=clock.seconds)
        with capturedLogs() as events:
            for _ in range(1000):
                warnings.warn("dropped {peer}", peer="a")
            warnings.warn("other {x}", x=1)
            clock.advance(10)
            warnings.warn("dropped {peer}", peer="b")
        self.assertEqual(len(events), 3)
        self.assertEqual(warnings.suppressed, 999)
        last = events[-1]
        self.assertEqual((last["repeats"], last["peer"]), (999, "b"))
        self.assertIn("999 more like it", last["log_format"].format(**last))

    def test_level(self) -> None:
        """An aggregator made for info logs its lines at info, counts the same way."""
        clock = Clock()
        lines = RepeatedWarning(Logger(), seconds=clock.seconds, level=LogLevel.info)
        with capturedLogs() as events:
            for _ in range(5):
                lines.warn("frontend {f} not asked", f="c1")
        self.assertEqual([e["log_level"] for e in events], [LogLevel.info])
        self.assertEqual(lines.suppressed, 4)
