"""CronService on a task.Clock: times, failures, overlap, add and remove at run time."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cron import CronService, CronSpec

from .test_expression import at


class Jobs:
    """A cron handler recording the clock's time of each run."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.pending: list[Deferred[None]] = []

    def tick(self) -> None:
        self.times.append(self.clock.seconds())

    def boom(self) -> None:
        self.times.append(self.clock.seconds())
        raise ZeroDivisionError("boom")

    def slow(self) -> Deferred[None]:
        self.times.append(self.clock.seconds())
        d: Deferred[None] = Deferred()
        self.pending.append(d)
        return d

    async def later(self) -> None:
        self.times.append(self.clock.seconds())


def spec(cron_id: str, time: str, action: str) -> CronSpec:
    return CronSpec.parse({"id": cron_id, "time": time, "action": action})


class CronServiceTests(SynchronousTestCase):
    """Scheduling on the injected clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.jobs = Jobs(self.clock)
        self.crons = CronService(self.clock, {"jobs": self.jobs}, "chat-1")

    def start_at(self, iso: str) -> None:
        self.clock.advance(at(iso))
        self.crons.startService()
        self.addCleanup(self.crons.stopService)

    def run_for(self, seconds: int) -> None:
        for _ in range(seconds):
            self.clock.advance(1)

    def test_six_fields_across_minute_and_hour(self) -> None:
        """'*/20 * * * * *' from 23:59:30 fires at :40, :00 of the next hour and day, :20..."""
        self.crons.add(spec("c", "*/20 * * * * *", "jobs.tick"))
        self.start_at("2026-01-01T23:59:30")
        self.run_for(110)
        expected = ["23:59:40", "00:00:00", "00:00:20", "00:00:40", "00:01:00", "00:01:20"]
        days = ["2026-01-01"] + ["2026-01-02"] * 5
        self.assertEqual(
            self.jobs.times, [at(f"{d}T{t}") for d, t in zip(days, expected, strict=True)]
        )

    def test_five_fields_every_minute(self) -> None:
        """'* * * * *' fires at second 0 of each minute."""
        self.crons.add(spec("m", "* * * * *", "jobs.tick"))
        self.start_at("2026-01-01T10:58:30")
        self.run_for(150)
        self.assertEqual(
            self.jobs.times,
            [at("2026-01-01T10:59:00"), at("2026-01-01T11:00:00"), at("2026-01-01T11:01:00")],
        )

    def test_failing_action_is_logged_and_keeps_its_schedule(self) -> None:
        """An action raising is logged with the cron's id and runs again at its next time."""
        self.crons.add(spec("broken", "* * * * * *", "jobs.boom"))
        self.start_at("2026-01-01T00:00:00")
        with capturedLogs() as events:
            self.run_for(3)
        self.assertEqual(len(self.jobs.times), 3)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 3)
        failures = [e for e in events if e.get("log_level") == LogLevel.critical]
        self.assertEqual(len(failures), 3)
        self.assertEqual(failures[0]["cron"], "broken")
        self.assertEqual(self.crons.jobs["broken"].failures, 3)

    def test_running_action_is_not_started_twice(self) -> None:
        """A run still going at the next time skips that time; the following one runs."""
        self.crons.add(spec("slow", "* * * * * *", "jobs.slow"))
        self.start_at("2026-01-01T00:00:00")
        self.run_for(3)
        job = self.crons.jobs["slow"]
        self.assertEqual((len(self.jobs.times), job.skipped), (1, 2))
        self.assertTrue(job.describe()["running"])
        self.jobs.pending[0].callback(None)
        self.run_for(1)
        self.assertEqual(len(self.jobs.times), 2)
        self.assertEqual(job.runs, 2)

    def test_coroutine_action(self) -> None:
        """An async def action runs at its times too."""
        self.crons.add(spec("a", "*/2 * * * * *", "jobs.later"))
        self.start_at("2026-01-01T00:00:00")
        self.run_for(4)
        self.assertEqual(self.jobs.times, [at("2026-01-01T00:00:02"), at("2026-01-01T00:00:04")])
        self.assertFalse(self.crons.jobs["a"].describe()["running"])

    def test_late_reactor_skips_missed_times(self) -> None:
        """A clock jumping 10 s (a busy process) runs the cron once, then on its schedule."""
        self.crons.add(spec("c", "* * * * * *", "jobs.tick"))
        self.start_at("2026-01-01T00:00:00")
        self.clock.advance(10)
        self.run_for(1)
        self.assertEqual(self.jobs.times, [at("2026-01-01T00:00:10"), at("2026-01-01T00:00:11")])

    def test_add_at_run_time(self) -> None:
        """A cron added while running fires from its next time on."""
        self.start_at("2026-01-01T00:00:00")
        self.run_for(5)
        job = self.crons.add(spec("new", "* * * * * *", "jobs.tick"))
        self.assertEqual(job.describe()["next"], "2026-01-01T00:00:06+00:00")
        self.run_for(2)
        self.assertEqual(self.jobs.times, [at("2026-01-01T00:00:06"), at("2026-01-01T00:00:07")])

    def test_remove_at_run_time(self) -> None:
        """A removed cron fires no more and leaves no pending call."""
        self.crons.add(spec("c", "* * * * * *", "jobs.tick"))
        self.start_at("2026-01-01T00:00:00")
        self.run_for(2)
        removed = self.crons.remove("c")
        assert removed is not None
        self.assertEqual(removed.runs, 2)
        self.run_for(5)
        self.assertEqual(len(self.jobs.times), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIsNone(self.crons.remove("c"))

    def test_stop_cancels_every_time(self) -> None:
        """Stopping the service leaves nothing scheduled on the clock."""
        self.crons.add(spec("c", "* * * * * *", "jobs.tick"))
        self.crons.add(spec("d", "0 0 * * * *", "jobs.tick"))
        self.start_at("2026-01-01T00:00:00")
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)
        self.crons.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_unknown_handler_or_method(self) -> None:
        """An action naming no handler, or no public method of one, is refused and named."""
        with self.assertRaises(ValueError) as caught:
            self.crons.add(spec("x", "* * * * * *", "nobody.tick"))
        self.assertIn("no cron handler 'nobody' (cron handlers: jobs)", str(caught.exception))
        with self.assertRaises(ValueError) as caught:
            self.crons.add(spec("y", "* * * * * *", "jobs.missing"))
        self.assertIn("has no public method 'missing'", str(caught.exception))
        self.assertEqual(self.crons.jobs, {})

    def test_duplicate_id(self) -> None:
        """A second cron with a taken id is refused."""
        self.crons.add(spec("c", "* * * * * *", "jobs.tick"))
        with self.assertRaises(ValueError):
            self.crons.add(spec("c", "0 * * * * *", "jobs.tick"))

    def test_replace_handlers(self) -> None:
        """New handlers serve the next runs; handlers lacking an action are refused whole."""
        self.crons.add(spec("c", "* * * * * *", "jobs.tick"))
        self.start_at("2026-01-01T00:00:00")
        with self.assertRaises(ValueError) as caught:
            self.crons.replace_handlers({"other": self.jobs})
        self.assertIn("cron 'c' (jobs.tick)", str(caught.exception))
        newer = Jobs(self.clock)
        self.crons.replace_handlers({"jobs": newer})
        self.run_for(1)
        self.assertEqual((len(self.jobs.times), len(newer.times)), (0, 1))

    def test_describe(self) -> None:
        """describe() gives each cron as in the file, its next time and counters."""
        self.crons.add(spec("c", "0 0 * * * *", "jobs.tick"))
        self.start_at("2026-01-01T00:30:00")
        described: list[dict[str, Any]] = self.crons.describe()
        self.assertEqual(
            described,
            [
                {
                    "id": "c",
                    "time": "0 0 * * * *",
                    "action": "jobs.tick",
                    "next": "2026-01-01T01:00:00+00:00",
                    "runs": 0,
                    "failures": 0,
                    "skipped": 0,
                    "running": False,
                }
            ],
        )
