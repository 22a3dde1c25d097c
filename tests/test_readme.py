"""The README's examples are tests: what a studio copies must work."""

from __future__ import annotations

import os
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


class ReadmeTests(SynchronousTestCase):
    """Code blocks of README.md."""

    def test_testing_examples_run(self) -> None:
        """The GameHarness and MemoryServer examples run as written and their asserts hold."""
        blocks = [b for b in python_blocks() if "GameHarness" in b or "MemoryServer" in b]
        self.assertEqual(len(blocks), 2)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(README.parent)  # the examples name the game folder relative to the repo
        for block in blocks:
            exec(compile(block, str(README), "exec"), {})

    def test_client_example_compiles(self) -> None:
        """The client and handler examples are valid Python."""
        blocks = [b for b in python_blocks() if "pomelo_twisted.client" in b or "Handler" in b]
        self.assertTrue(blocks)
        for block in blocks:
            compile(block, str(README), "exec")

    def test_load_testing_scenario_runs(self) -> None:
        """The Load-testing scenario runs against the example game in memory, without error,
        and gets its own messages back."""
        from pomelo_twisted.bots import Runner
        from pomelo_twisted.testing import GameHarness

        [block] = [b for b in python_blocks() if "async def scenario(bot, context)" in b]
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)
        game = GameHarness(README.parent / "example_game")
        self.addCleanup(game.stop)
        runner = Runner(
            game.clock,
            namespace["scenario"],  # type: ignore[arg-type]
            "memory",
            bots=20,
            duration=5.0,
            connector=game.bot_connector(),
        )
        d = runner.run()
        for _ in range(200):
            game.advance(0.05)
        stats = self.successResultOf(d)
        self.assertEqual((stats.totals()[1], stats.scenario_errors), (0, {}))
        self.assertGreater(stats.routes["chat.chatHandler.send"].requests, 40)
        self.assertGreater(stats.pushes["onChat"], stats.routes["chat.chatHandler.send"].requests)
