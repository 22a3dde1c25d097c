"""The interactive front end: line editing, history and TAB completion on a terminal.

:class:`ReplTerminal` is a :class:`~twisted.conch.recvline.HistoricRecvLine` (arrows,
Home/End, insert/typeover, up/down history) that runs each entered line through a
:class:`~.session.ReplSession`. Output arriving while a line is being typed (pushes,
kicks, slow responses) is written above it: the input line is erased, the output
written, and the prompt and the typed text redrawn with the cursor where it was.

Keys: TAB completes (a unique candidate is inserted, several are listed), Ctrl-C
clears the line (and abandons a running connect or request), Ctrl-D on an empty line
leaves, Ctrl-L redraws, Ctrl-A/Ctrl-E go to the start/end of the line.

:func:`run_terminal` does what :func:`twisted.conch.stdio.runWithProtocol` does —
raw mode on the TTY, :class:`~twisted.internet.stdio.StandardIO`, terminal settings
restored at the end — but on the reactor it is given and without running it (that
module imports the global reactor), and without resetting (clearing) the screen.
Importing this module installs the global reactor all the same (``twisted.conch``'s
insults helper imports it): :func:`pomelo_twisted.repl.run` imports it only when needed.
"""

from __future__ import annotations

import fcntl
import termios
import tty
from collections.abc import Sequence

from twisted.conch.insults import insults
from twisted.conch.recvline import HistoricRecvLine
from twisted.internet.defer import Deferred
from twisted.python.compat import iterbytes
from twisted.python.failure import Failure

from pomelo_twisted.interfaces import IServerReactor

from .lines import attach_stdio
from .session import ReplSession

__all__ = ["PROMPT", "ReplTerminal", "TerminalServerProtocol", "run_terminal"]

PROMPT = b"pomelo> "
CTRL_A = b"\x01"
CTRL_C = b"\x03"
CTRL_D = b"\x04"
CTRL_E = b"\x05"
CTRL_L = b"\x0c"
BELL = b"\x07"


