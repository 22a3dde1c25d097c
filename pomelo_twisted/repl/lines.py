"""Line mode: the REPL read from a pipe or a file, for scripts (stdin is not a TTY).

Each line of input is one command, run in order; the output is plain text, one line
per line the session writes. At end of input (or ``quit``), the last command is
finished and its output written before the connection is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IHalfCloseableProtocol, IProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.stdio import StandardIO
from twisted.python.failure import Failure
from zope.interface import implementer

from pomelo_twisted.interfaces import IServerReactor

from .session import ReplSession

__all__ = ["LineModeProtocol", "attach_stdio"]

#: Twisted's POSIX StandardIO; mypy sees the Windows one, which has no stdin/stdout
#: arguments, so it is typed as the callable it is here.
_posix_stdio: Callable[..., object] = StandardIO


def attach_stdio(
    protocol: IProtocol, stdin_fd: int, stdout_fd: int, reactor: IServerReactor
) -> None:
    """Connect ``protocol`` to the descriptors ``stdin_fd``/``stdout_fd`` on ``reactor``."""
    _posix_stdio(protocol, stdin=stdin_fd, stdout=stdout_fd, reactor=reactor)


@implementer(IHalfCloseableProtocol)
class LineModeProtocol(Protocol):
    """Runs each received line through ``session``; writes its output to the transport.

    ``startup`` lines (e.g. ``connect ENDPOINT`` from the command line) run first.
    ``finished`` fires once the transport is gone, after the last command is done.
    """

    def __init__(self, session: ReplSession, startup: Sequence[str] = ()) -> None:
        self.session = session
        self.startup = list(startup)
        self.finished: Deferred[None] = Deferred()
        self._buffer = b""
        self._last: Deferred[None] = succeed(None)
        self._ending = False

    def connectionMade(self) -> None:
        """Attach to the session, then run the startup lines."""
        self.session.output = self.write_line
        for line in self.startup:
            self._submit(line)

    def write_line(self, text: str) -> None:
        """Show one line of the session's output."""
        if self.transport is not None:
            self.transport.write(text.encode("utf-8") + b"\n")

    def dataReceived(self, data: bytes) -> None:
        """Run every complete line."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._submit(line.decode("utf-8", "replace"))

    def readConnectionLost(self) -> None:  # noqa: N802 (Twisted's name)
        """End of input: run a last unterminated line, then finish after the last command."""
        rest, self._buffer = self._buffer, b""
        if rest:
            self._submit(rest.decode("utf-8", "replace"))
        self._end()

    def writeConnectionLost(self) -> None:  # noqa: N802 (Twisted's name)
        """Nobody reads the output any more: stop."""
        self._ending = True
        if self.transport is not None:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The transport is gone: fire ``finished``."""
        if not self.finished.called:
            self.finished.callback(None)

    def _submit(self, line: str) -> None:
        if self._ending or self.session.done:
            return
        self._last = self.session.execute(line.rstrip("\r"))
        self._last.addCallback(self._after_command)

    def _after_command(self, _: None) -> None:
        if self.session.done:
            self._end()

    def _end(self) -> None:
        if self._ending:
            return
        self._ending = True
        self._last.addCallback(self._lose)

    def _lose(self, _: None) -> None:
        if self.transport is not None:
            self.transport.loseConnection()
