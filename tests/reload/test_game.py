"""Crons and reload in a whole game in memory (a copy of the example game, GameHarness)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cron import CronService
from pomelo_twisted.handlers.discovery import module_name
from pomelo_twisted.servercommands import ServerCommandError
from pomelo_twisted.testing.game import GameHarness

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "example_game"
WHERE = 'return {"code": 200, "server": self.app.server_id}'
#: Appended to the chat handler's class (its last lines): a ``where`` that waits on a gate.
SLOW_WHERE = """
    async def where(self, session: Any, msg: Any) -> dict[str, Any]:
        await self.app.gate
        return {"code": 200, "server": "old"}
"""
ENTRY = "connector.entryHandler.entry"
WHERE_ROUTE = "chat.chatHandler.where"


class GameReloadTests(SynchronousTestCase):
    """The cron component and the reload command of every server of a game."""

    def setUp(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pomelo-reload-game-")) / "game"
        self.addCleanup(shutil.rmtree, self.base.parent, ignore_errors=True)
        shutil.copytree(EXAMPLE, self.base, ignore=shutil.ignore_patterns("logs", "__pycache__"))
        prefix = module_name(self.base, "x", "x", "x").split(".")[0] + "."
        self.addCleanup(
            lambda: [sys.modules.pop(n) for n in [m for m in sys.modules if m.startswith(prefix)]]
        )
        self.handler = self.base / "servers" / "chat" / "handler" / "chatHandler.py"

    def start(self) -> GameHarness:
        game = GameHarness(self.base)
        self.addCleanup(game.service.stopService)
        return game

    def reload_chats(self, game: GameHarness) -> list[object]:
        answers = []
        for server_id in ("chat-server-1", "chat-server-2"):
            answers.append(self.successResultOf(game.app(server_id).commands.run("reload")))
        return answers

    def test_every_server_has_crons_and_reload(self) -> None:
        """Each server loads a cron component and serves cron.* and reload."""
        game = self.start()
        for app in game.apps.values():
            self.assertIsInstance(app.components["cron"], CronService)
            self.assertTrue(
                {"cron.list", "cron.add", "cron.remove", "reload"} <= set(app.commands.describe())
            )
        crons = game.app("chat-server-1").components["cron"]
        assert isinstance(crons, CronService)
        self.assertEqual(list(crons.jobs), ["rooms-report"])
        self.assertEqual(game.app("connector-server-1").components["cron"].jobs, {})  # type: ignore[union-attr]

    def test_cron_every_second_on_the_game_clock(self) -> None:
        """A crons.json cron firing every second runs on both chat servers as time passes."""
        every = {"id": "each", "time": "* * * * * *", "action": "chatCron.report"}
        (self.base / "config" / "crons.json").write_text(
            json.dumps({"development": {"chat": [every]}}), encoding="utf-8"
        )
        game = self.start()
        for _ in range(3):
            game.advance(1)
        for server_id in ("chat-server-1", "chat-server-2"):
            crons = game.app(server_id).components["cron"]
            assert isinstance(crons, CronService)
            self.assertEqual((crons.jobs["each"].runs, crons.jobs["each"].failures), (3, 0))

    def test_client_sees_the_new_reply(self) -> None:
        """After both chat servers reload, a client's forwarded request gets the new reply."""
        game = self.start()
        alice = game.connect()
        self.assertEqual(alice.call(ENTRY, {"uid": "alice", "rid": "r1"})["code"], 200)
        first = alice.call(WHERE_ROUTE, {})["server"]
        source = self.handler.read_text(encoding="utf-8")
        self.handler.write_text(source.replace(WHERE, 'return {"code": 200, "server": "new"}'))
        self.reload_chats(game)
        self.assertTrue(first.startswith("chat-server-"))
        self.assertEqual(alice.call(WHERE_ROUTE, {})["server"], "new")

    def test_in_flight_request_finishes_on_old_code(self) -> None:
        """A forwarded request in flight over a reload answers old; the next one new."""
        source = self.handler.read_text(encoding="utf-8")
        self.handler.write_text(source + SLOW_WHERE, encoding="utf-8")
        game = self.start()
        gate: Deferred[None] = Deferred()
        for app in game.apps.values():
            app.gate = gate  # type: ignore[attr-defined]
        alice = game.connect()
        alice.call(ENTRY, {"uid": "alice", "rid": "r1"})
        in_flight = alice.request(WHERE_ROUTE, {})
        game.settle()
        self.assertNoResult(in_flight)
        self.handler.write_text(source.replace(WHERE, 'return {"code": 200, "server": "new"}'))
        self.reload_chats(game)
        gate.callback(None)
        game.settle()
        self.assertEqual(self.successResultOf(in_flight)["server"], "old")
        self.assertEqual(alice.call(WHERE_ROUTE, {})["server"], "new")

    def test_import_error_keeps_serving(self) -> None:
        """A reload of a broken file is refused with file and line; clients see no change."""
        game = self.start()
        alice = game.connect()
        alice.call(ENTRY, {"uid": "alice", "rid": "r1"})
        self.handler.write_text("import nonexistent_module_xyz\n", encoding="utf-8")
        failure = self.failureResultOf(
            game.app("chat-server-1").commands.run("reload"), ServerCommandError
        )
        self.assertIn(
            "chatHandler.py, line 1: import failed: ModuleNotFoundError", str(failure.value)
        )
        self.assertTrue(alice.call(WHERE_ROUTE, {})["server"].startswith("chat-server-"))
