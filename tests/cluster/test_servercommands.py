"""Operator commands: a server's registry, and the master relaying them over PB."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin.arguments import parse_args, parse_values
from pomelo_twisted.cluster.avatars import AdminAvatar
from pomelo_twisted.cluster.interfaces import CommandRefused
from pomelo_twisted.rpc.payload import pack_plain, unpack_plain
from pomelo_twisted.servercommands import ServerCommandError, ServerCommands

from .test_monitor import CHAT_1, FullPathCase


class RegistryTests(SynchronousTestCase):
    """ServerCommands: named functions of plain arguments."""

    def setUp(self) -> None:
        self.commands = ServerCommands("chat-1")
        self.commands.register("echo", lambda args: args, "answer the arguments")

    def test_runs_by_name(self) -> None:
        """A registered command answers with its function's result."""
        self.assertEqual(self.successResultOf(self.commands.run("echo", {"a": 1})), {"a": 1})

    def test_help_lists_the_commands(self) -> None:
        """help answers every command's name and help text."""
        self.assertEqual(
            self.successResultOf(self.commands.run("help")), {"echo": "answer the arguments"}
        )

    def test_unknown_command_names_the_known_ones(self) -> None:
        """An unknown name fails with ServerCommandError listing the commands."""
        failure = self.failureResultOf(self.commands.run("nope"), ServerCommandError)
        self.assertIn("no command 'nope' (it has: help, echo)", failure.getErrorMessage())

    def test_a_name_is_registered_once(self) -> None:
        """Registering a taken name raises ValueError."""
        with self.assertRaises(ValueError):
            self.commands.register("echo", lambda args: None, "")

    def test_a_raising_command_fails_its_deferred(self) -> None:
        """A command that raises fails its Deferred (never raises to the caller)."""

        def refuse(args: dict[str, Any]) -> None:
            raise ServerCommandError("refused: why")

        self.commands.register("refuse", refuse, "")
        self.failureResultOf(self.commands.run("refuse"), ServerCommandError)


class RelayTests(FullPathCase):
    """The admin's command crosses the master to the server's monitor and back."""

    def setUp(self) -> None:
        super().setUp()
        self.join(CHAT_1)
        self.app = self.apps["chat-1"]
        self.later: Deferred[Any] = Deferred()
        self.app.commands.register("echo", lambda args: {"got": args}, "echo")
        self.app.commands.register("later", lambda args: self.later, "answer later")
        self.app.commands.register("broken", lambda args: 1 / 0, "a bug")
        self.admin = AdminAvatar(self.master)

    def relay(self, **request: Any) -> Deferred[Any]:
        d = self.admin.perspective_command(pack_plain(request))
        self.network.flush()
        return d

    def test_answer_comes_back(self) -> None:
        """A command's answer reaches the admin as msgpack bytes."""
        d = self.relay(server="chat-1", name="echo", args={"x": 1})
        self.assertEqual(unpack_plain(self.successResultOf(d)), {"got": {"x": 1}})

    def test_refusal_names_the_culprit(self) -> None:
        """An unknown command's refusal reaches the admin as a pb.Error with the message."""
        failure = self.failureResultOf(self.relay(server="chat-1", name="nope", args={}), pb.Error)
        self.assertIn("server chat-1 has no command 'nope'", failure.getErrorMessage())

    def test_a_bug_is_logged_on_the_server_and_reported(self) -> None:
        """A command that fails by a bug: logged there; the admin reads what failed."""
        failure = self.failureResultOf(
            self.relay(server="chat-1", name="broken", args={}), pb.Error
        )
        self.assertIn("broken failed on chat-1", failure.getErrorMessage())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_unregistered_server_refused(self) -> None:
        """A server that is not registered is refused at once."""
        with self.assertRaises(pb.Error) as raised:
            self.admin.perspective_command(pack_plain({"server": "chat-9", "name": "x"}))
        self.assertIn("'chat-9' is not registered", str(raised.exception))

    def test_no_answer_within_the_timeout(self) -> None:
        """A command that does not answer in time is refused naming the timeout."""
        d = self.master.server_command("chat-1", "later", {}, 5.0)
        self.network.flush()
        self.reactor.advance(5.0)
        failure = self.failureResultOf(d, CommandRefused)
        self.assertIn("did not answer later within 5s", failure.getErrorMessage())

    def test_malformed_requests_refused(self) -> None:
        """A request that is not {server, name, args} or has a bad timeout: pb.Error."""
        for request in [
            [1],
            {"server": 1, "name": "x"},
            {"server": "a", "name": "x", "timeout": 0},
        ]:
            with self.assertRaises(pb.Error):
                self.admin.perspective_command(pack_plain(request))


class ArgumentTests(SynchronousTestCase):
    """The command line of ``pomelo-twisted command``."""

    def test_values_read_as_json_or_strings(self) -> None:
        """key=value words: JSON values when they parse, strings otherwise."""
        self.assertEqual(
            parse_values(["n=3", "on=true", "who=bob", "ids=[1,2]"]),
            {"n": 3, "on": True, "who": "bob", "ids": [1, 2]},
        )

    def test_bad_words_refused(self) -> None:
        """A word without = or a key given twice: ValueError naming it."""
        with self.assertRaises(ValueError):
            parse_values(["novalue"])
        with self.assertRaises(ValueError):
            parse_values(["a=1", "a=2"])

    def test_parsed_command(self) -> None:
        """command ID NAME key=value --timeout S."""
        args = parse_args(["command", "chat-1", "drain", "grace=5", "--timeout", "30"])
        self.assertEqual(
            (args.id, args.name, args.values, args.timeout), ("chat-1", "drain", {"grace": 5}, 30.0)
        )
