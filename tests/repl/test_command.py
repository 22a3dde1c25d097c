"""The ``repl`` subcommand's arguments, and run() choosing its front end."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.repl import add_parser, run
from pomelo_twisted.repl.session import DEFAULT_TIMEOUT

from .helpers import MemoryConnector


def parser() -> argparse.ArgumentParser:
    """A top-level parser with the repl subcommand, as the CLI builds it."""
    top = argparse.ArgumentParser(prog="pomelo-twisted")
    add_parser(top.add_subparsers(dest="command"))
    return top


class ArgumentTests(SynchronousTestCase):
    """add_parser: ENDPOINT, --timeout, --user."""

    def test_defaults(self) -> None:
        """With no arguments: no endpoint, the default timeout, no user data."""
        args = parser().parse_args(["repl"])
        self.assertEqual(
            (args.command, args.endpoint, args.timeout, args.user),
            ("repl", None, DEFAULT_TIMEOUT, None),
        )

    def test_all_arguments(self) -> None:
        """ENDPOINT, --timeout seconds and --user JSON are parsed."""
        args = parser().parse_args(
            ["repl", "ws://127.0.0.1:3010/", "--timeout", "2.5", "--user", '{"name": "bot"}']
        )
        self.assertEqual(
            (args.endpoint, args.timeout, args.user), ("ws://127.0.0.1:3010/", 2.5, {"name": "bot"})
        )

    def test_bad_values(self) -> None:
        """--user that is not JSON and a timeout that is not positive are usage errors."""
        for argv in (["--user", "{x"], ["--timeout", "0"], ["--timeout", "soon"]):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as raised:
                parser().parse_args(["repl", *argv])
            self.assertEqual(raised.exception.code, 2)
            self.assertIn(f"argument {argv[0]}", err.getvalue())


class RunTests(TestCase):
    """run() on the real reactor with pipes and a pty for stdin/stdout."""

    def pipes(self, script: bytes) -> tuple[int, int, int]:
        """stdin (holding ``script``, then end of input), stdout, and stdout's read end."""
        stdin_r, stdin_w = os.pipe()
        os.write(stdin_w, script)
        os.close(stdin_w)
        out_r, out_w = os.pipe()
        self.addCleanup(os.close, out_r)
        return stdin_r, out_w, out_r

    def test_line_mode_without_a_tty(self) -> Deferred[Any]:
        """Without a TTY, run() reads commands from stdin and fires 1 after a failed one."""
        stdin, stdout, out = self.pipes(b"bogus\nexit\nhelp\n")
        connector = MemoryConnector()
        args = argparse.Namespace(endpoint=None, timeout=1.0, user=None)
        d = run(reactor, args, stdin_fd=stdin, stdout_fd=stdout, connect=connector)

        def check(status: int) -> None:
            self.assertEqual(status, 1)
            output = os.read(out, 65536).decode()
            self.assertEqual(
                output, "error: unknown command 'bogus'; type help for the list of commands\n"
            )

        return d.addCallback(check)

    def test_terminal_on_a_tty(self) -> Deferred[Any]:
        """On a TTY, run() starts the terminal (connecting first) and fires 0 after quit."""
        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        connector = MemoryConnector()
        args = argparse.Namespace(endpoint="mem", timeout=0.05, user=None)
        # StandardIO closes the descriptors it is given: hand it copies.
        d = run(reactor, args, stdin_fd=os.dup(slave), stdout_fd=os.dup(slave), connect=connector)
        os.write(master, b"quit\r")  # once in raw mode

        def check(status: int) -> None:
            self.assertEqual(status, 0)
            self.assertEqual([target for target, _ in connector.calls], ["mem"])
            self.assertFalse(connector.conn.client.connected)  # closed on the way out

        return d.addCallback(check)
