"""A server whose component cannot start exits non-zero with a clear log line."""

from __future__ import annotations

import os
import socket
import subprocess

from twisted.trial.unittest import TestCase

from .game import EXAMPLE, REPO, twistd_command


class StartFailureTests(TestCase):
    """twistd pomelo when the client port is taken."""

    def test_port_in_use_exits_1_naming_the_cause(self) -> None:
        """The connector cannot listen: a critical line names server and cause; exit 1."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            path = os.environ.get("PYTHONPATH")
            env = dict(
                os.environ,
                PYTHONPATH=os.pathsep.join([str(REPO), path] if path else [str(REPO)]),
            )
            result = subprocess.run(
                [
                    *twistd_command(),
                    "-n",
                    "--pidfile=",
                    "pomelo",
                    "--app",
                    str(EXAMPLE),
                    "--env",
                    "production",
                    "--type",
                    "all",
                    "--listen",
                    f"tcp:{port}:interface=127.0.0.1",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        self.assertEqual(result.returncode, 1, result.stdout[-2000:])
        critical = [line for line in result.stdout.splitlines() if "#critical]" in line]
        self.assertTrue(
            any(
                "server connector-server-1 failed to start" in line
                and "Address already in use" in line
                for line in critical
            ),
            critical,
        )
