"""Line mode (stdin is not a TTY) with a string transport and the in-memory server."""

from __future__ import annotations

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.repl.lines import LineModeProtocol

from .helpers import ECHO, PUSH, memory_session


class LineModeTests(SynchronousTestCase):
    """Commands from lines of input, output as plain lines."""

    def setUp(self) -> None:
        self.session, self.connector, _ = memory_session()
        self.protocol = LineModeProtocol(self.session, ["connect mem"])
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.connector.settle()

    def feed(self, data: bytes) -> None:
        """Receive ``data`` and let the commands finish."""
        self.protocol.dataReceived(data)
        self.connector.settle()

    def output(self) -> list[str]:
        """The lines written so far."""
        return self.transport.value().decode("utf-8").splitlines()

    def test_interface(self) -> None:
        """LineModeProtocol provides IHalfCloseableProtocol (it sees the end of input)."""
        self.assertTrue(verifyObject(IHalfCloseableProtocol, self.protocol))

    def test_lines_run_in_order(self) -> None:
        """Each line is a command, run in order, its output written line by line."""
        self.feed(f'request {ECHO} {{"a": 1}}\r\nrequest {PUSH} [2]\nnotify '.encode())
        self.feed(f"{PUSH} 3\n# done\n".encode())
        self.assertEqual(
            self.output(),
            [
                "connected to mem (6 routes in the dictionary, heartbeat 30 s)",
                'response (0.0 ms): {"a": 1}',
                "push onPush [2]",
                'response (0.0 ms): {"code": 200}',
                f"notify sent to {PUSH}",
                "push onPush 3",
            ],
        )
        self.assertFalse(self.transport.disconnecting)

    def test_end_of_input_finishes(self) -> None:
        """At end of input a last unterminated line runs, then the connection is closed."""
        self.feed(f'request {ECHO} {{"delayMs": 500}}\nrequest {ECHO} "last"'.encode())
        self.protocol.readConnectionLost()
        self.assertFalse(self.transport.disconnecting)  # the delayed request still runs
        self.connector.clock.advance(0.5)
        self.connector.settle()
        self.assertEqual(self.output()[-1], 'response (0.0 ms): "last"')
        self.assertTrue(self.transport.disconnecting)
        self.assertNoResult(self.protocol.finished)
        self.protocol.connectionLost()
        self.successResultOf(self.protocol.finished)

    def test_quit_stops_reading(self) -> None:
        """Lines after quit are not run; the connection is closed."""
        self.feed(b"quit\nhelp\n")
        self.feed(b"help\n")
        self.assertEqual(len(self.output()), 1)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.session.history, ["connect mem", "quit"])

    def test_errors_are_counted(self) -> None:
        """Failed commands are error lines, counted for the exit status."""
        self.feed(b"bogus\nrequest\n")
        self.assertEqual(
            self.output()[1:],
            [
                "error: unknown command 'bogus'; type help for the list of commands",
                "error: usage: request ROUTE [JSON]",
            ],
        )
        self.assertEqual(self.session.errors, 2)

    def test_output_gone(self) -> None:
        """When nobody reads the output any more, the connection is closed and input ignored."""
        self.protocol.writeConnectionLost()
        self.assertTrue(self.transport.disconnecting)
        self.feed(b"help\n")
        self.assertEqual(self.session.history, ["connect mem"])
