"""``pomelo-twisted conformance ENDPOINT``: run the session transcripts against a server.

One line per check (``PASS``/``FAIL``/``SKIP`` and why), then a summary; the exit status
is 0 only when every check that applies passes. ``--reference`` runs only the checks
that describe what pomelo/pinus do too (the ones a reference server must pass).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from typing import Any, TextIO

from ..interfaces import IServerReactor
from ..repl import normalize_target
from .transcript import Outcome, TranscriptRunner, Unreachable
from .vectors import Session, VectorError, load_vectors
from .wire import Dialer, dial, transport_of

__all__ = ["DEFAULT_TIMEOUT", "add_parser", "run", "select"]

#: Seconds a step may wait for the server (and a connection may take).
DEFAULT_TIMEOUT = 5.0


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``conformance`` subcommand; its parser."""
    parser = subparsers.add_parser(
        "conformance",
        help="check a Pomelo server or connector against the protocol vectors",
        description="Run the protocol vectors' session transcripts against a Pomelo server "
        "or connector: one line per check (PASS, FAIL or SKIP and why), then a summary; "
        "exit 0 only when every check that applies passes.",
    )
    parser.add_argument(
        "endpoint",
        metavar="ENDPOINT",
        help="tcp:HOST:PORT (IPv6: tcp:\\:\\:1:3010), host:port, or ws://HOST:PORT/PATH",
    )
    parser.add_argument(
        "--route", help="a route the target serves (default: the example game's entry)"
    )
    parser.add_argument(
        "--body", type=_json_value, metavar="JSON", help="the JSON body sent on --route"
    )
    parser.add_argument(
        "--missing-route", metavar="ROUTE", help="a route the target does not serve"
    )
    parser.add_argument(
        "--reference", action="store_true", help="only the checks pomelo/pinus pass too"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these checks (glob; repeatable)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="NAME",
        help="leave these checks out (glob; repeatable)",
    )
    parser.add_argument(
        "--vectors",
        metavar="DIR",
        help="the vector folder (default: tests/vectors of this checkout)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long each step waits for the server (default: {DEFAULT_TIMEOUT:g})",
    )
    return parser


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def select(sessions: list[Session], args: argparse.Namespace) -> list[tuple[Session, str | None]]:
    """Each session and why it is not run (None: it runs)."""
    chosen = []
    for session in sessions:
        reason = None
        if args.only and not any(fnmatch.fnmatch(session.name, p) for p in args.only):
            continue
        if any(fnmatch.fnmatch(session.name, p) for p in args.skip):
            reason = "left out (--skip)"
        elif args.reference and session.origin != "reference":
            reason = "our stricter choice (--reference)"
        chosen.append((session, reason))
    return chosen


async def run(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Dialer | None = None
) -> int:
    """Run the checks; the exit status (0 all applicable passed, 1 otherwise).

    ``connect`` opens a connection to the target (default: :func:`dial` of ``ENDPOINT``).
    """
    try:
        vectors = load_vectors(args.vectors)
    except VectorError as exc:
        out.write(f"error: {exc}\n")
        return 1
    target = normalize_target(args.endpoint)
    if connect is None:
        timeout = args.timeout

        def connect() -> Any:
            return dial(reactor, target, timeout)

    variables = dict(vectors.defaults)
    for name in ("route", "body", "missing_route"):
        if getattr(args, name, None) is not None:
            variables[name] = getattr(args, name)
    runner = TranscriptRunner(reactor, connect, variables, args.timeout, transport_of(target))
    out.write(f"conformance of {target} ({transport_of(target)}), vectors {vectors.folder}\n")
    chosen = select(vectors.sessions, args)
    if not chosen:
        out.write(f"error: no check is named {' or '.join(args.only)}\n")
        return 1
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for session, reason in chosen:
        if reason is not None:
            outcome = Outcome("SKIP", reason)
        else:
            try:
                outcome = await runner.run(session)
            except Unreachable as exc:
                out.write(f"error: cannot connect to {target}: {exc}\n")
                return 1
        counts[outcome.status] += 1
        detail = f": {outcome.reason}" if outcome.reason else ""
        out.write(f"{outcome.status}  {session.name} [{session.origin}]{detail}\n")
        out.flush()
    total = sum(counts.values())
    out.write(
        f"{total} checks: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['SKIP']} skipped\n"
    )
    return 0 if counts["FAIL"] == 0 and counts["PASS"] > 0 else 1
