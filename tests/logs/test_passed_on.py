"""``--log-level`` and ``--log-format`` reach the master and every server it spawns."""

from __future__ import annotations

import json
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin.arguments import parse_args
from pomelo_twisted.admin.cli import master_argv
from pomelo_twisted.cluster.spawn import server_command
from pomelo_twisted.cluster.supervisor import Supervisor
from pomelo_twisted.gameconfig import GameConfig, ServerInfo

from ..cluster.test_supervisor import FakeReactor, temp_dir

CHAT = ServerInfo(id="chat-server-1", type="chat", host="127.0.0.1", port=4250)
SPEC = "info,pomelo_twisted.access=debug"
EXAMPLE = Path(__file__).resolve().parents[2] / "example_game"


class PassedOnTests(SynchronousTestCase):
    """From ``pomelo-twisted start`` to twistd, to each server's command line."""

    def setUp(self) -> None:
        self.config = GameConfig(EXAMPLE, "development")

    def test_start_options(self) -> None:
        """start takes a level spec and a format; a bad spec part is a usage error."""
        args = parse_args(["start", "--log-level", SPEC, "--log-format", "json"])
        self.assertEqual((args.log_level, args.log_format), (SPEC, "json"))
        self.assertEqual(parse_args(["start"]).log_format, "text")
        with self.assertRaises(SystemExit) as caught:
            parse_args(["start", "--log-level", "info,kv=noisy"])
        self.assertEqual(caught.exception.code, 2)

    def test_master_argv(self) -> None:
        """The master's twistd gets both options (only when not the defaults)."""
        argv = master_argv(self.config, False, SPEC, log_format="json")
        self.assertEqual(argv[-4:], ["--log-level", SPEC, "--log-format", "json"])
        self.assertNotIn("--log-format", master_argv(self.config, False))

    def test_server_command(self) -> None:
        """Each spawned server gets both options, and its supervisor writes JSON too."""
        spec = server_command(self.config, CHAT, log_level=SPEC, log_format="json")
        self.assertEqual(spec.args[-4:], ("--log-level", SPEC, "--log-format", "json"))
        self.assertEqual(spec.log_format, "json")
        text = server_command(self.config, CHAT)
        self.assertNotIn("--log-format", text.args)
        self.assertEqual(text.log_format, "text")

    def test_supervisor_line_is_json(self) -> None:
        """The supervisor's 'starting' line of a JSON log is a JSON line naming the server
        (the command line's braces kept as they are)."""
        reactor = FakeReactor()
        log_path = Path(temp_dir(self)) / "s1.log"
        spec = server_command(self.config, CHAT, log_format="json")
        args = (*spec.args, "--server", '{"id": "s1"}')
        spec = type(spec)("s1", spec.executable, args, log_path, log_format="json")
        Supervisor(reactor).start(spec)
        (line,) = [json.loads(x) for x in log_path.read_text().splitlines()]
        self.assertEqual((line["server"], line["level"]), ("s1", "info"))
        self.assertTrue(line["msg"].startswith("supervisor: starting s1: "), line["msg"])
        self.assertIn('{"id": "s1"}', line["msg"])
