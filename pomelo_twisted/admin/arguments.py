"""The command line of ``pomelo-twisted``: its parser and the checks of its arguments.

A usage error (an unknown command or option, a missing game folder, a bad ``add`` entry)
prints the usage and exits 2 through :meth:`argparse.ArgumentParser.error`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .. import conformance, repl
from ..bots import cli as bots_cli
from ..loglevels import LOG_FORMATS, parse_log_levels

__all__ = ["PROG", "build_parser", "folder_error", "parse_args", "parse_entry", "parse_values"]

PROG = "pomelo-twisted"
_INT_KEYS = {"port", "clientPort"}


def parse_entry(items: Iterable[str]) -> dict[str, Any]:
    """A server entry from ``key=value`` words; ``ValueError`` naming a bad one.

    ``port`` and ``clientPort`` are integers, ``true``/``false`` booleans, the
    rest strings; ``type`` and ``id`` are required.
    """
    entry: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        if key in entry:
            raise ValueError(f"{key} given twice")
        value: Any = text
        if key in _INT_KEYS:
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"{key} must be a number, got {text!r}") from None
        elif text in ("true", "false"):
            value = text == "true"
        entry[key] = value
    missing = [key for key in ("type", "id") if not entry.get(key)]
    if missing:
        raise ValueError(f"add needs {' and '.join(f'{k}=...' for k in missing)}")
    return entry


def parse_values(items: Iterable[str]) -> dict[str, Any]:
    """A command's arguments from ``key=value`` words: a value that reads as JSON
    (a number, ``true``, a list...) is that, else the string; ``ValueError`` naming a bad one."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        if key in values:
            raise ValueError(f"{key} given twice")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    return values


def _log_levels(spec: str) -> str:
    """``spec`` when it is a ``--log-level`` spec; else the usage error naming its bad part."""
    try:
        parse_log_levels(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return spec


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: ``--app``/``--env`` are accepted before or after the command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Start, inspect and stop a pomelo_twisted game cluster; load-test it and "
        "talk to it.",
    )
    _folder_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _folder_options(sub, suppress=True)
        return sub

    start = command(
        "start",
        "start the master, which starts every server (--host: the supervisor of one machine)",
    )
    start.add_argument(
        "--daemon",
        action="store_true",
        help="run in the background (logs/master.log) and wait until it answers",
    )
    start.add_argument(
        "--host",
        metavar="HOST",
        help="start only the servers servers.json places on HOST (one supervisor per machine)",
    )
    start.add_argument(
        "--log-level",
        default="info",
        type=_log_levels,
        help="lowest level the master and every server log (default: info), then "
        "NAMESPACE=LEVEL parts, e.g. info,pomelo_twisted.access=debug",
    )
    start.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="log lines of the master and every server: text (default) or json",
    )
    command("list", "list the servers and their state")
    stop = command("stop", "stop these servers, or (no ids) the whole cluster")
    stop.add_argument("ids", nargs="*", metavar="ID", help="server ids")
    command("kill", "SIGKILL every server; the master stops too")
    restart = command("restart", "drain a server and start it again (or --rolling TYPE)")
    restart.add_argument("id", metavar="ID", nargs="?", help="server id")
    restart.add_argument(
        "--rolling",
        metavar="TYPE",
        help="restart every server of TYPE one by one, each serving before the next",
    )
    drain = command("drain", "stop taking clients, finish what is in flight, kick, stop")
    drain.add_argument("id", metavar="ID", help="server id")
    drain.add_argument(
        "--grace", type=float, help="seconds in-flight requests may take (default: drain_grace)"
    )
    add = command("add", "start a new server, e.g. add type=chat id=chat-server-3 port=4252")
    add.add_argument(
        "entry", nargs="+", metavar="key=value", help="type, id, host, port, auto-restart..."
    )
    run = command(
        "command",
        "run an operator command on one server (e.g. `command chat-server-1 help`)",
    )
    run.add_argument("id", metavar="ID", help="server id")
    run.add_argument("name", metavar="NAME", help="command name (help: list them)")
    run.add_argument("values", nargs="*", metavar="key=value", help="the command's arguments")
    run.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the answer (default 60)"
    )
    cron = command(
        "cron",
        "list, add or remove a server's crons: cron list ID; cron add ID id=... "
        "time='<sec> <min> <hour> <dom> <mon> <dow>' action=handler.method; cron remove ID CRON",
    )
    cron.add_argument("action", choices=("list", "add", "remove"), help="what to do")
    cron.add_argument("id", metavar="ID", help="server id")
    cron.add_argument("values", nargs="*", metavar="ARG", help="add: key=value; remove: CRON")
    reload = command("reload", "reload a server's handlers, remotes and cron handlers from disk")
    reload.add_argument("id", metavar="ID", help="server id")
    for sub in (cron, reload):
        sub.add_argument(
            "--timeout", type=float, default=60.0, help="seconds to wait for the answer"
        )
    certs = command("certs", "create the cluster CA and each server's TLS certificate")
    certs.add_argument("--force", action="store_true", help="create everything anew")
    certs.add_argument("ids", nargs="*", metavar="ID", help="also for these ids (to `add` later)")
    docs = command("docs", "write the route reference (Markdown and AsyncAPI 3) of the game")
    docs.add_argument("--out", metavar="DIR", required=True, help="folder to write to")
    stubs = command("stubs", "write typed client stubs of the game's routes")
    stubs.add_argument("--lang", choices=("python", "typescript"), required=True)
    stubs.add_argument("--out", metavar="DIR", required=True, help="folder to write to")
    bots_cli.add_parser(commands)
    repl.add_parser(commands)
    conformance.add_parser(commands)
    return parser


