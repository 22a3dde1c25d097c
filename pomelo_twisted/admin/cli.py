"""``pomelo-twisted``: start, inspect and stop a game's cluster.

Every command takes ``--app DIR`` (the game folder, default ``.``) and ``--env
ENV`` (default ``development``), before or after the command name: ``start
[--daemon]`` (in the foreground it *becomes* the master, so signals reach it;
``--daemon`` runs it in the background and waits until it answers), ``list``,
``stop [ID ...]`` (no ids: the whole cluster, waiting until it is gone),
``kill``, ``restart ID``, ``add key=value ...`` and ``certs [--force] [ID ...]`` (the cluster's
TLS certificates, :mod:`pomelo_twisted.cluster.certs`); and two client tools, ``bot
SCENARIO`` (a load test, :mod:`pomelo_twisted.bots.cli`) and ``repl [ENDPOINT]``
(an interactive client, :mod:`pomelo_twisted.repl`).

All but ``start`` log in to the master as ``admin`` (:mod:`.client`), unless the game
uses etcd discovery (master.json's ``discovery`` or ``--discovery etcd://...``): then
``list``, ``stop`` and ``restart`` go through etcd (:mod:`.etcdadmin`) and ``start
[--host HOST]`` runs the supervisor of one machine (:mod:`pomelo_twisted.cluster.hosts`).
The command logic takes the reactor, the output streams and the parsed arguments;
only :func:`run_reactor` uses the global reactor.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from typing import TextIO, cast

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from .. import repl
from ..apidocs.command import write_api
from ..bots import cli as bots_cli
from ..cluster.certs import write_certs
from ..cluster.master import TWISTD
from ..dashboard import dashboard_url
from ..discovery.select import EtcdSettings, etcd_store
from ..errors import ConfigError
from ..gameconfig import GameConfig
from ..interfaces import IServerReactor
from ..kv.etcd import EtcdKeyValueStore
from .arguments import PROG, build_parser, folder_error, parse_args, parse_entry
from .client import AdminError, LoginRefused, connect_admin
from .commands import (
    LOGIN_TIMEOUT,
    POLL_INTERVAL,
    STOP_TIMEOUT,
    etcd_of,
    execute,
    report,
    wait_until_gone,
)
from .etcdadmin import await_registered
from .table import format_table, format_uptime
from .target import Connector, Target, load_target

__all__ = ["Target", "await_started", "execute", "format_table", "format_uptime", "load_target"]
__all__ += ["main", "master_argv", "parse_args", "parse_entry", "run_reactor", "start_daemon"]
__all__ += ["STOP_TIMEOUT", "start_foreground", "wait_until_gone", "wait_until_up"]
__all__ += ["dashboard_address"]

#: Seconds ``start --daemon`` waits for the master to answer.
START_TIMEOUT = 15.0
#: Seconds ``start --daemon`` waits for every server to be up once the master answers.
CLUSTER_TIMEOUT = 30.0


# -- the game and its master --------------------------------------------------------------


def master_argv(
    config: GameConfig,
    daemon: bool,
    log_level: str = "info",
    host: str | None = None,
    discovery: str | None = None,
    log_format: str = "text",
) -> list[str]:
    """twistd running the game's master: in the foreground, or daemonized with logs/.

    ``log_level`` and ``log_format`` are the master's ``--log-level`` and ``--log-format``,
    which it passes on to its servers;
    ``host`` (``--host``) limits it to the servers of one machine (its daemon files are then
    ``logs/supervisor-HOST.*``); ``discovery`` is passed on as ``--discovery``.
    """
    logs = config.base_dir / "logs"
    name = "master" if host is None else f"supervisor-{host}"
    if daemon:
        head = ["--pidfile", str(logs / f"{name}.pid"), "--logfile", str(logs / f"{name}.log")]
    else:
        head = ["-n", "--pidfile="]
    app = ["--app", str(config.base_dir), "--env", config.env, "--type", "master"]
    if log_level != "info":
        app += ["--log-level", log_level]
    if log_format != "text":
        app += ["--log-format", log_format]
    if host is not None:
        app += ["--host", host]
    if discovery is not None:
        app += ["--discovery", discovery]
    return [*TWISTD, *head, "pomelo", *app]


def client_endpoints(config: GameConfig) -> list[str]:
    """``id: clients connect to host:port`` for each frontend of the game."""
    lines = []
    for infos in config.servers().values():
        for info in infos:
            if info.frontend and info.client_port is not None:
                host = info.client_host or info.host
                host = f"[{host}]" if ":" in host else host  # an IPv6 address
                lines.append(f"{info.id}: clients connect to {host}:{info.client_port}")
    return lines


def dashboard_address(config: GameConfig, host: str | None = None) -> str | None:
    """The master's live dashboard (``http://HOST:PORT/``) when master.json has a
    ``dashboardPort`` and this start runs the master (no ``--host``, or the master's)."""
    settings = config.master_settings()
    if settings.dashboard_port is None or host not in (None, settings.host):
        return None
    return dashboard_url(settings.dashboard_host or settings.host, settings.dashboard_port)


async def wait_until_up(
    reactor: IServerReactor, target: Target, connect: Connector, within: float = START_TIMEOUT
) -> AdminError | None:
    """Poll until the master accepts the admin login: None, or the last error after ``within`` s.

    A refused login (wrong secret) is raised at once: waiting cannot mend it.
    """
    deadline = reactor.seconds() + within
    while True:
        remaining = deadline - reactor.seconds()
        try:
            client = await connect(
                reactor, target.endpoint, target.secret, max(0.1, min(LOGIN_TIMEOUT, remaining))
            )
        except LoginRefused:
            raise
        except AdminError as exc:
            if reactor.seconds() + POLL_INTERVAL > deadline:
                return exc
            await deferLater(reactor, POLL_INTERVAL, lambda: None)
        else:
            await client.close()
            return None


# -- start -----------------------------------------------------------------------------------


def start_foreground(
    target: Target,
    out: TextIO,
    execv: Callable[[str, list[str]], object] = os.execv,
    log_level: str = "info",
    host: str | None = None,
    discovery: str | None = None,
    log_format: str = "text",
) -> int:
    """Become the master process (``os.execv``), so signals reach it directly."""
    argv = master_argv(
        target.config, False, log_level, host=host, discovery=discovery, log_format=log_format
    )
    out.flush()
    sys.stderr.flush()
    execv(argv[0], argv)
    return 0  # only reached with a stand-in execv


def start_daemon(
    target: Target,
    err: TextIO,
    run: Callable[[list[str]], int] = lambda argv: subprocess.call(argv),
    log_level: str = "info",
    host: str | None = None,
    discovery: str | None = None,
    log_format: str = "text",
) -> int:
    """Start the master in the background (twistd daemonizes); its twistd's exit status."""
    (target.config.base_dir / "logs").mkdir(parents=True, exist_ok=True)
    argv = master_argv(
        target.config, True, log_level, host=host, discovery=discovery, log_format=log_format
    )
    status = run(argv)
    if status != 0:
        err.write(f"{PROG}: error: twistd could not start the master (exit status {status})\n")
        err.write(log_tail(target.config))
    return status


def log_tail(config: GameConfig, lines: int = 20) -> str:
    """The last lines of ``logs/master.log`` (or a note that there is none)."""
    path = config.base_dir / "logs" / "master.log"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})\n"
    tail = text.splitlines()[-lines:]
    return f"--- last lines of {path} ---\n" + "".join(line + "\n" for line in tail)


