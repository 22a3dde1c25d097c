"""TimeoutFilter: slow-request warnings and the 504 deadline."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.filters import TimeoutFilter
from pomelo_twisted.filters import timeout as timeout_module
from pomelo_twisted.interfaces import IAfterFilter, IBeforeFilter

from ..handlers.helpers import FakeSession, capture_log, context_for, make_dispatcher

LATER = "connector.entryHandler.later"


class TimeoutFilterTests(SynchronousTestCase):
    """Warnings on the clock, cancelled by after; abort_after sets context.timeout."""

    def setUp(self) -> None:
        self.events = capture_log(self, timeout_module)

    def test_provides(self) -> None:
        """TimeoutFilter is a before- and an after-filter."""
        flt = TimeoutFilter(None)  # type: ignore[arg-type]
        verifyObject(IBeforeFilter, flt)
        verifyObject(IAfterFilter, flt)

    def test_warns_when_slow(self) -> None:
        """A request still running after warn_after logs one warning naming route and time."""
        dispatcher, _, clock = make_dispatcher()
        dispatcher.add_filter(TimeoutFilter(clock, warn_after=3.0))
        clock.advance(100)
        d = dispatcher.dispatch(LATER, {"delay": 5}, FakeSession(1))
        clock.advance(3)
        [event] = self.events
        self.assertEqual((event["route"], event["elapsed"]), (LATER, 3.0))
        clock.advance(2)
        self.assertEqual(self.successResultOf(d), {"delay": 5})
        self.assertEqual(len(self.events), 1)

    def test_quiet_when_fast(self) -> None:
        """A request finishing before warn_after logs nothing and leaves no timer."""
        dispatcher, _, clock = make_dispatcher()
        dispatcher.add_filter(TimeoutFilter(clock, warn_after=3.0))
        d = dispatcher.dispatch(LATER, {"delay": 2.9}, FakeSession(1))
        clock.advance(2.9)
        self.successResultOf(d)
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(10)
        self.assertEqual(self.events, [])

    def test_abort_after(self) -> None:
        """With abort_after, a slower handler is answered 504 by the dispatcher."""
        dispatcher, _, clock = make_dispatcher()
        dispatcher.add_filter(TimeoutFilter(clock, warn_after=1.0, abort_after=2.0))
        d = dispatcher.dispatch(LATER, {"delay": 5}, FakeSession(1))
        clock.advance(2)
        self.assertEqual(self.successResultOf(d), {"code": 504, "msg": "request timed out"})
        self.assertEqual(len(self.events), 1)  # the warning at 1s
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_shorter_timeout_kept(self) -> None:
        """abort_after never lengthens a shorter timeout set earlier; it shortens a longer one."""
        context = context_for(LATER)
        flt = TimeoutFilter(Clock(), abort_after=5.0)
        context.timeout = 1.0
        flt.before(context)
        self.assertEqual(context.timeout, 1.0)
        context.timeout = 9.0
        flt.before(context)
        self.assertEqual(context.timeout, 5.0)
