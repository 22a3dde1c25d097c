"""The drain sequence, step by step, on a Clock."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.drain.sequence import KICK_RESTARTING, DrainSequence


class SequenceTests(SynchronousTestCase):
    """Listener closed, then discovery told, in-flight finished, kicked, handed off."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.steps: list[str] = []
        self.flying = 0
        self.announced: Deferred[str] = Deferred()
        self.kicks: list[str] = []
        self.sequence = DrainSequence(
            self.clock,
            "connector-1",
            close_listener=lambda: self.steps.append("closed"),
            announce=self.announce,
            in_flight=lambda: self.flying,
            kick_all=self.kick_all,
            hand_off=lambda: self.steps.append("handoff") or 12,
        )

    def announce(self, grace: float) -> Deferred[str]:
        self.steps.append(f"announce {grace:g}")
        return self.announced

    def kick_all(self, reason: str) -> int:
        self.steps.append("kick")
        self.kicks.append(reason)
        return 3

    def test_steps_in_order(self) -> None:
        """The listener closes first; nothing is kicked before discovery has answered
        and the requests in flight have finished; the report tells each step."""
        self.flying = 2
        d = self.sequence.run(5.0)
        self.assertEqual(self.steps, ["closed", "announce 5"])
        self.assertEqual(self.sequence.step, "announcing")
        self.announced.callback("restarting")
        self.clock.advance(1.0)
        self.assertEqual(self.sequence.step, "finishing")
        self.assertNoResult(d)
        self.flying = 0
        self.clock.advance(0.01)
        self.assertEqual(self.steps, ["closed", "announce 5", "kick", "handoff"])
        self.assertEqual(self.kicks, [KICK_RESTARTING])
        report = self.successResultOf(d)
        self.assertEqual(
            report,
            {"state": "restarting", "left": 0, "waited": 1.01, "kicked": 3, "handoff": 12},
        )
        self.assertEqual(self.sequence.step, "drained")

    def test_grace_bounds_the_wait(self) -> None:
        """Requests still in flight at the end of the grace are cut: the kick goes."""
        self.flying = 1
        self.announced.callback("")
        d = self.sequence.run(2.0)
        self.clock.pump([0.01] * 201)
        report = self.successResultOf(d)
        self.assertEqual((report["left"], report["state"]), (1, "draining"))
        self.assertEqual(self.kicks, ["server restarting"])

    def test_unanswered_announcement_is_bounded(self) -> None:
        """Discovery that never answers (a hung peer) delays the drain by the grace plus
        one second at most; the drain goes on."""
        d = self.sequence.run(2.0)
        self.clock.advance(2.9)
        self.assertEqual(self.sequence.step, "announcing")
        self.clock.advance(0.1)
        report = self.successResultOf(d)
        self.assertEqual((report["state"], report["kicked"]), ("draining", 3))

    def test_runs_once(self) -> None:
        """A second drain (SIGTERM during a drain command) joins the first."""
        first = self.sequence.run(1.0)
        second = self.sequence.run(9.0)
        self.announced.callback("draining")
        self.assertEqual(self.successResultOf(first), self.successResultOf(second))
        self.assertEqual(self.steps.count("closed"), 1)
        self.assertEqual(self.successResultOf(self.sequence.run(1.0))["kicked"], 3)

    def test_failed_step_still_ends(self) -> None:
        """A step that fails is logged; the drain ends (the process still stops)."""
        self.announced.errback(RuntimeError("boom"))
        report = self.successResultOf(self.sequence.run(1.0))
        self.assertIn("boom", report["error"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_negative_grace_refused(self) -> None:
        """A negative grace is a ValueError naming it."""
        self.assertRaises(ValueError, self.sequence.run, -1.0)
