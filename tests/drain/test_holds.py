"""Calls to a restarting peer are held until its next incarnation logs in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.budget import DEADLINE
from pomelo_twisted.callcontext import CALL_CONTEXT
from pomelo_twisted.errors import RpcTimeout
from pomelo_twisted.rpc.pbhold import CallHolds


class HoldsCase(SynchronousTestCase):
    """A CallHolds on a Clock; ``sent`` records what reaches the peer."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.flying = 0
        self.link = True
        self.sent: list[tuple[str, str, float, Any, Any]] = []
        self.holds = CallHolds(self.clock, self.in_flight, self.link_up, self.send, limit=20.0)

    def in_flight(self, peer: str) -> int:
        return self.flying

    def link_up(self, peer: str, timeout: float) -> Deferred[bool]:
        return succeed(self.link)

    def send(
        self, peer: str, service: str, method: str, args: Sequence[Any], timeout: float
    ) -> Deferred[Any]:
        self.sent.append((peer, method, timeout, CALL_CONTEXT.get(), DEADLINE.get()))
        return succeed("answer")


class HoldTests(HoldsCase):
    """Held calls, the hold limit, and the answer of hold."""

    def test_held_until_released_then_sent_with_what_is_left(self) -> None:
        """A call made during the hold waits; released 2 s later it is sent with the
        8 s left of its 10 s timeout, and its answer is the caller's."""
        self.holds.hold("chat-1", settle=1.0)
        self.assertIn("chat-1", self.holds)
        d = self.holds.call("chat-1", "chatRemote", "add", [1], 10.0)
        self.clock.advance(2)
        self.assertEqual(self.sent, [])
        self.holds.release("chat-1")
        self.assertEqual(self.successResultOf(d), "answer")
        self.assertEqual(self.sent[0][:3], ("chat-1", "add", 8.0))
        self.assertEqual(self.holds.held_calls, 1)
        self.assertNotIn("chat-1", self.holds)

    def test_the_callers_context_goes_with_the_call(self) -> None:
        """The call context (request id) and deadline current at the call travel with it."""
        self.holds.hold("chat-1", settle=1.0)
        token = CALL_CONTEXT.set({"rid": "r-1"})
        deadline = DEADLINE.set(99.0)
        try:
            d = self.holds.call("chat-1", "s", "m", [], 5.0)
        finally:
            CALL_CONTEXT.reset(token)
            DEADLINE.reset(deadline)
        self.holds.release("chat-1")
        self.successResultOf(d)
        self.assertEqual(self.sent[0][3:], ({"rid": "r-1"}, 99.0))

    def test_a_held_call_ends_at_its_deadline(self) -> None:
        """A call whose own timeout passes while held fails with RpcTimeout, unsent."""
        self.holds.hold("chat-1", settle=1.0)
        d = self.holds.call("chat-1", "chatRemote", "add", [], 3.0)
        self.clock.advance(3)
        failure = self.failureResultOf(d, RpcTimeout)
        self.assertIn("held 3s while chat-1 restarted", failure.getErrorMessage())
        self.holds.release("chat-1")
        self.assertEqual(self.sent, [])

    def test_the_hold_limit_ends_the_hold(self) -> None:
        """After the hold limit the held calls are sent anyway, and new ones go at once."""
        self.holds.hold("chat-1", settle=1.0)
        d = self.holds.call("chat-1", "s", "m", [], 60.0)
        self.clock.advance(20)
        self.assertEqual(self.successResultOf(d), "answer")
        self.assertEqual(self.sent[0][2], 40.0)
        self.assertNotIn("chat-1", self.holds)

    def test_release_without_a_link_sends_to_fail_fast(self) -> None:
        """A peer removed meanwhile: the held calls go on (and fail as the transport
        fails a call to a peer it lacks) without waiting for a link."""
        self.holds.hold("chat-1", settle=1.0)
        self.link = False
        d = self.holds.call("chat-1", "s", "m", [], 5.0)
        self.holds.release("chat-1", back=False)
        self.successResultOf(d)
        self.assertEqual(len(self.sent), 1)

    def test_hold_answers_once_no_call_is_in_flight(self) -> None:
        """hold fires with 0 once the calls sent before it are answered."""
        self.flying = 2
        d = self.holds.hold("chat-1", settle=5.0)
        self.clock.advance(0.5)
        self.assertNoResult(d)
        self.flying = 0
        self.clock.advance(0.01)
        self.assertEqual(self.successResultOf(d), 0)

    def test_hold_answers_after_settle_with_what_is_left(self) -> None:
        """A peer whose calls do not end: hold answers after ``settle`` with their count."""
        self.flying = 1
        d = self.holds.hold("chat-1", settle=2.0)
        self.clock.pump([0.01] * 201)
        self.assertEqual(self.successResultOf(d), 1)