async def await_started(
    reactor: IServerReactor,
    target: Target,
    out: TextIO,
    err: TextIO,
    connect: Connector = connect_admin,
) -> int:
    """After ``start --daemon``: report the running master, or its log tail (exit 1)."""
    last = await wait_until_up(reactor, target, connect, START_TIMEOUT)
    if last is not None:
        err.write(f"{PROG}: error: the master did not answer within {START_TIMEOUT:g}s: {last}\n")
        err.write(log_tail(target.config))
        return 1
    out.write(f"master running; logs in {target.config.base_dir / 'logs'}\n")
    waiting = await wait_servers_up(reactor, target, connect, CLUSTER_TIMEOUT)
    if waiting:
        logs = ", ".join(f"logs/{server_id}.log" for server_id in waiting)
        err.write(
            f"{PROG}: error: not up after {CLUSTER_TIMEOUT:g}s: {', '.join(waiting)} (see {logs})\n"
        )
        return 1
    out.write("every server is up\n")
    for line in client_endpoints(target.config):
        out.write(line + "\n")
    return 0


async def wait_servers_up(
    reactor: IServerReactor, target: Target, connect: Connector, within: float = CLUSTER_TIMEOUT
) -> list[str]:
    """Poll ``list`` until every server is up; the ids still not up after ``within`` s."""
    deadline = reactor.seconds() + within
    waiting: list[str] = ["?"]
    while True:
        try:
            client = await connect(reactor, target.endpoint, target.secret, LOGIN_TIMEOUT)
            try:
                rows = await client.list()
            finally:
                await client.close()
            waiting = [row["id"] for row in rows if row.get("state") != "up"]
        except AdminError:
            pass
        if not waiting or reactor.seconds() + POLL_INTERVAL > deadline:
            return waiting
        await deferLater(reactor, POLL_INTERVAL, lambda: None)


