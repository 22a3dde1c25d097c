"""TimingFilter: per-route count, total, max and mean latency."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.filters import TimingFilter
from pomelo_twisted.interfaces import IAfterFilter

from ..handlers.helpers import FakeSession, make_dispatcher

LATER = "connector.entryHandler.later"
ECHO = "connector.entryHandler.echo"


class TimingFilterTests(SynchronousTestCase):
    """Latency statistics on the clock."""

    def test_provides(self) -> None:
        """TimingFilter is an after-filter."""
        verifyObject(IAfterFilter, TimingFilter(None))  # type: ignore[arg-type]

    def test_stats(self) -> None:
        """Each route's count, total, max and mean, measured from dispatch to after."""
        dispatcher, _, clock = make_dispatcher()
        timing = TimingFilter(clock)
        dispatcher.add_filter(timing)
        self.assertEqual(timing.stats(), {})
        for delay in (1.0, 3.0):
            dispatcher.dispatch(LATER, {"delay": delay}, FakeSession(1))
        clock.advance(1)
        clock.advance(2)
        dispatcher.dispatch(ECHO, 1, FakeSession(1))
        dispatcher.dispatch("connector.entryHandler.refuse", 1, FakeSession(1))
        self.assertEqual(
            timing.stats(),
            {
                ECHO: {"count": 1, "total": 0.0, "max": 0.0, "mean": 0.0},
                LATER: {"count": 2, "total": 4.0, "max": 3.0, "mean": 2.0},
                "connector.entryHandler.refuse": {
                    "count": 1,
                    "total": 0.0,
                    "max": 0.0,
                    "mean": 0.0,
                },
            },
        )
        timing.reset()
        self.assertEqual(timing.stats(), {})

    def test_response_unchanged(self) -> None:
        """The response passes through unchanged."""
        dispatcher, _, clock = make_dispatcher()
        dispatcher.add_filter(TimingFilter(clock))
        self.assertEqual(self.successResultOf(dispatcher.dispatch(ECHO, 7, FakeSession(1))), 7)
