"""Runner, Bot and scenarios on a Clock: ramp-up, duration, pacing, and the example scenarios
driving the example game in memory."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.bots import Bot, BotContext, PushTimeout, RateLimiter, Runner, Stats
from pomelo_twisted.bots.scenario import ScenarioError, load_scenario
from pomelo_twisted.bots.workers import RunConfig, worker_indices
from pomelo_twisted.testing import GameHarness

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_game"
ENTRY = "connector.entryHandler.entry"
ECHO = "connector.entryHandler.echo"


async def echo_forever(bot: Bot, context: BotContext) -> None:
    """Enter, then echo every 0.1 s until the run ends."""
    await bot.request(ENTRY, {"uid": f"bot-{context.index}"})
    while bot.running:
        await bot.request(ECHO, {"i": context.index})
        await bot.think(0.1)


class RunnerCase(SynchronousTestCase):
    """The example game in memory, and a runner on its clock."""

    def setUp(self) -> None:
        self.game = GameHarness(EXAMPLE)
        self.addCleanup(self.game.stop)

    def runner(self, scenario: Any, **options: Any) -> Runner:
        options.setdefault("bots", 4)
        options.setdefault("duration", 5.0)
        return Runner(
            self.game.clock, scenario, "memory", connector=self.game.bot_connector(), **options
        )

    def play(self, runner: Runner, until: float, step: float = 0.05) -> Deferred[Stats]:
        d = runner.run()
        self.game.settle()
        elapsed = 0.0
        while elapsed < until and not d.called:
            self.game.advance(step)
            elapsed += step
        return d


class RampUpTests(RunnerCase):
    """When bots start and stop."""

    def test_bots_start_evenly_over_the_ramp_up(self) -> None:
        """Bot i connects at i * ramp_up / bots seconds."""
        runner = self.runner(echo_forever, bots=4, ramp_up=2.0)
        runner.run()
        self.game.settle()
        started = [runner.stats.bots_started]
        for _ in range(3):
            self.game.advance(0.5)
            started.append(runner.stats.bots_started)
        self.assertEqual(started, [1, 2, 3, 4])

    def test_a_worker_keeps_the_common_timetable(self) -> None:
        """A worker's bots (every W-th index) start when they would in a single process."""
        runner = self.runner(echo_forever, bots=4, ramp_up=2.0, indices=worker_indices(4, 1, 2))
        runner.run()
        self.game.advance(0.49)
        self.assertEqual(runner.stats.bots_started, 0)
        self.game.advance(0.01)
        self.assertEqual(runner.stats.bots_started, 1)
        self.game.advance(1.0)
        self.assertEqual(runner.stats.bots_started, 2)

    def test_the_run_ends_at_the_duration(self) -> None:
        """At the duration scenarios stop looping; every bot finishes and disconnects."""
        runner = self.runner(echo_forever, bots=3, duration=2.0)
        d = self.play(runner, until=5.0)
        stats = self.successResultOf(d)
        self.assertFalse(runner.running)
        self.assertEqual((stats.bots_started, stats.bots_finished), (3, 3))
        self.assertEqual(stats.bots_connected, 0)
        self.assertEqual(stats.routes[ENTRY].requests, 3)
        # 3 bots x one echo per ~0.1 s for 2 s, not more.
        self.assertTrue(45 <= stats.routes[ECHO].requests <= 63, stats.routes[ECHO].requests)
        self.assertEqual(stats.totals()[1], 0)

    def test_bots_past_the_duration_never_start(self) -> None:
        """A ramp-up longer than the run: the late bots are not started."""
        runner = self.runner(echo_forever, bots=4, ramp_up=8.0, duration=3.0)
        stats = self.successResultOf(self.play(runner, until=6.0))
        self.assertEqual(stats.bots_started, 2)

    def test_a_run_whose_bots_all_finish_ends_early(self) -> None:
        """One-shot scenarios: the run ends when the last bot is done."""

        async def once(bot: Bot, context: BotContext) -> None:
            await bot.request(ENTRY, {"uid": f"once-{context.index}"})

        runner = self.runner(once, bots=3, duration=60.0)
        stats = self.successResultOf(self.play(runner, until=1.0))
        self.assertEqual(stats.routes[ENTRY].requests, 3)
        self.assertLess(self.game.clock.seconds(), 1.0)


class FailureTests(RunnerCase):
    """What goes wrong is counted, not raised."""

    def test_connection_failures_are_counted(self) -> None:
        """A bot that cannot connect counts as a connection failure; the run goes on."""
        runner = Runner(
            self.game.clock,
            echo_forever,
            "tcp:nowhere:1",
            bots=2,
            duration=1.0,
            connector=lambda *a, **k: fail(ConnectionRefusedError()),
        )
        stats = self.successResultOf(self.play(runner, until=1.0))
        self.assertEqual((stats.connection_failures, stats.bots_finished), (2, 2))

    def test_a_failing_scenario_is_counted_by_type(self) -> None:
        """A scenario that raises is counted under its exception type and logged."""

        async def broken(bot: Bot, context: BotContext) -> None:
            raise KeyError("oops")

        stats = self.successResultOf(self.play(self.runner(broken, bots=2), until=1.0))
        self.assertEqual(stats.scenario_errors, {"KeyError": 2})
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)

    def test_error_responses_are_counted_by_code(self) -> None:
        """An error body ({code: 500}) is an error of its route, under its code."""

        async def fails(bot: Bot, context: BotContext) -> None:
            body = await bot.request("connector.entryHandler.fail", {})
            assert body["code"] == 500

        stats = self.successResultOf(self.play(self.runner(fails, bots=2), until=1.0))
        self.assertEqual(stats.routes["connector.entryHandler.fail"].errors, {"500": 2})
        self.flushLoggedErrors(RuntimeError)

    def test_wait_push_times_out(self) -> None:
        """wait_push raises PushTimeout when no push comes; the scenario error is counted."""

        async def waits(bot: Bot, context: BotContext) -> None:
            await bot.wait_push("onNothing", timeout=1.0)

        stats = self.successResultOf(self.play(self.runner(waits, bots=1), until=2.0))
        self.assertEqual(stats.scenario_errors, {"PushTimeout": 1})
        self.assertTrue(issubclass(PushTimeout, Exception))


