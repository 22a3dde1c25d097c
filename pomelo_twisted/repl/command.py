"""``pomelo-twisted repl``: its arguments and its entry point.

:func:`add_parser` adds the ``repl`` subcommand to the CLI's subparsers; :func:`run`
starts the REPL on the reactor it is given: the interactive terminal when stdin is a
TTY, line mode (commands read from stdin, one per line) otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from twisted.internet.defer import Deferred

from pomelo_twisted.client import connect as default_connect
from pomelo_twisted.interfaces import IServerReactor

from .lines import LineModeProtocol, attach_stdio
from .session import DEFAULT_TIMEOUT, Connector, ReplSession

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
An interactive Pomelo client: connect to a frontend, send requests and notifies,
see the pushes. ENDPOINT is a Twisted client endpoint (tcp:127.0.0.1:3010,
tls:host=example.com:port=3010), HOST:PORT, or a ws:// or wss:// URL. Type help
for the commands. When stdin is not a terminal, commands are read from it one per
line and the exit status is 1 if any of them failed.
"""


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``repl`` subcommand (``ENDPOINT``, ``--timeout``, ``--user``); its parser."""
    parser = subparsers.add_parser(
        "repl",
        help="an interactive client: requests, notifies, pushes",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "endpoint", nargs="?", metavar="ENDPOINT", help="connect to it first (optional)"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"connect and request timeout (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--user",
        type=_json_value,
        default=None,
        metavar="JSON",
        help="""handshake user data, e.g. '{"name": "bot"}'""",
    )
    return parser


def run(
    reactor: IServerReactor,
    args: argparse.Namespace,
    *,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    connect: Connector = default_connect,
) -> Deferred[int]:
    """Run the REPL until the user leaves (or, in line mode, the input ends).

    Fires with the exit status: 0, or in line mode 1 when a command failed. The
    connection is closed before it fires. ``args`` has ``endpoint``, ``timeout`` and
    ``user`` (see :func:`add_parser`); missing ones take their defaults.
    """
    session = ReplSession(
        reactor,
        _discard,
        connect,
        timeout=getattr(args, "timeout", DEFAULT_TIMEOUT),
        user=getattr(args, "user", None),
    )
    endpoint = getattr(args, "endpoint", None)
    startup = [f"connect {endpoint}"] if endpoint else []
    if os.isatty(stdin_fd):
        # Imported here: twisted.conch.recvline imports (so installs) the global reactor.
        from .terminal import run_terminal

        finished = run_terminal(reactor, session, startup, stdin_fd, stdout_fd)
        interactive = True
    else:
        protocol = LineModeProtocol(session, startup)
        attach_stdio(protocol, stdin_fd, stdout_fd, reactor)
        finished = protocol.finished
        interactive = False

    def status(_: object) -> int:
        return 0 if interactive or not session.errors else 1

    d: Deferred[Any] = finished.addCallback(lambda _: session.close())
    return d.addCallback(status)


def _discard(text: str) -> None:
    """Output before a front end attaches (there is none: it attaches at once)."""
