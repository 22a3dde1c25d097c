"""The admin commands that talk to a running cluster: ``list``, ``stop``, ``kill``,
``restart``, ``add``, ``command``, and the server commands with verbs of their own:
``cron`` and ``reload``; and ``conformance ENDPOINT``, which checks any Pomelo server
against the protocol vectors (:mod:`pomelo_twisted.conformance`).

Each logs in to the master as ``admin`` (:mod:`.client`), makes its call and closes; with
etcd discovery ``list``, ``stop`` and ``restart`` go through etcd instead
(:mod:`.etcdadmin`). ``command ID NAME [key=value ...]`` runs one of a server's operator
commands (:mod:`pomelo_twisted.servercommands`; ``help`` lists them), relayed by the
master. :func:`execute` runs one and reports admin errors as one line (exit status 1).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from .. import conformance
from ..discovery.select import EtcdSettings, etcd_settings, etcd_store
from ..errors import ConfigError
from ..gameconfig import GameConfig
from ..interfaces import IServerReactor
from ..kv.etcd import EtcdKeyValueStore
from ..kv.interfaces import IKeyValueStore
from .arguments import PROG
from .client import AdminClient, AdminError, MasterUnreachable, connect_admin
from .etcdadmin import etcd_command
from .table import cell, format_table
from .target import Connector, Target, load_target

__all__ = [
    "COMMANDS",
    "LOGIN_TIMEOUT",
    "POLL_INTERVAL",
    "STOP_TIMEOUT",
    "ask",
    "etcd_of",
    "execute",
    "report",
    "wait_until_gone",
]

#: Seconds ``stop`` (the whole cluster) waits for the master to be gone.
STOP_TIMEOUT = 60.0
#: Seconds between two polls of the master.
POLL_INTERVAL = 0.25
#: Seconds one connect-and-login attempt may take.
LOGIN_TIMEOUT = 5.0


async def ask(
    reactor: IServerReactor,
    args: argparse.Namespace,
    connect: Connector,
    call: Callable[[AdminClient], Deferred[Any]],
) -> Any:
    """Log in, make one call, close: the answer (the target's errors are AdminErrors)."""
    target = load_target(args)
    client = await connect(reactor, target.endpoint, target.secret, LOGIN_TIMEOUT)
    try:
        return await call(client)
    finally:
        await client.close()


async def _list(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    rows = await ask(reactor, args, connect, lambda client: client.list())
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AdminError("the master sent a malformed server list")
    out.write(format_table(rows))
    return 0


async def _stop(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    answer = await ask(reactor, args, connect, lambda client: client.stop(list(args.ids)))
    if args.ids:
        out.write(f"stopped: {', '.join(_field(answer, 'stopped') or args.ids)}\n")
        return 0
    out.write("stopping the cluster (frontends, then backends, then the master)\n")
    out.flush()
    await wait_until_gone(reactor, load_target(args), connect, STOP_TIMEOUT)
    out.write("stopped\n")
    return 0


async def _kill(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    killed = _field(await ask(reactor, args, connect, lambda client: client.kill()), "killed")
    out.write(f"killed: {', '.join(killed) if killed else 'no server process'}\n")
    return 0


async def _restart(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    if getattr(args, "rolling", None) is not None:
        rows = await ask(reactor, args, connect, lambda c: c.restart_rolling(args.rolling))
        for row in rows if isinstance(rows, list) else []:
            out.write(f"restarted {_field(row, 'id')} (pid {cell(_field(row, 'pid'))})\n")
        return 0
    answer = await ask(reactor, args, connect, lambda client: client.restart(args.id))
    out.write(f"restarted {args.id} (pid {cell(_field(answer, 'pid'))})\n")
    return 0


async def _drain(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    answer = await ask(reactor, args, connect, lambda client: client.drain(args.id, args.grace))
    out.write(
        f"drained {args.id}: {cell(_field(answer, 'kicked'))} clients kicked, "
        f"{cell(_field(answer, 'left'))} requests left after {cell(_field(answer, 'waited'))}s\n"
    )
    return 0


async def _add(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    answer = await ask(reactor, args, connect, lambda client: client.add(dict(args.entry)))
    added = _field(answer, "added") or args.entry["id"]
    out.write(f"added {added} (pid {cell(_field(answer, 'pid'))})\n")
    return 0


async def _command(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    answer = await ask(
        reactor,
        args,
        connect,
        lambda client: client.command(args.id, args.name, dict(args.values), args.timeout),
    )
    if isinstance(answer, (dict, list)):
        out.write(json.dumps(answer, indent=2, sort_keys=True, default=str) + "\n")
    elif answer is not None:
        out.write(f"{answer}\n")
    return 0


async def _server_command(
    reactor: IServerReactor, args: argparse.Namespace, connect: Connector
) -> Any:
    return await ask(
        reactor,
        args,
        connect,
        lambda client: client.command(args.id, args.name, dict(args.values), args.timeout),
    )


async def _cron(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    answer = await _server_command(reactor, args, connect)
    if args.action == "list":
        rows = answer.get("crons") if isinstance(answer, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise AdminError(f"{args.id} sent a malformed cron list: {answer!r}")
        if not rows:
            out.write(f"{args.id} has no cron\n")
            return 0
        keys = ("id", "time", "action", "next", "runs", "failures", "skipped")
        lines = [list(keys), *([cell(row.get(key)) for key in keys] for row in rows)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(keys))]
        for line in lines:
            padded = "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
            out.write(padded.rstrip() + "\n")
        return 0
    verb = "added" if args.action == "add" else "removed"
    job = answer.get(verb) if isinstance(answer, dict) else None
    if not isinstance(job, dict):
        raise AdminError(f"{args.id} sent a malformed cron answer: {answer!r}")
    out.write(
        f"{verb} cron {job.get('id')} on {args.id}: {job.get('time')} -> {job.get('action')}"
        f" (runs {job.get('runs')}; next {cell(job.get('next'))}); "
        f"{_field(answer, 'crons')} crons now\n"
    )
    return 0


async def _reload(
    reactor: IServerReactor, args: argparse.Namespace, out: TextIO, connect: Connector
) -> int:
    answer = await _server_command(reactor, args, connect)
    if not isinstance(answer, dict):
        raise AdminError(f"{args.id} sent a malformed reload answer: {answer!r}")
    out.write(f"reloaded {args.id} (generation {answer.get('generation')})\n")
    for key in ("handlers", "remotes", "crons"):
        out.write(f"  {key}: {', '.join(_field(answer, key) or []) or 'none'}\n")
    for key in ("routes_added", "routes_removed", "remotes_added", "remotes_removed"):
        changed = _field(answer, key)
        if changed:
            out.write(f"  {key.replace('_', ' ')}: {', '.join(changed)}\n")
    return 0


def _field(answer: object, key: str) -> Any:
    """``answer[key]`` of a dict answer (lists as lists of str); None otherwise."""
    value = answer.get(key) if isinstance(answer, dict) else None
    return [str(item) for item in value] if isinstance(value, list) else value


Command = Callable[
    [IServerReactor, argparse.Namespace, TextIO, Connector], Coroutine[Any, Any, int]
]
COMMANDS: dict[str, Command] = {
    "list": _list,
    "stop": _stop,
    "kill": _kill,
    "restart": _restart,
    "drain": _drain,
    "add": _add,
    "command": _command,
    "cron": _cron,
    "reload": _reload,
}


StoreFactory = Callable[[IServerReactor, EtcdSettings], IKeyValueStore]


def execute(
    reactor: IServerReactor,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    connect: Connector = connect_admin,
    store_factory: StoreFactory = etcd_store,
) -> Deferred[int]:
    """Run a master command (not ``start``): a Deferred of the exit status; through etcd
    when the game uses etcd discovery (``store_factory`` makes the client).

    Admin and configuration errors are reported on ``err`` (exit status 1).
    """
    d: Deferred[int] = Deferred.fromCoroutine(_dispatch(reactor, args, out, connect, store_factory))
    return d.addErrback(report, err)


async def _dispatch(
    reactor: IServerReactor,
    args: argparse.Namespace,
    out: TextIO,
    connect: Connector,
    store_factory: StoreFactory,
) -> int:
    if args.command == "conformance":  # a client of any server: no game folder, no master
        return await conformance.run(reactor, args, out)
    settings = etcd_of(args)
    if settings is None:
        return await COMMANDS[args.command](reactor, args, out, connect)

    config, etcd = settings
    command = args.command
    if getattr(args, "rolling", None) is not None:
        raise AdminError(
            "restart --rolling needs the master; with etcd discovery restart each server "
            "in turn with: pomelo-twisted restart ID (it drains first)"
        )
    if command == "drain":  # with etcd a server told to stop drains first
        command = "stop"
    store = store_factory(reactor, etcd)
    ids = [args.id] if args.command in ("restart", "drain") else list(getattr(args, "ids", []))
    try:
        entry = getattr(args, "entry", None)
        return await etcd_command(
            reactor, store, etcd.key_prefix, config, command, ids, out, STOP_TIMEOUT, entry
        )
    finally:
        if isinstance(store, EtcdKeyValueStore):
            await store.close()


def etcd_of(args: argparse.Namespace) -> tuple[GameConfig, EtcdSettings] | None:
    """The game and its etcd discovery (``--discovery`` first), or None (the master; also
    when there is no game folder, for :func:`load_target` to report)."""
    if not (Path(args.app).expanduser() / "config").is_dir():
        return None
    config = GameConfig(args.app, args.env)
    settings = etcd_settings(config, getattr(args, "discovery", None))
    return None if settings is None else (config, settings)


def report(failure: Failure, err: TextIO) -> int:
    if not failure.check(AdminError, ConfigError):
        failure.raiseException()
    err.write(f"{PROG}: error: {failure.getErrorMessage()}\n")
    return 1


async def wait_until_gone(
    reactor: IServerReactor, target: Target, connect: Connector, within: float = STOP_TIMEOUT
) -> None:
    """Poll until the master's port no longer accepts a login; AdminError after ``within`` s."""
    deadline = reactor.seconds() + within
    while True:
        try:
            client = await connect(reactor, target.endpoint, target.secret, LOGIN_TIMEOUT)
        except MasterUnreachable:
            return
        except AdminError:
            pass  # going down mid-login: try again
        else:
            await client.close()
        if reactor.seconds() >= deadline:
            raise AdminError(
                f"the master still answers after {within:g}s; "
                f"see {target.config.base_dir / 'logs' / 'master.log'}"
            )
        await deferLater(reactor, POLL_INTERVAL, lambda: None)
