"""TooBusyFilter: 503 while the reactor lags, measured by a LoopingCall on the clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.filters import TooBusyFilter
from pomelo_twisted.interfaces import IBeforeFilter, IComponent

from ..handlers.helpers import FakeSession, context_for, make_dispatcher

ECHO = "connector.entryHandler.echo"


class TooBusyTests(SynchronousTestCase):
    """Lag measurement and refusal."""

    def test_provides(self) -> None:
        """TooBusyFilter is a before-filter and a component."""
        flt = TooBusyFilter(Clock())
        verifyObject(IBeforeFilter, flt)
        verifyObject(IComponent, flt)

    def test_late_tick_refuses_then_recovers(self) -> None:
        """A tick arriving late refuses requests with 503; on-time ticks accept them again."""
        dispatcher, _, clock = make_dispatcher()
        busy = TooBusyFilter(clock, max_lag=0.07, interval=0.1)
        dispatcher.add_before(busy)
        busy.start()
        self.addCleanup(busy.stop)
        clock.advance(0.1)
        self.assertEqual(busy.lag, 0.0)
        self.assertEqual(self.successResultOf(dispatcher.dispatch(ECHO, 1, FakeSession(1))), 1)
        clock.advance(0.1 + 0.2)  # the reactor was blocked: the tick runs 0.2s late
        self.assertAlmostEqual(busy.lag, 0.2)
        self.assertTrue(busy.busy)
        d = dispatcher.dispatch(ECHO, 1, FakeSession(1))
        self.assertEqual(self.successResultOf(d), {"code": 503, "msg": "server too busy"})
        self.assertEqual(busy.refused, 1)
        for _ in range(3):
            clock.advance(0.1)
        self.assertFalse(busy.busy)
        self.assertEqual(self.successResultOf(dispatcher.dispatch(ECHO, 2, FakeSession(1))), 2)

    def test_small_lag_tolerated(self) -> None:
        """A lag within max_lag refuses nothing."""
        clock = Clock()
        busy = TooBusyFilter(clock, max_lag=0.07, interval=0.1)
        busy.start()
        self.addCleanup(busy.stop)
        clock.advance(0.15)
        self.assertAlmostEqual(busy.lag, 0.05)
        busy.before(context_for(ECHO))  # accepted: no HandlerError

    def test_idle_before_start(self) -> None:
        """Before start, nothing is measured and nothing refused."""
        busy = TooBusyFilter(Clock())
        busy.before(context_for(ECHO))  # accepted: no HandlerError

    def test_stop(self) -> None:
        """stop() ends the LoopingCall and forgets the lag; start() is idempotent."""
        clock = Clock()
        busy = TooBusyFilter(clock)
        busy.start()
        busy.start()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(1.0)
        self.assertTrue(busy.busy)
        busy.stop(force=False)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertFalse(busy.busy)
        busy.stop()
        self.assertRaises(HandlerError, _refuse, busy)


def _refuse(busy: TooBusyFilter) -> None:
    busy.lag = 1.0
    busy.before(context_for(ECHO))
