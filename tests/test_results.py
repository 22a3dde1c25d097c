"""settle and call_settled: one rule for a value, a Deferred or a coroutine."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.results import call_settled, is_later, settle


class SettleTests(SynchronousTestCase):
    """A plain value stays plain; anything later is a Deferred."""

    def test_plain_value_is_returned_as_is(self) -> None:
        """A plain value is not wrapped in a Deferred."""
        body = {"a": 1}
        self.assertIs(settle(body), body)
        self.assertFalse(is_later(body))

    def test_deferred_is_returned_as_is(self) -> None:
        """A Deferred is the same Deferred."""
        d = succeed(1)
        self.assertIs(settle(d), d)
        self.assertTrue(is_later(d))

    def test_coroutine_becomes_a_deferred(self) -> None:
        """A coroutine runs as a Deferred of its result."""

        async def answer() -> int:
            return 7

        d = settle(answer())
        self.assertIsInstance(d, Deferred)
        self.assertEqual(self.successResultOf(d), 7)

    def test_failure_becomes_a_failed_deferred(self) -> None:
        """A Failure returned as a value is a failure."""
        d = settle(Failure(KeyError("x")))
        self.failureResultOf(d, KeyError)

    def test_call_settled_turns_a_raise_into_a_failed_deferred(self) -> None:
        """An exception raised by the call is a failed Deferred, not a raise."""

        def boom() -> None:
            raise ValueError("no")

        self.failureResultOf(call_settled(boom), ValueError)
        self.assertEqual(call_settled(lambda x: x + 1, 1), 2)
