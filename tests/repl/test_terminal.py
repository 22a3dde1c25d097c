"""The terminal front end with a fake terminal: keys in, an emulated screen out.

Key bytes go through :class:`TerminalServerProtocol` (insults' key parsing) into
:class:`ReplTerminal`; what it writes is parsed back by insults' ``ClientProtocol``
into a :class:`~twisted.conch.insults.helper.TerminalBuffer`, so the tests read the
screen a user would see.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from twisted.conch.insults import helper, insults
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.repl.terminal import PROMPT, ReplTerminal, TerminalServerProtocol, run_terminal

from .helpers import ECHO, MemoryConnector, memory_session

UP = b"\x1b[A"
DOWN = b"\x1b[B"
LEFT = b"\x1b[D"


class Wire(StringTransport):
    """A transport that also feeds what is written to a terminal emulator."""

    def __init__(self, client: insults.ClientProtocol) -> None:
        super().__init__()
        self.client = client

    def write(self, data: bytes) -> None:
        """Record and render ``data``."""
        super().write(data)
        self.client.dataReceived(data)


class TerminalTestCase(SynchronousTestCase):
    """A ReplTerminal on an emulated screen, its session on a memory connector."""

    startup: tuple[str, ...] = ("connect mem",)

    def setUp(self) -> None:
        self.session, self.connector, _ = memory_session()
        self.screen = helper.TerminalBuffer()
        client = insults.ClientProtocol(lambda: self.screen)
        client.makeConnection(StringTransport())
        self.repl = ReplTerminal(self.session, self.startup)
        self.server = TerminalServerProtocol(lambda: self.repl)
        self.wire = Wire(client)
        self.server.makeConnection(self.wire)
        self.connector.settle()

    def type(self, keys: bytes) -> None:
        """Press ``keys``, then let the commands they started finish."""
        self.server.dataReceived(keys)
        self.connector.settle()

    def screen_lines(self) -> list[str]:
        """The non-empty lines on the screen."""
        text = bytes(self.screen).decode("utf-8")
        return [line.rstrip() for line in text.splitlines() if line.strip()]

    def line(self) -> bytes:
        """The input line being typed."""
        before, after = self.repl.currentLineBuffer()
        return bytes(before + after)


class TypingTests(TerminalTestCase):
    """Entering lines, completion, history."""

    def test_startup_lines_run(self) -> None:
        """The startup connect runs at once and is in the history; the prompt follows."""
        self.assertEqual(
            self.screen_lines(),
            ["connected to mem (6 routes in the dictionary, heartbeat 30 s)", "pomelo>"],
        )
        self.assertEqual(self.repl.historyLines, [b"connect mem"])

    def test_enter_runs_the_command(self) -> None:
        """Typing a command and RETURN runs it; its output follows, then a new prompt."""
        self.type(f'request {ECHO} {{"a": 1}}\r'.encode())
        self.assertEqual(
            self.screen_lines()[-3:],
            [
                f'pomelo> request {ECHO} {{"a": 1}}',
                'response (0.0 ms): {"a": 1}',
                "pomelo>",
            ],
        )
        self.assertEqual(self.session.history[-1], f'request {ECHO} {{"a": 1}}')
        self.assertEqual(self.line(), b"")

    def test_tab_completes_a_unique_route(self) -> None:
        """TAB after a unique route prefix inserts the rest of the route and a space."""
        self.type(b"request connector.entryHandler.ec\t")
        self.assertEqual(self.line(), b"request connector.entryHandler.echo ")
        self.assertEqual(self.screen_lines()[-1], "pomelo> request connector.entryHandler.echo")

    def test_tab_completes_a_command(self) -> None:
        """TAB on the first word completes a command name."""
        self.type(b"disc\t")
        self.assertEqual(self.line(), b"disconnect ")

    def test_tab_extends_to_the_common_prefix(self) -> None:
        """With several candidates, TAB inserts what they have in common."""
        self.type(b"request connector.entryH\t")
        self.assertEqual(self.line(), b"request connector.entryHandler.")

    def test_tab_lists_ambiguous_candidates(self) -> None:
        """With nothing in common to add, TAB lists the candidates above the input line."""
        self.type(b"request connector.entryHandler.e\t")
        self.assertEqual(self.line(), b"request connector.entryHandler.e")
        self.assertEqual(
            self.screen_lines()[-2:],
            [
                "connector.entryHandler.echo  connector.entryHandler.error",
                "pomelo> request connector.entryHandler.e",
            ],
        )

    def test_tab_without_candidates_rings(self) -> None:
        """TAB with no candidate changes nothing and rings the bell."""
        self.type(b"zz\t")
        self.assertEqual(self.line(), b"zz")
        self.assertTrue(self.wire.value().endswith(b"\x07"))

    def test_up_arrow_recalls_history(self) -> None:
        """Up recalls earlier lines (newest first); down goes back to an empty line."""
        self.type(b"help\r")
        self.type(b"routes\r")
        self.type(UP)
        self.assertEqual(self.line(), b"routes")
        self.type(UP)
        self.assertEqual(self.line(), b"help")
        self.type(UP)
        self.assertEqual(self.line(), b"connect mem")
        self.type(DOWN + DOWN + DOWN)
        self.assertEqual(self.line(), b"")


class OutputTests(TerminalTestCase):
    """Asynchronous output and the line being typed."""

    def test_push_keeps_the_line_being_typed(self) -> None:
        """A push arriving mid-line is shown above it; the typed text and cursor stay."""
        self.type(b"request conn" + LEFT + LEFT)
        self.connector.conn.agent.push("onChat", {"text": "hi"})
        self.connector.settle()
        self.assertEqual(
            self.screen_lines()[-2:],
            ['push onChat {"text": "hi"}', "pomelo> request conn"],
        )
        self.assertEqual(self.repl.currentLineBuffer(), (b"request co", b"nn"))
        self.assertEqual(self.screen.reportCursorPosition()[0], len(PROMPT) + 10)
        self.type(b"X")
        self.assertEqual(self.line(), b"request coXnn")

    def test_prompt_hidden_while_a_command_runs(self) -> None:
        """While a request waits, there is no prompt; it comes back with the response."""
        self.server.dataReceived(f'request {ECHO} {{"delayMs": 100}}\r'.encode())
        self.connector.settle()
        self.assertEqual(self.screen_lines()[-1], f'pomelo> request {ECHO} {{"delayMs": 100}}')
        self.connector.clock.advance(0.1)
        self.connector.settle()
        self.assertEqual(
            self.screen_lines()[-2:], ['response (100.0 ms): {"delayMs": 100}', "pomelo>"]
        )

    def test_ctrl_l_redraws(self) -> None:
        """Ctrl-L clears the screen and redraws the input line."""
        self.type(b"help\rabc\x0c")
        self.assertEqual(self.screen_lines(), ["pomelo> abc"])


class ControlKeyTests(TerminalTestCase):
    """Ctrl-C, Ctrl-D, quit."""

    def test_ctrl_c_clears_the_line(self) -> None:
        """Ctrl-C drops the typed text and shows a fresh prompt."""
        self.type(b"request something\x03")
        self.assertEqual(self.line(), b"")
        self.assertEqual(self.screen_lines()[-2:], ["pomelo> request something^C", "pomelo>"])
        self.assertEqual(self.session.history, ["connect mem"])

    def test_ctrl_c_abandons_a_request(self) -> None:
        """Ctrl-C while a request waits abandons it with one error line."""
        self.server.dataReceived(f'request {ECHO} {{"delayMs": 5000}}\r'.encode())
        self.connector.settle()
        self.type(b"\x03")
        self.assertEqual(
            self.screen_lines()[-2:], [f"error: request to {ECHO} cancelled", "pomelo>"]
        )

    def test_ctrl_d_leaves(self) -> None:
        """Ctrl-D on an empty line closes the terminal without resetting the screen."""
        self.type(b"\x04")
        self.assertTrue(self.wire.disconnecting)
        self.assertNotIn(b"\x1bc", self.wire.value())
        self.assertTrue(self.wire.value().endswith(b"\x1b[4l"))  # insert mode off
        self.server.connectionLost(None)
        self.successResultOf(self.repl.finished)

    def test_ctrl_d_deletes_mid_line(self) -> None:
        """Ctrl-D with text deletes the character under the cursor instead."""
        self.type(b"abc" + LEFT + b"\x04")
        self.assertEqual(self.line(), b"ab")
        self.assertFalse(self.wire.disconnecting)

    def test_quit_leaves(self) -> None:
        """quit closes the terminal; output after that is dropped."""
        self.type(b"quit\r")
        self.assertTrue(self.wire.disconnecting)
        before = self.wire.value()
        self.repl.show_output("late push")
        self.assertEqual(self.wire.value(), before)

    def test_ctrl_a_and_ctrl_e(self) -> None:
        """Ctrl-A and Ctrl-E move to the start and end of the line."""
        self.type(b"bc\x01a")
        self.assertEqual(self.repl.currentLineBuffer(), (b"a", b"bc"))
        self.type(b"\x05d")
        self.assertEqual(self.line(), b"abcd")


class RunTerminalTests(TestCase):
    """run_terminal on a real pseudo-terminal and the real reactor."""

    def test_pty_session(self) -> Deferred[Any]:
        """On a pty: raw mode, a command, quit; the TTY's settings are restored."""
        import termios

        master, slave = os.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        before = termios.tcgetattr(slave)
        session, _, _ = memory_session(MemoryConnector())
        session.reactor = reactor
        # StandardIO closes the descriptors it is given: hand it copies.
        d = run_terminal(reactor, session, (), os.dup(slave), os.dup(slave))
        os.write(master, b"bogus\rquit\r")  # once in raw mode

        def check(_: object) -> None:
            self.assertEqual(termios.tcgetattr(slave), before)
            os.set_blocking(master, False)
            output = b""
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(master, 65536):
                    output += chunk
            self.assertIn(b"error: unknown command 'bogus'", output)
            self.assertTrue(session.done)

        return d.addCallback(check)
