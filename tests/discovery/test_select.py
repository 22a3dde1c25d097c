"""Which discovery a game uses: master.json's ``discovery`` and the ``--discovery`` override."""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.application import Application
from pomelo_twisted.discovery.select import build_etcd_discovery, etcd_settings
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.kv.memory import MemoryKeyValueStore
from pomelo_twisted.rpc import LocalRpcTransport

from ..cluster.fakes import write_game
from .harness import CHAT_1


class SelectTests(SynchronousTestCase):
    """etcd_settings and build_etcd_discovery."""

    def game(self, **master: object) -> GameConfig:
        base = write_game(self)
        path = base / "config" / "master.json"
        data = json.loads(path.read_text())
        data["development"].update(master)
        path.write_text(json.dumps(data))
        return GameConfig(base)

    def test_default_is_the_master(self) -> None:
        """Without a discovery setting (or with --discovery master) there is no etcd."""
        self.assertIsNone(etcd_settings(self.game()))
        config = self.game(discovery="etcd://127.0.0.1:2379/game")
        self.assertIsNone(etcd_settings(config, "master"))

    def test_from_master_json(self) -> None:
        """master.json's discovery, TTL and keep-alive."""
        config = self.game(
            discovery="etcd://10.0.0.5:2379/mygame", discoveryTtl=6, discoveryKeepAlive=1.5
        )
        settings = etcd_settings(config)
        assert settings is not None
        self.assertEqual(settings.endpoint, "http://10.0.0.5:2379")
        self.assertEqual(
            (settings.key_prefix, settings.ttl, settings.keep_alive), ("/mygame", 6, 1.5)
        )

    def test_override_and_ipv6(self) -> None:
        """--discovery wins over master.json; an IPv6 host is written in brackets."""
        config = self.game(discovery="etcd://10.0.0.5:2379/mygame")
        settings = etcd_settings(config, "etcd://[::1]:2379/other")
        assert settings is not None
        self.assertEqual((settings.endpoint, settings.key_prefix), ("http://[::1]:2379", "/other"))

    def test_bad_url_names_the_field(self) -> None:
        """A discovery URL etcd cannot use names master.json's field."""
        config = self.game(discovery="etcd://host:notaport/x")
        with self.assertRaises(ConfigError) as caught:
            etcd_settings(config)
        self.assertIn("master.json (development): 'discovery'", str(caught.exception))

    def test_stop_command_stops_once(self) -> None:
        """Two stop commands call stop_process once, from the next turn."""
        clock = Clock()
        app = Application(CHAT_1, reactor=clock, rpc=LocalRpcTransport(clock), servers={})  # type: ignore[arg-type]
        settings = etcd_settings(self.game(), "etcd://127.0.0.1:2379/g")
        assert settings is not None
        stops: list[int] = []
        discovery = build_etcd_discovery(
            app, settings, stop_process=lambda: stops.append(1), store=MemoryKeyValueStore(clock)
        )
        assert discovery.on_command is not None
        discovery.on_command("stop")
        discovery.on_command("stop")
        self.assertEqual(stops, [])
        clock.advance(0)
        self.assertEqual(stops, [1])
