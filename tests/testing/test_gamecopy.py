"""copy_game / free_ports: a game folder on ports of its own."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.testing.gamecopy import child_env, copy_game, free_ports

EXAMPLE = Path(__file__).resolve().parents[2] / "example_game"


class GameCopyTests(SynchronousTestCase):
    """The copy keeps the game and changes only the ports of one environment."""

    def setUp(self) -> None:
        self.dest = Path(tempfile.mkdtemp()) / "game"
        self.addCleanup(shutil.rmtree, self.dest.parent)

    def test_every_port_is_rewritten_and_distinct(self) -> None:
        """Each RPC, client, metrics and master port of the environment is new and unique."""
        layout = copy_game(EXAMPLE, self.dest)
        config = GameConfig(self.dest)
        infos = [info for group in config.servers().values() for info in group]
        ports = [info.port for info in infos]
        ports += [info.client_port for info in infos if info.client_port is not None]
        metrics = [info.metrics_port for info in infos if info.metrics_port is not None]
        self.assertEqual(len(metrics), len(infos))
        ports += metrics
        ports.append(config.master()["port"])
        self.assertEqual(len(set(ports)), len(ports))
        original = GameConfig(EXAMPLE)
        fixed = {4005, 4150, 4151, 4250, 4251, 3010, 3011, 9150, 9151, 9250, 9251}
        self.assertFalse(fixed & set(ports))
        self.assertEqual(config.cluster_secret(), original.cluster_secret())
        self.assertEqual(layout["master"]["port"], config.master()["port"])
        self.assertTrue((self.dest / "servers" / "chat" / "handler").is_dir())
        self.assertFalse((self.dest / "logs").exists())

    def test_free_ports_are_distinct(self) -> None:
        """free_ports gives distinct non-zero ports."""
        ports = free_ports(5)
        self.assertEqual(len(set(ports)), 5)
        self.assertNotIn(0, ports)


class ChildEnvTests(SynchronousTestCase):
    """child_env: a child process imports the given checkout first."""

    def test_checkout_first_on_pythonpath(self) -> None:
        """The checkout leads PYTHONPATH (before an inherited one); output is unbuffered."""
        env = child_env(Path("/some/checkout"))
        self.assertEqual(env["PYTHONPATH"].split(os.pathsep)[0], "/some/checkout")
        self.assertEqual(env["PYTHONUNBUFFERED"], "1")
