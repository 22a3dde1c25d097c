"""config/crons.json and servers/<type>/cron/*.py: loading, build_crons and its errors."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cron import CronSpec, build_crons, load_crons
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig, ServerInfo
from pomelo_twisted.handlers.discovery import module_name

CRON_FILE = """
    class ChatCron:
        def __init__(self, app):
            self.app = app
            self.runs = 0

        def tick(self):
            self.runs += 1
"""


class GameFolder:
    """A temporary game folder with crons.json and cron handlers."""

    def __init__(self, test: SynchronousTestCase) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pomelo-cron-"))
        test.addCleanup(shutil.rmtree, self.base, ignore_errors=True)
        prefix = module_name(self.base, "x", "x", "x").split(".")[0] + "."
        test.addCleanup(self._forget, prefix)
        (self.base / "config").mkdir()

    @staticmethod
    def _forget(prefix: str) -> None:
        for name in [n for n in sys.modules if n.startswith(prefix)]:
            del sys.modules[name]

    def crons(self, data: Any) -> None:
        (self.base / "config" / "crons.json").write_text(json.dumps(data), encoding="utf-8")

    def cron_handler(self, server_type: str, filename: str, source: str) -> None:
        folder = self.base / "servers" / server_type / "cron"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / filename).write_text(textwrap.dedent(source), encoding="utf-8")

    def config(self) -> GameConfig:
        return GameConfig(self.base, "development")


def chat(server_id: str = "chat-1") -> ServerInfo:
    return ServerInfo(id=server_id, type="chat", host="127.0.0.1", port=1)


class LoadCronsTests(SynchronousTestCase):
    """load_crons() and CronSpec.parse()."""

    def setUp(self) -> None:
        self.game = GameFolder(self)

    def test_no_file_no_crons(self) -> None:
        """A game without config/crons.json has no crons."""
        self.assertEqual(load_crons(self.game.config(), "chat", "chat-1"), [])

    def test_pomelo_format(self) -> None:
        """Per environment, per server type; numeric ids; serverId keeps a cron to one server."""
        self.game.crons(
            {
                "development": {
                    "chat": [
                        {"id": 1, "time": "0 30 10 * * *", "action": "chatCron.tick"},
                        {"id": 2, "serverId": "chat-2", "time": "* * * * *", "action": "c.m"},
                    ],
                    "connector": [{"id": 3, "time": "* * * * * *", "action": "c.m"}],
                }
            }
        )
        config = self.game.config()
        self.assertEqual([c.id for c in load_crons(config, "chat", "chat-1")], ["1"])
        both = load_crons(config, "chat", "chat-2")
        self.assertEqual(
            [c.to_dict() for c in both][1],
            {"id": "2", "time": "* * * * *", "action": "c.m", "serverId": "chat-2"},
        )

    def test_bad_expression_names_file_and_cron(self) -> None:
        """A bad time is a ConfigError naming the file, the environment, the cron and why."""
        self.game.crons({"development": {"chat": [{"id": "x", "time": "* *", "action": "a.b"}]}})
        with self.assertRaises(ConfigError) as caught:
            load_crons(self.game.config(), "chat", "chat-1")
        message = str(caught.exception)
        self.assertIn("crons.json (development): cron 'x' of 'chat'", message)
        self.assertIn("has 2 fields", message)

    def test_bad_entries(self) -> None:
        """A missing time, a bad action, an unknown key or a repeated id is refused."""
        cases = [
            ({"id": "a", "action": "a.b"}, "'time' is missing"),
            ({"id": "a", "time": "* * * * *", "action": "ab"}, "'action' must be"),
            ({"id": "a", "time": "* * * * *", "action": "a.b", "when": 1}, "unknown keys"),
            ({"time": "* * * * *", "action": "a.b"}, "'id' must be"),
        ]
        for entry, why in cases:
            self.game.crons({"development": {"chat": [entry]}})
            with self.assertRaises(ConfigError) as caught:
                load_crons(self.game.config(), "chat", "chat-1")
            self.assertIn(why, str(caught.exception))
        twice = {"id": "a", "time": "* * * * *", "action": "a.b"}
        self.game.crons({"development": {"chat": [twice, twice]}})
        with self.assertRaises(ConfigError) as caught:
            load_crons(self.game.config(), "chat", "chat-1")
        self.assertIn("cron 'a' of 'chat' is declared twice", str(caught.exception))

    def test_spec_parts(self) -> None:
        """A spec's handler and method are the two parts of its action."""
        spec = CronSpec.parse({"id": "a", "time": "* * * * *", "action": "chatCron.tick"})
        self.assertEqual((spec.handler, spec.method), ("chatCron", "tick"))


class BuildCronsTests(SynchronousTestCase):
    """build_crons(): the crons of a server with its type's cron handlers."""

    def setUp(self) -> None:
        self.game = GameFolder(self)
        self.game.cron_handler("chat", "chatCron.py", CRON_FILE)

    def test_runs_the_cron_handler(self) -> None:
        """The handler is built with the app and its method runs at the cron's times."""
        self.game.crons(
            {
                "development": {
                    "chat": [{"id": "t", "time": "* * * * * *", "action": "chatCron.tick"}]
                }
            }
        )
        clock = Clock()
        app = object()
        crons = build_crons(self.game.config(), chat(), clock, app)
        handler = crons.handlers["chatCron"]
        self.assertIs(handler.app, app)  # type: ignore[attr-defined]
        crons.startService()
        self.addCleanup(crons.stopService)
        clock.advance(1)
        clock.advance(1)
        self.assertEqual(handler.runs, 2)  # type: ignore[attr-defined]

    def test_unknown_action_names_file_and_cron(self) -> None:
        """An action no cron handler has is a ConfigError naming the file, cron and method."""
        self.game.crons(
            {
                "development": {
                    "chat": [{"id": "t", "time": "* * * * * *", "action": "chatCron.nope"}]
                }
            }
        )
        with self.assertRaises(ConfigError) as caught:
            build_crons(self.game.config(), chat(), Clock(), object())
        message = str(caught.exception)
        self.assertIn("crons.json (development): cron 't' of 'chat'", message)
        self.assertIn("has no public method 'nope' (it has: tick)", message)