class ReplTerminal(HistoricRecvLine):
    """A terminal protocol running the lines typed into ``session``.

    ``startup`` lines run first (not echoed); ``finished`` fires when the terminal
    connection is gone (``quit``, Ctrl-D, or the terminal closed).
    """

    ps = (PROMPT, PROMPT)

    def __init__(self, session: ReplSession, startup: Sequence[str] = ()) -> None:
        super().__init__()
        self.session = session
        self.startup = list(startup)
        self.finished: Deferred[None] = Deferred()
        self._running = 0
        self._quitting = False

    # -- connection ---------------------------------------------------------------

    def connectionMade(self) -> None:
        """Bind keys, attach to the session, run the startup lines, seed the history."""
        super().connectionMade()
        self.session.output = self.show_output
        self.keyHandlers.update(
            {
                CTRL_A: self.handle_HOME,
                CTRL_C: self.handle_INT,
                CTRL_D: self.handle_EOF,
                CTRL_E: self.handle_END,
                CTRL_L: self.handle_FF,
            }
        )
        for line in self.startup:
            self._run(line)
        self.historyLines = [line.encode("utf-8") for line in self.session.history]
        self.historyPosition = len(self.historyLines)

    def initializeScreen(self) -> None:  # noqa: N802 (Twisted's name)
        """Show the prompt (no terminal reset: the screen keeps what it had)."""
        self.terminal.write(self.ps[self.pn])
        self.setInsertMode()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """The terminal is gone: fire ``finished``."""
        if not self.finished.called:
            self.finished.callback(None)

    # -- output ---------------------------------------------------------------------

    def show_output(self, text: str) -> None:
        """Write one line of output above the input line, then redraw the input line."""
        if self._quitting:
            return
        self.terminal.eraseLine()
        self.terminal.write(b"\r" + text.encode("utf-8"))
        self.terminal.nextLine()
        self._draw_input()

    def _draw_input(self) -> None:
        """The prompt (hidden while a command runs), the typed text, the cursor in place."""
        prompt = self.ps[self.pn] if not self._running else b""
        self.terminal.write(prompt + b"".join(self.lineBuffer))
        back = len(self.lineBuffer) - self.lineBufferIndex
        if back:
            self.terminal.cursorBackward(back)

    def _redraw(self) -> None:
        self.terminal.eraseLine()
        self.terminal.write(b"\r")
        self._draw_input()

    # -- lines ------------------------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        """Run the entered line (RETURN has moved to a new line)."""
        self._run(line.decode("utf-8", "replace"))

    def _run(self, line: str) -> None:
        self._running += 1
        self._redraw()  # hides the prompt while the command runs
        self.session.execute(line).addBoth(self._command_done)

    def _command_done(self, _: object) -> None:
        self._running -= 1
        if self.session.done:
            self._quit()
        elif not self._running:
            self._redraw()

    def _quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.terminal.eraseLine()
        self.terminal.write(b"\r")
        self.terminal.loseConnection()

    # -- keys ---------------------------------------------------------------------------

    def handle_TAB(self) -> None:  # noqa: N802 (Twisted's name)
        """Complete the word before the cursor: insert a unique match, or list them."""
        before = b"".join(self.lineBuffer[: self.lineBufferIndex]).decode("utf-8", "replace")
        word = "" if not before or before[-1].isspace() else before.split()[-1]
        candidates = self.session.complete(before)
        if not candidates:
            self.terminal.write(BELL)
            return
        common = _common_prefix(candidates)
        if len(candidates) == 1:
            self._insert(common[len(word) :] + " ")
        elif len(common) > len(word):
            self._insert(common[len(word) :])
        else:
            self.show_output("  ".join(candidates))

    def _insert(self, text: str) -> None:
        for ch in iterbytes(text.encode("utf-8")):
            self.characterReceived(ch, False)

    def handle_INT(self) -> None:  # noqa: N802 (Twisted's name)
        """Ctrl-C: clear the line, and abandon a running connect or request."""
        self.lineBuffer = []
        self.lineBufferIndex = 0
        self.historyPosition = len(self.historyLines)
        self.terminal.write(b"^C")
        self.terminal.nextLine()
        if not self.session.cancel():  # else the command's error line redraws the input
            self._draw_input()

    def handle_EOF(self) -> None:  # noqa: N802 (Twisted's name)
        """Ctrl-D: leave on an empty line; delete the character under the cursor otherwise."""
        if self.lineBuffer:
            self.handle_DELETE()
            return
        self.terminal.nextLine()
        self._quit()

    def handle_FF(self) -> None:  # noqa: N802 (Twisted's name)
        """Ctrl-L: clear the screen and redraw the input line."""
        self.terminal.eraseDisplay()
        self.terminal.cursorHome()
        self._draw_input()


def _common_prefix(words: Sequence[str]) -> str:
    """The longest string every one of ``words`` starts with."""
    first, last = min(words), max(words)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


class TerminalServerProtocol(insults.ServerProtocol):
    """insults' ServerProtocol, but leaving without resetting (clearing) the screen."""

    def loseConnection(self) -> None:  # noqa: N802 (Twisted's name)
        """Leave insert mode and close, keeping what is on the screen."""
        self.resetModes([insults.modes.IRM])
        if self.transport is not None:
            self.transport.loseConnection()


def run_terminal(
    reactor: IServerReactor,
    session: ReplSession,
    startup: Sequence[str] = (),
    stdin_fd: int = 0,
    stdout_fd: int = 1,
) -> Deferred[None]:
    """Run the REPL on the TTY ``stdin_fd``/``stdout_fd``; fires once the user has left.

    The TTY is in raw mode meanwhile; its settings (and the descriptors' flags, which
    :class:`StandardIO` makes non-blocking) are restored before the Deferred fires.
    """
    saved = termios.tcgetattr(stdin_fd)
    flags = {fd: fcntl.fcntl(fd, fcntl.F_GETFL) for fd in {stdin_fd, stdout_fd}}

    def restore(result: object) -> object:
        termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        for fd, value in flags.items():
            fcntl.fcntl(fd, fcntl.F_SETFL, value)
        return result

    repl = ReplTerminal(session, startup)
    tty.setraw(stdin_fd, termios.TCSANOW)  # keep what was typed ahead
    try:
        attach_stdio(TerminalServerProtocol(lambda: repl), stdin_fd, stdout_fd, reactor)
    except BaseException:
        restore(None)
        raise
    return repl.finished.addBoth(restore)