def _folder_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # A subcommand's copy has no default, so it never overrides one given before the command.
    parser.add_argument(
        "--app",
        metavar="DIR",
        default=argparse.SUPPRESS if suppress else ".",
        help="game folder (default: .)",
    )
    parser.add_argument(
        "--env",
        metavar="ENV",
        default=argparse.SUPPRESS if suppress else "development",
        help="environment in the config files (default: development)",
    )
    parser.add_argument(
        "--discovery",
        metavar="URL",
        default=argparse.SUPPRESS if suppress else None,
        help="'master' or etcd://HOST:PORT/PREFIX (default: master.json's discovery)",
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; exits 2 with a message on a usage error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "add":
        try:
            args.entry = parse_entry(args.entry)
        except ValueError as exc:
            parser.error(str(exc))
    if args.command == "command":
        try:
            args.values = parse_values(args.values)
        except ValueError as exc:
            parser.error(str(exc))
    if args.command == "cron":
        args.name = f"cron.{args.action}"
        try:
            args.values = cron_values(args.action, args.values)
        except ValueError as exc:
            parser.error(str(exc))
    if args.command == "reload":
        args.name, args.values = "reload", {}
    if args.command == "restart" and (args.id is None) == (args.rolling is None):
        parser.error("restart takes a server ID or --rolling TYPE (one of them)")
    if args.command == "drain" and args.grace is not None and not args.grace >= 0:
        parser.error(f"--grace must be 0 or more seconds, not {args.grace}")
    return args


def cron_values(action: str, items: Sequence[str]) -> dict[str, Any]:
    """The arguments of ``cron list|add|remove``: ``remove`` takes the cron's id alone
    (or ``id=...``), ``add`` key=value words, ``list`` nothing; ValueError otherwise."""
    if action == "list":
        if items:
            raise ValueError("cron list takes no argument but the server id")
        return {}
    if action == "remove" and len(items) == 1 and "=" not in items[0]:
        return {"id": items[0]}
    values = parse_values(items)
    if action == "remove" and set(values) != {"id"}:
        raise ValueError("cron remove takes the cron's id (cron remove SERVER CRON)")
    return values


def folder_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the game folder a command names (``--app``), or None.

    ``bot``, ``repl`` and ``conformance`` need no game folder.
    """
    app = getattr(args, "app", None)
    if app is None or args.command in ("bot", "repl", "conformance"):
        return None
    folder = Path(app).expanduser()
    if (folder / "config").is_dir():
        return None
    what = "is not a game folder (no config/)" if folder.is_dir() else "does not exist"
    return f"{folder.resolve()} {what}: pass --app DIR, a game folder"
