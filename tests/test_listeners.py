"""Listeners: subscribe, unsubscribe, notify in order, a failing listener contained."""

from __future__ import annotations

from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.listeners import Listeners


class ListenersTests(SynchronousTestCase):
    """One fan-out of events to callables."""

    def test_notify_in_order_and_unsubscribe(self) -> None:
        """Listeners get the arguments in subscription order; an unsubscribed one no longer."""
        listeners: Listeners[[str, int]] = Listeners("test")
        seen: list[tuple[str, str, int]] = []
        first = listeners.subscribe(lambda a, b: seen.append(("first", a, b)))
        listeners.subscribe(lambda a, b: seen.append(("second", a, b)))
        self.assertEqual(len(listeners), 2)
        listeners.notify("x", 1)
        first()
        first()  # twice is harmless
        listeners.notify("y", 2)
        self.assertEqual(seen, [("first", "x", 1), ("second", "x", 1), ("second", "y", 2)])

    def test_a_failing_listener_is_logged_and_the_others_run(self) -> None:
        """A listener that raises is logged at error, naming what it listened to."""
        listeners: Listeners[[str]] = Listeners("membership")
        seen: list[str] = []

        def broken(event: str) -> None:
            raise RuntimeError("listener bug")

        listeners.subscribe(broken)
        listeners.subscribe(seen.append)
        with capturedLogs() as events:
            listeners.notify("up")
        self.assertEqual(seen, ["up"])
        self.assertEqual([e["log_level"] for e in events], [LogLevel.error])
        self.assertIn("membership listener", events[0]["log_format"].format(**events[0]))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_empty_is_false(self) -> None:
        """No listener: falsy (callers may skip building an event)."""
        self.assertFalse(Listeners("test"))
