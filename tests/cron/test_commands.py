"""The cron.* server commands and the `pomelo-twisted cron` / `reload` verbs."""

from __future__ import annotations

import io
import sys
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin.cli import execute, parse_args
from pomelo_twisted.cron import CronService, register_cron_commands
from pomelo_twisted.servercommands import ServerCommandError, ServerCommands

from ..admin.test_cli import FakeClient, FakeConnect, game_dir, without_env_secret


class Ticks:
    """A cron handler counting its runs."""

    def __init__(self) -> None:
        self.runs = 0

    def tick(self) -> None:
        self.runs += 1


class CronCommandTests(SynchronousTestCase):
    """cron.list, cron.add and cron.remove on a running CronService."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.ticks = Ticks()
        self.crons = CronService(self.clock, {"ticks": self.ticks}, "chat-1")
        self.commands = ServerCommands("chat-1")
        register_cron_commands(self.commands, self.crons)
        self.crons.startService()
        self.addCleanup(self.crons.stopService)

    def command(self, name: str, **args: Any) -> Any:
        return self.successResultOf(self.commands.run(name, args))

    def refused(self, name: str, **args: Any) -> str:
        failure = self.failureResultOf(self.commands.run(name, args), ServerCommandError)
        return failure.getErrorMessage()

    def test_add_list_remove(self) -> None:
        """A cron added at run time fires, is listed with its runs, and stops once removed."""
        added = self.command("cron.add", id="t", time="* * * * * *", action="ticks.tick")
        self.assertEqual(added["added"]["next"], "1970-01-01T00:00:01+00:00")
        self.assertEqual(added["crons"], 1)
        self.clock.advance(1)
        self.clock.advance(1)
        listed = self.command("cron.list")
        self.assertEqual(listed["server"], "chat-1")
        self.assertEqual([(c["id"], c["runs"]) for c in listed["crons"]], [("t", 2)])
        removed = self.command("cron.remove", id="t")
        self.assertEqual((removed["removed"]["runs"], removed["crons"]), (2, 0))
        self.clock.advance(5)
        self.assertEqual(self.ticks.runs, 2)

    def test_refusals_name_the_culprit(self) -> None:
        """A bad time, an unknown action or an unknown id is refused with why."""
        self.assertIn(
            "has 1 fields", self.refused("cron.add", id="t", time="x", action="ticks.tick")
        )
        self.assertIn(
            "no cron handler 'nope'",
            self.refused("cron.add", id="t", time="* * * * *", action="nope.tick"),
        )
        self.assertIn("has no cron 'zzz'", self.refused("cron.remove", id="zzz"))
        self.assertIn("needs id=", self.refused("cron.remove"))
        self.assertEqual(self.crons.jobs, {})


class CronVerbTests(SynchronousTestCase):
    """`pomelo-twisted cron ...` and `reload` parse to server commands and print answers."""

    def setUp(self) -> None:
        without_env_secret(self)
        self.patch(sys, "stderr", io.StringIO())
        self.folder = game_dir(self)
        self.out = io.StringIO()
        self.err = io.StringIO()

    def test_parse(self) -> None:
        """cron list|add|remove and reload become the cron.* and reload commands."""
        args = parse_args(["cron", "add", "chat-1", "id=t", "time=* * * * * *", "action=a.b"])
        self.assertEqual((args.id, args.name), ("chat-1", "cron.add"))
        self.assertEqual(args.values, {"id": "t", "time": "* * * * * *", "action": "a.b"})
        self.assertEqual(parse_args(["cron", "remove", "chat-1", "t"]).values, {"id": "t"})
        self.assertEqual(parse_args(["cron", "list", "chat-1"]).name, "cron.list")
        args = parse_args(["reload", "chat-1", "--timeout", "5"])
        self.assertEqual(
            (args.id, args.name, args.values, args.timeout), ("chat-1", "reload", {}, 5.0)
        )
        for bad in (["cron", "list", "chat-1", "x"], ["cron", "remove", "chat-1", "a", "b"]):
            with self.assertRaises(SystemExit):
                parse_args(bad)

    def execute(self, client: FakeClient, argv: list[str]) -> int:
        args = parse_args([*argv, "--app", str(self.folder)])
        code: int = self.successResultOf(
            execute(Clock(), args, self.out, self.err, connect=FakeConnect(client))
        )
        return code

    def test_cron_list_prints_a_table(self) -> None:
        """cron list prints one aligned line per cron."""
        row = {
            "id": "t",
            "time": "* * * * * *",
            "action": "a.b",
            "next": "N",
            "runs": 3,
            "failures": 0,
            "skipped": 1,
        }
        client = FakeClient(command={"server": "chat-1", "crons": [row]})
        self.assertEqual(self.execute(client, ["cron", "list", "chat-1"]), 0)
        lines = self.out.getvalue().splitlines()
        self.assertEqual(
            lines[0].split(), ["id", "time", "action", "next", "runs", "failures", "skipped"]
        )
        self.assertEqual(
            lines[1].split(), ["t", "*", "*", "*", "*", "*", "*", "a.b", "N", "3", "0", "1"]
        )
        self.assertEqual(client.calls, [("command", ("chat-1", "cron.list", {}, 60.0))])

    def test_cron_add_says_what_changed(self) -> None:
        """cron add prints the cron added, its next time and how many crons there are."""
        job = {"id": "t", "time": "* * * * * *", "action": "a.b", "next": "N", "runs": 0}
        client = FakeClient(command={"added": job, "crons": 2})
        argv = ["cron", "add", "chat-1", "id=t", "time=* * * * * *", "action=a.b"]
        self.assertEqual(self.execute(client, argv), 0)
        self.assertEqual(
            self.out.getvalue(),
            "added cron t on chat-1: * * * * * * -> a.b (runs 0; next N); 2 crons now\n",
        )

    def test_reload_says_what_changed(self) -> None:
        """reload prints the generation, the objects and the routes added or removed."""
        answer = {
            "generation": 2,
            "handlers": ["chatHandler"],
            "remotes": [],
            "crons": ["c"],
            "routes_added": ["chat.chatHandler.hello"],
            "routes_removed": [],
            "remotes_added": [],
            "remotes_removed": [],
        }
        self.assertEqual(self.execute(FakeClient(command=answer), ["reload", "chat-1"]), 0)
        self.assertEqual(
            self.out.getvalue(),
            "reloaded chat-1 (generation 2)\n  handlers: chatHandler\n  remotes: none\n"
            "  crons: c\n  routes added: chat.chatHandler.hello\n",
        )

    def test_reload_refused_is_one_line(self) -> None:
        """A refused reload (its import error) is one line on stderr, exit 1."""
        from pomelo_twisted.admin import AdminError

        why = "chat-1: reload refused, old code kept: x.py, line 3: import failed: ..."
        code = self.execute(FakeClient(command=AdminError(why)), ["reload", "chat-1"])
        self.assertEqual(code, 1)
        self.assertEqual(self.err.getvalue(), f"pomelo-twisted: error: {why}\n")
