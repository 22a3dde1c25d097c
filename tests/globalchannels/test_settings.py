"""Redis settings: the URL, the limits, config/redis.json and what a server loads from it."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import cast

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.app.build import build_standalone
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.globalchannels import (
    GlobalChannelService,
    OnlineStatus,
    RedisComponent,
    RedisSettings,
    parse_redis_url,
)
from pomelo_twisted.interfaces import IComponent, IServerReactor
from pomelo_twisted.testing import GameHarness

EXAMPLE_GAME = Path(__file__).resolve().parents[2] / "example_game"


class UrlTests(SynchronousTestCase):
    """redis://HOST:PORT/DB."""

    def test_parse(self) -> None:
        """Host, port and database; port and database have defaults; IPv6 works."""
        self.assertEqual(parse_redis_url("redis://10.0.0.1:7000/2"), ("10.0.0.1", 7000, 2))
        self.assertEqual(parse_redis_url("redis://cache"), ("cache", 6379, 0))
        self.assertEqual(parse_redis_url("redis://[::1]:6380/0"), ("::1", 6380, 0))

    def test_refused(self) -> None:
        """Other schemes, no host, a bad port or db, credentials: ValueError naming the URL."""
        for url in (
            "http://h:1/0",
            "redis://:1/0",
            "redis://h:x/0",
            "redis://h:1/db",
            "redis://u:p@h:1/0",
        ):
            with self.assertRaises(ValueError) as caught:
                parse_redis_url(url)
            self.assertIn(repr(url), str(caught.exception))


class SettingsTests(SynchronousTestCase):
    """RedisSettings validation."""

    def test_defaults(self) -> None:
        """Only the URL is required."""
        settings = RedisSettings.from_dict({"url": "redis://h:1/0"})
        self.assertEqual((settings.prefix, settings.online_ttl), ("pomelo", 30))

    def test_refused(self) -> None:
        """Unknown keys, a missing URL and bad limits are refused, naming the place."""
        bad = (
            {"url": "redis://h/0", "colour": 1},
            {"prefix": "p"},
            {"url": "redis://h/0", "command_timeout": 0},
            {"url": "redis://h/0", "online_ttl": 2},
            {"url": "redis://h/0", "prefix": ""},
        )
        for data in bad:
            with self.assertRaises(ValueError) as caught:
                RedisSettings.from_dict(data, "config/redis.json")
            self.assertIn("config/redis.json", str(caught.exception))


class WiringTests(SynchronousTestCase):
    """A game with config/redis.json: every server connects, frontends report online users."""

    def game_with(self, redis: object) -> Path:
        # Not self.mktemp(): under pytest it would create folders in the repository.
        temp = Path(tempfile.mkdtemp(prefix="pomelo-redis-game-"))
        self.addCleanup(shutil.rmtree, temp, ignore_errors=True)
        base = temp / "game"
        shutil.copytree(EXAMPLE_GAME, base, ignore=shutil.ignore_patterns("logs"))
        (base / "config" / "redis.json").write_text(json.dumps({"development": redis}))
        return base

    def test_components(self) -> None:
        """Every server loads redis and global_channels; frontends online_status too."""
        base = self.game_with({"url": "redis://127.0.0.1:1/0", "prefix": "g"})
        service = build_standalone(cast(IServerReactor, MemoryReactorClock()), base)
        apps = {app.server_id: app for app in service.apps}  # built, not started
        connector = apps["connector-server-1"].components
        chat = apps["chat-server-1"].components
        # (then "cron", and "metrics": the example game's servers have a metricsPort)
        self.assertEqual(list(chat)[-4:], ["redis", "global_channels", "cron", "metrics"])
        self.assertEqual(
            list(connector)[-5:],
            ["redis", "global_channels", "online_status", "cron", "metrics"],
        )
        for component in (
            connector["redis"],
            connector["global_channels"],
            connector["online_status"],
        ):
            self.assertTrue(verifyObject(IComponent, component))
        self.assertIsInstance(connector["redis"], RedisComponent)
        self.assertIsInstance(chat["global_channels"], GlobalChannelService)
        self.assertIsInstance(connector["online_status"], OnlineStatus)

    def test_no_redis_json_no_redis(self) -> None:
        """Without config/redis.json no server loads a Redis component."""
        game = GameHarness(EXAMPLE_GAME)
        self.addCleanup(game.stop)
        for app in game.apps.values():
            self.assertNotIn("redis", app.components)

    def test_bad_settings_name_the_file(self) -> None:
        """A bad redis.json is a ConfigError naming the file."""
        with self.assertRaises(ConfigError) as caught:
            build_standalone(
                cast(IServerReactor, MemoryReactorClock()), self.game_with({"url": "http://n"})
            )
        self.assertIn("redis.json", str(caught.exception))
