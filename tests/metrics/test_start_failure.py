"""twistd pomelo when a server's metrics port is taken: exit 1, one line naming it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from twisted.trial.unittest import TestCase

from pomelo_twisted.testing.gamecopy import child_env, copy_game

from ..e2e.game import EXAMPLE, REPO, twistd_command


class MetricsPortTakenTests(TestCase):
    """A real server process whose metricsPort is in use."""

    def test_exits_1_naming_server_and_endpoint(self) -> None:
        """The chat server cannot serve metrics: a critical line names the server, the
        endpoint and the cause, and the process exits 1 (before joining the master)."""
        workdir = Path(tempfile.mkdtemp(prefix="pomelo-metrics-"))
        self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
        layout = copy_game(EXAMPLE, workdir / "game")
        port = layout["servers"]["chat"][0]["metricsPort"]
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", port))
            taken.listen()
            result = subprocess.run(
                [
                    *twistd_command(),
                    "-n",
                    "--pidfile=",
                    "pomelo",
                    "--app",
                    str(workdir / "game"),
                    "--type",
                    "chat",
                    "--id",
                    "chat-server-1",
                ],
                cwd=workdir,
                env=child_env(REPO),
                capture_output=True,
                text=True,
                timeout=60,
            )
        self.assertEqual(result.returncode, 1, result.stdout[-2000:])
        critical = [line for line in result.stdout.splitlines() if "#critical]" in line]
        expected = (
            "server chat-server-1 failed to start: start of metrics failed: chat-server-1: "
            f"cannot serve metrics on tcp:{port}:interface=127.0.0.1: "
        )
        self.assertTrue(
            any(expected in line and "Address already in use" in line for line in critical),
            critical,
        )