# -- entry point -----------------------------------------------------------------------------


def run_reactor(
    work: Callable[[IServerReactor], Deferred[int]], reactor: IServerReactor | None = None
) -> int:
    """Run ``work(reactor)`` on the (global by default) reactor; its exit status."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = cast(IServerReactor, global_reactor)
    status = [1]

    def finished(result: int | Failure) -> None:
        if isinstance(result, Failure):
            sys.stderr.write(f"{PROG}: internal error:\n{result.getTraceback()}")
        else:
            status[0] = result
        reactor.stop()

    reactor.callWhenRunning(lambda: work(reactor).addBoth(finished))
    reactor.run()
    return status[0]


def main(argv: list[str] | None = None) -> int:
    """The ``pomelo-twisted`` command: its exit status."""
    args, stdout = parse_args(argv), sys.stdout
    problem = folder_error(args)
    if problem is not None:  # a usage error: the usage, the problem, exit 2
        build_parser().error(problem)
    if args.command == "repl":
        return run_reactor(lambda reactor: repl.run(reactor, args))
    if args.command == "bot":
        return run_reactor(
            lambda reactor: Deferred.fromCoroutine(bots_cli.run(reactor, args, stdout, sys.stderr))
        )
    try:
        if args.command in ("docs", "stubs"):  # read the game folder, no cluster
            return write_api(args, stdout)
        if args.command == "certs":
            config = GameConfig(args.app, args.env)
            return write_certs(config, stdout, force=args.force, extra=args.ids)
        if args.command == "start":
            etcd = etcd_of(args)  # with etcd there is no master to log in to: no admin secret
            target = load_target(args) if etcd is None else Target(etcd[0], "", b"")
            place = {"host": args.host, "discovery": args.discovery, "log_format": args.log_format}
            url = None if etcd is not None else dashboard_address(target.config, args.host)
            if url is not None and args.log_format == "text":  # JSON: the master logs it
                stdout.write(f"dashboard: {url}\n")
            if not args.daemon:
                return start_foreground(target, stdout, log_level=args.log_level, **place)
            status = start_daemon(target, sys.stderr, log_level=args.log_level, **place)
            if status != 0:
                return 1
            if etcd is not None:
                return run_reactor(lambda reactor: _registered(reactor, etcd[1], args, stdout))
            return run_reactor(lambda reactor: _started(reactor, target, stdout))
    except (AdminError, ConfigError, OSError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 1
    return run_reactor(lambda reactor: execute(reactor, args, stdout, sys.stderr))


def _registered(
    reactor: IServerReactor, etcd: EtcdSettings, args: argparse.Namespace, out: TextIO
) -> Deferred[int]:
    """After ``start --daemon`` with etcd: wait until the host's servers have registered."""
    config = GameConfig(args.app, args.env)
    ids = [i.id for s in config.servers().values() for i in s if args.host in (None, i.host)]

    async def wait() -> int:
        store = etcd_store(reactor, etcd)
        try:
            missing = await await_registered(
                reactor, store, etcd.key_prefix, ids, START_TIMEOUT + CLUSTER_TIMEOUT
            )
        finally:
            if isinstance(store, EtcdKeyValueStore):
                await store.close()
        if missing:
            sys.stderr.write(f"{PROG}: error: not registered in etcd: {', '.join(missing)}\n")
            return 1
        out.write(f"every server is up ({', '.join(ids)}); logs in {config.base_dir / 'logs'}\n")
        return 0

    return Deferred.fromCoroutine(wait()).addErrback(report, sys.stderr)


def _started(reactor: IServerReactor, target: Target, out: TextIO) -> Deferred[int]:
    d = Deferred.fromCoroutine(await_started(reactor, target, out, sys.stderr))
    return d.addErrback(report, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
