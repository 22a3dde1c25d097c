"""``pomelo-twisted bot``: 200 chat bots for 10 s against the example game in its own process."""

from __future__ import annotations

import atexit
import json
import os
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from .game import EXAMPLE, REPO, GameProcess, log_problems


class BotRunTests(TestCase):
    """The bot runner against a real server."""

    timeout = 120

    @inlineCallbacks
    def test_200_chat_bots_for_10_seconds(self) -> Any:
        """200 chat bots, 20 rooms, 10 s: no error, no gap, every own message back, and
        the JSON report says so; the server log stays clean."""
        game = GameProcess()
        atexit.register(game.stop)
        self.addCleanup(game.stop)
        game.start()
        yield game.wait_ready()
        report = game.workdir / "report.json"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        out, err, code = yield getProcessOutputAndValue(
            sys.executable,
            [
                "-m",
                "pomelo_twisted.admin.cli",
                "bot",
                str(EXAMPLE / "bots" / "chat.py"),
                "--target",
                game.tcp_target,
                "--bots",
                "200",
                "--ramp-up",
                "2",
                "--duration",
                "10",
                "--report",
                str(report),
                "--fail-if",
                "errors>0,scenario_errors>0,connection_failures>0",
            ],
            env=env,
            path=str(game.workdir),
            reactor=reactor,
        )
        self.assertEqual(code, 0, (out + err).decode())
        summary = json.loads(report.read_text())["summary"]
        self.assertEqual(summary["bots"]["started"], 200)
        self.assertEqual(summary["bots"]["finished"], 200)
        self.assertEqual(summary["bots"]["connection_failures"], 0)
        self.assertEqual(summary["bots"]["kicks"], 0)
        self.assertEqual((summary["errors"], summary["scenario_errors"]), (0, {}))
        self.assertEqual(summary["counters"], {})  # no chat_gaps, own_missing, foreign_room
        sends = summary["routes"]["chat.chatHandler.send"]["count"]
        self.assertGreater(sends, 1000)
        self.assertGreaterEqual(summary["pushes"]["onChat"], 8 * sends)
        self.assertIn(b"chat.chatHandler.send", out)
        self.assertEqual(log_problems(game.log(), 0), [])
