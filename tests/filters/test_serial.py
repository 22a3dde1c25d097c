"""SerialFilter: one request at a time per session, in arrival order."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.filters import SerialFilter
from pomelo_twisted.filters import serial as serial_module
from pomelo_twisted.interfaces import IAfterFilter, IBeforeFilter

from ..handlers.helpers import FakeSession, capture_log, context_for, make_dispatcher

LATER = "connector.entryHandler.later"
HANG = "connector.entryHandler.hang"
ECHO = "connector.entryHandler.echo"
A, B = FakeSession(1), FakeSession(2)


class SerialTests(SynchronousTestCase):
    """Ordering, isolation between sessions, timeouts, no leaks."""

    def setUp(self) -> None:
        self.dispatcher, self.handler, self.clock = make_dispatcher()
        self.serial = SerialFilter(self.clock, timeout=10.0)
        self.dispatcher.add_filter(self.serial)
        self.events = capture_log(self, serial_module)

    def collect(self, route: str, msg: Any, session: FakeSession, out: list[Any]) -> None:
        self.dispatcher.dispatch(route, msg, session).addCallback(out.append)

    def test_provides(self) -> None:
        """SerialFilter is a before- and an after-filter."""
        verifyObject(IBeforeFilter, self.serial)
        verifyObject(IAfterFilter, self.serial)

    def test_without_serial_reverse_order(self) -> None:
        """Control: without the filter, these handlers complete in reverse order."""
        dispatcher, _, clock = make_dispatcher()
        out: list[Any] = []
        for n, delay in enumerate((3, 2, 1)):
            dispatcher.dispatch(LATER, {"n": n, "delay": delay}, A).addCallback(out.append)
        clock.advance(3)
        self.assertEqual([r["n"] for r in out], [2, 1, 0])

    def test_arrival_order(self) -> None:
        """A session's requests start and answer in arrival order, one at a time."""
        out: list[Any] = []
        for n, delay in enumerate((3, 2, 1)):
            self.collect(LATER, {"n": n, "delay": delay}, A, out)
        self.assertEqual([m["n"] for _, m in self.handler.calls], [0])
        self.assertEqual(self.serial.queued(A), 3)
        self.clock.advance(3)
        self.assertEqual([m["n"] for _, m in self.handler.calls], [0, 1])
        self.clock.advance(2)
        self.clock.advance(1)
        self.assertEqual([r["n"] for r in out], [0, 1, 2])
        self.assertEqual([m["n"] for _, m in self.handler.calls], [0, 1, 2])
        self.assertEqual(len(self.serial), 0)  # the emptied queue is gone
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_other_session_not_blocked(self) -> None:
        """Another session's request runs while the first session's queue is busy."""
        out: list[Any] = []
        self.collect(HANG, 1, A, out)
        self.collect(ECHO, 2, A, out)
        self.collect(ECHO, "b", B, out)
        self.assertEqual(out, ["b"])
        self.handler.pending[0].callback("a1")
        self.assertEqual(out, ["b", "a1"])
        self.clock.advance(0)  # the turn passes in the next reactor turn
        self.assertEqual(out, ["b", "a1", 2])

    def test_frontends_keep_sessions_apart(self) -> None:
        """Equal session ids of two frontends are two sessions (a backend sees both)."""
        one, other = FakeSession(1, frontend_id="connector-1"), FakeSession(1, "connector-2")
        out: list[Any] = []
        self.collect(HANG, 1, one, out)
        self.collect(ECHO, "other", other, out)
        self.assertEqual(out, ["other"])
        self.assertEqual((self.serial.queued(one), self.serial.queued(other)), (1, 0))

    def test_notifies_serialized(self) -> None:
        """Notifies queue behind requests of the same session."""
        self.dispatcher.dispatch(HANG, 1, A)
        self.dispatcher.dispatch(ECHO, "notify", A, notify=True)
        self.assertEqual(len(self.handler.calls), 1)
        self.handler.pending[0].callback(None)
        self.clock.advance(0)
        self.assertEqual(self.handler.calls[-1], ("echo", "notify"))

    def test_synchronous_responses_in_order(self) -> None:
        """When a queued handler answers at once, the previous response still leaves first."""
        out: list[Any] = []
        self.collect(HANG, 1, A, out)
        self.collect(ECHO, 2, A, out)
        self.collect(ECHO, 3, A, out)
        self.handler.pending[0].callback(1)
        self.clock.advance(0)
        self.assertEqual(out, [1, 2, 3])

    def test_failures_release(self) -> None:
        """A failing handler or before-filter still hands the turn on."""
        out: list[Any] = []
        self.collect("connector.entryHandler.refuse", 1, A, out)
        self.collect(ECHO, 2, A, out)
        self.assertEqual(out, [{"code": 42, "msg": "refused"}, 2])
        self.assertEqual(len(self.serial), 0)

    def test_timeout_releases(self) -> None:
        """A request holding the turn over the timeout loses it, with a warning; its late
        after releases nobody else's turn."""
        out: list[Any] = []
        self.collect(HANG, 1, A, out)
        self.collect(HANG, 2, A, out)
        self.collect(ECHO, 3, A, out)
        self.clock.advance(9.9)
        self.assertEqual(len(self.handler.calls), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.handler.calls), 2)  # request 2 runs
        [event] = self.events
        self.assertEqual((event["route"], event["session"]), (HANG, A.id))
        self.handler.pending[0].callback("late")  # request 1's after comes late
        self.assertEqual(out, ["late"])
        self.assertEqual(len(self.handler.calls), 2)  # request 3 still waits for 2
        self.assertEqual(self.serial.queued(A), 2)
        self.handler.pending[1].callback("two")
        self.clock.advance(0)
        self.assertEqual(out, ["late", "two", 3])
        self.assertEqual(len(self.serial), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancelled_waiter_leaves(self) -> None:
        """A waiting request whose dispatch is cancelled leaves the queue, taking no turn."""
        self.dispatcher.dispatch(HANG, 1, A)
        waiting = self.dispatcher.dispatch(ECHO, 2, A)
        out: list[Any] = []
        self.collect(ECHO, 3, A, out)
        waiting.cancel()
        self.assertEqual(self.serial.queued(A), 2)
        self.handler.pending[0].callback(None)
        self.clock.advance(0)
        self.assertEqual(out, [3])
        self.assertEqual([m for _, m in self.handler.calls], [1, 3])
        self.assertEqual(len(self.serial), 0)
        self.assertEqual(self.successResultOf(waiting), {"code": 500, "msg": "request cancelled"})

    def test_long_queue_no_recursion(self) -> None:
        """Thousands of queued synchronous requests drain without deep recursion."""
        out: list[Any] = []
        self.collect(HANG, "first", A, out)
        for n in range(3000):
            self.collect(ECHO, n, A, out)
        self.handler.pending[0].callback("first")
        self.clock.advance(0)
        self.assertEqual(out, ["first", *range(3000)])
        self.assertEqual(len(self.serial), 0)

    def test_after_without_before(self) -> None:
        """An after with no ticket (its before never ran) changes nothing."""
        context = context_for(ECHO)
        self.assertEqual(self.serial.after(context, {"r": 1}), {"r": 1})
        self.assertIsNone(self.serial.before(context))
        self.assertEqual(self.serial.queued(context.session), 1)
        self.serial.after(context, None)
        self.serial.after(context, None)
        self.assertEqual(len(self.serial), 0)