class PacingTests(RunnerCase):
    """--rate paces every bot of the run together."""

    def test_rate_limits_requests_per_second(self) -> None:
        """Ten eager bots under rate=20/s send about 20 requests a second."""

        async def eager(bot: Bot, context: BotContext) -> None:
            while bot.running:
                await bot.request(ECHO, {})

        runner = self.runner(eager, bots=10, duration=3.0, rate=20.0)
        stats = self.successResultOf(self.play(runner, until=6.0, step=0.01))
        self.assertTrue(55 <= stats.routes[ECHO].requests <= 72, stats.routes[ECHO].requests)

    def test_limiter_spaces_turns(self) -> None:
        """The limiter lets one request go now, the next 1/rate later."""
        from twisted.internet.task import Clock

        clock = Clock()
        limiter = RateLimiter(clock, 4.0)
        self.assertIsNone(limiter.acquire())
        second = limiter.acquire()
        assert second is not None
        clock.advance(0.249)
        self.assertNoResult(second)
        clock.advance(0.001)
        self.successResultOf(second)
        self.assertRaises(ValueError, RateLimiter, clock, 0)


class ExampleScenarioTests(RunnerCase):
    """The example game's bots, against the example game in memory."""

    def test_chat_scenario_delivers_every_push(self) -> None:
        """20 chat bots in 2 rooms for 10 s: no error, no gap, every own message back."""
        scenario = load_scenario(str(EXAMPLE / "bots" / "chat.py"))
        runner = self.runner(scenario, bots=20, ramp_up=1.0, duration=10.0)
        stats = self.successResultOf(self.play(runner, until=20.0))
        self.assertEqual(stats.totals()[1], 0)
        self.assertEqual((stats.scenario_errors, stats.counters), ({}, {}))
        sends = stats.routes["chat.chatHandler.send"].requests
        self.assertGreater(sends, 100)
        # Every member of a full room gets every message of the room: about 10 per send.
        self.assertTrue(8 * sends <= stats.pushes["onChat"] <= 10 * sends, stats.pushes)

    def test_echo_scenario_counts_no_mismatch(self) -> None:
        """Echo bots get their bodies back."""
        scenario = load_scenario("example_game.bots.echo")
        stats = self.successResultOf(self.play(self.runner(scenario, bots=5), until=8.0))
        self.assertGreater(stats.routes[ECHO].requests, 100)
        self.assertEqual((stats.totals()[1], stats.counters), (0, {}))


class LoadScenarioTests(SynchronousTestCase):
    """Finding the scenario a SCENARIO argument names."""

    def write(self, text: str) -> Path:
        folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder)
        path = folder / "scenario_file.py"
        path.write_text(text)
        return path

    def test_file_module_and_names(self) -> None:
        """A file or a module, with or without :name, gives the function or class."""
        self.assertEqual(load_scenario(str(EXAMPLE / "bots" / "echo.py")).__name__, "scenario")
        self.assertEqual(load_scenario("example_game.bots.chat").__name__, "ChatBot")
        self.assertEqual(load_scenario("example_game.bots.chat:ChatBot").__name__, "ChatBot")

    def test_errors_name_the_problem(self) -> None:
        """Missing files, names that are not scenarios and ambiguity are explained."""
        two = self.write("async def a(bot, c): pass\nasync def b(bot, c): pass\n")
        cases = {
            "nowhere/missing.py": "no scenario file",
            "no_such_module_xyz": "cannot import",
            f"{two}": "defines 2 scenarios (a, b)",
            f"{two}:c": "has no 'c'",
            "example_game.bots.chat:ROOM_SIZE": "neither an async function",
            str(self.write("raise RuntimeError('bad')\n")): "failed to import: RuntimeError",
        }
        for spec, message in cases.items():
            with self.assertRaises(ScenarioError) as caught:
                load_scenario(spec)
            self.assertIn(message, str(caught.exception), spec)


class WorkerConfigTests(SynchronousTestCase):
    """How a run is split between workers."""

    def test_indices_and_shares(self) -> None:
        """Workers take every W-th bot; the rate is split; the config survives JSON."""
        self.assertEqual([worker_indices(5, w, 2) for w in (0, 1)], [[0, 2, 4], [1, 3]])
        config = RunConfig("s.py", "tcp:h:1", 5, 1.0, 10.0, 30.0, 7, 10.0, 10.0, 2.0)
        share = config.share(1, 3)
        self.assertEqual((share.worker, share.workers, share.rate), (1, 3, 10.0))
        self.assertEqual(RunConfig.from_json(share.to_json()), share)
