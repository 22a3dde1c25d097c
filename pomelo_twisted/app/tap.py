"""``twistd pomelo``: command-line options, composed into the service tree of a process.

Each kind of tree is built by the module that owns it (:mod:`.build` for game
servers, :mod:`pomelo_twisted.cluster.build` for the master, :mod:`.echo_frontend`);
this module parses options and picks one; :mod:`.process` handles SIGTERM and exits.

- ``--app DIR [--type master]``: the master of the game's cluster; it starts
  every server of ``config/servers.json`` as its own process (the default
  type when ``--app`` is given);
- ``--app DIR --type TYPE [--id ID]``: one server of the game, talking to its
  peers over Perspective Broker and joining the master (``config/master.json``);
  ``--server JSON`` gives the entry of a server not in servers.json (the
  admin ``add`` command);
- ``--app DIR --type all``: every server of the game in this process
  (standalone, in-process RPC, no master);
- ``--type echo``: the echo frontend of :mod:`pomelo_twisted.app.echo_frontend`
  (tests and benchmarks); the default without ``--app``.

Connection limits given on the command line override the game's ``connector``
setting; ``--listen`` overrides the client endpoint of the (single) frontend.
Run by twistd, a server logs at ``info`` and above unless ``--log-level`` says otherwise
(a default level and levels per namespace: ``info,pomelo_twisted.rpc=debug``), as
Twisted's text lines or, with ``--log-format json``, one JSON object per line with
request ids (:mod:`pomelo_twisted.logs`). Once the reactor runs, the startup heap is
frozen out of the garbage collector (:mod:`pomelo_twisted.app.heap`; ``--no-gc-freeze`` to keep it).
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, cast

from twisted.application.service import IService
from twisted.logger import LogBeginner, LogLevel, globalLogBeginner
from twisted.python import usage

from ..acceptors import KINDS
from ..agent import AgentConfig
from ..cluster.build import build_master
from ..dashboard.build import with_dashboard
from ..errors import ConfigError
from ..gameconfig import GameConfig, ServerInfo
from ..interfaces import IServerReactor
from ..loglevels import LOG_FORMATS, LOG_LEVELS
from ..logs.beginning import ACCESS_NAMESPACE, LogSetup
from ..serializers import get_serializer
from ..tracing import TracingSetup
from .build import build_cluster_server, build_standalone
from .echo_frontend import DEFAULT_ECHO_ENDPOINT, build_echo_frontend
from .heap import freeze_heap_when_running
from .process import exit_after_shutdown, graceful_sigterm

__all__ = ["LOG_LEVELS", "Options", "filter_log_level", "makeService", "usage_exit"]


# Command-line limit -> AgentConfig field.
LIMITS = {
    "heartbeat": "heartbeat",
    "handshake-timeout": "handshake_timeout",
    "max-packet-size": "max_packet_size",
    "max-pending-bytes": "max_pending_bytes",
    "request-rate": "request_rate",
    "request-burst": "request_burst",
    "max-inflight": "max_inflight",
    "max-refusals": "max_refusals",
    "refusal-window": "refusal_window",
    "max-ignored-packages": "max_ignored_packages",
    "slice-events": "slice_events",
    "slice-bytes": "slice_bytes",
    "slice-seconds": "slice_seconds",
    "max-connections": "max_connections",
    "max-connections-per-ip": "max_connections_per_ip",
}


def _seconds_or_off(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("must be >= 0 (0 turns it off)")
    return seconds


def _positive(value: str) -> float:
    seconds = float(value)
    if seconds <= 0:
        raise ValueError("must be > 0")
    return seconds


class Options(usage.Options):
    """Options of ``twistd pomelo``."""

    synopsis = "[--app DIR] [--env ENV] [--type TYPE] [--id ID] [options]"
    longdesc = (
        "Start pomelo_twisted servers: the master of a game's cluster (--type master, the "
        "default with --app), which starts every server as its own process; one server "
        "(--type TYPE --id ID); every server in one process (--type all); or the echo "
        "frontend (--type echo)."
    )

    optFlags: list[list[Any]] = [
        ["no-gc-freeze", None, "do not freeze the startup heap out of the garbage collector"],
    ]

    optParameters: list[list[Any]] = [
        ["app", "a", None, "game folder (config/servers.json, servers/<type>/...)"],
        ["env", "e", "development", "environment section of the game's config files"],
        ["type", "t", None, "'master' (default with --app), a server type, 'all' or 'echo'"],
        ["id", None, None, "server id (default: the first server of the type)"],
        ["server", None, None, "JSON entry of a server not in servers.json (the master's add)"],
        [
            "discovery",
            None,
            None,
            "how servers find each other: 'master' or etcd://HOST:PORT/PREFIX "
            "(overrides master.json's discovery)",
        ],
        ["host", None, None, "master only: supervise just the servers servers.json puts on HOST"],
        ["listen", "l", None, "client endpoint string of the frontend (e.g. tcp:3010)"],
        ["acceptor", None, None, f"client acceptor: {', '.join(KINDS)} (default hybrid)"],
        ["serializer", None, None, "message body serializer: json or msgpack"],
        [
            "log-level",
            None,
            "info",
            f"lowest level logged ({', '.join(LOG_LEVELS)}), then NAMESPACE=LEVEL parts: "
            "info,pomelo_twisted.rpc=debug",
        ],
        ["log-format", None, "text", f"log lines: {' or '.join(LOG_FORMATS)}"],
        ["heartbeat", None, None, "heartbeat interval in seconds (0: off)", _seconds_or_off],
        ["handshake-timeout", None, None, "seconds to complete handshake + ack", _positive],
        ["max-packet-size", None, None, "largest package body accepted, bytes", int],
        ["max-pending-bytes", None, None, "send queue limit per client, bytes", int],
        ["request-rate", None, None, "requests/s per client (0: unlimited)", _seconds_or_off],
        ["request-burst", None, None, "requests a client may send at once", int],
        ["max-inflight", None, None, "requests of one client handled at once", int],
        ["max-refusals", None, None, "refusals (429) in a window before a kick", int],
        ["refusal-window", None, None, "seconds of the --max-refusals window", _positive],
        ["max-ignored-packages", None, None, "out-of-turn packages before a kick", int],
        ["slice-events", None, None, "packages of one client handled per turn", int],
        ["slice-bytes", None, None, "bytes of one client decoded per turn", int],
        ["slice-seconds", None, None, "seconds one client's packages may take per turn", float],
        ["max-connections", None, None, "client connections of a listener at once", int],
        ["max-connections-per-ip", None, None, "client connections from one IP at once", int],
    ]

    def parseOptions(self, options: list[str] | None = None) -> None:  # noqa: N802 (Twisted)
        """Parse; under twistd a usage error prints the usage and exits 2 (no traceback)."""
        try:
            super().parseOptions(options)
        except usage.UsageError as exc:
            if self.parent is None:  # called directly (tests): the caller handles it
                raise
            usage_exit(self, exc)

    def postOptions(self) -> None:
        """Validate choices and collect the connection-limit overrides."""
        if self["type"] is None:
            self["type"] = "master" if self["app"] else "echo"
        if self["type"] != "echo" and not self["app"]:
            raise usage.UsageError(f"--type {self['type']} needs --app DIR (a game folder)")
        if self["acceptor"] is not None and self["acceptor"] not in KINDS:
            raise usage.UsageError(
                f"unknown acceptor {self['acceptor']!r}; expected one of {', '.join(KINDS)}"
            )
        try:
            self["log-setup"] = LogSetup(self["log-level"], self["log-format"])
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None
        if self["serializer"] is not None:
            try:
                get_serializer(self["serializer"])
            except ValueError as exc:
                raise usage.UsageError(str(exc)) from None
        limits: dict[str, Any] = {}
        for option, field in LIMITS.items():
            if self[option] is not None:
                value = self[option]
                if option in ("heartbeat", "request-rate") and value == 0:
                    value = None
                limits[field] = value
        try:
            self["config"] = AgentConfig.from_mapping(limits)
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None
        self["limits"] = limits


def usage_exit(options: usage.Options, error: Exception) -> NoReturn:
    """Print ``options``' usage and ``error`` on stderr, then exit with status 2.

    twistd exits 1 after a usage error of a plugin's options and prints a traceback for
    one raised by ``makeService``; a usage error is status 2, one message, no traceback.
    """
    sys.stderr.write(f"{options}\ntwistd pomelo: error: {error}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def _settings(options: Options) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if options["limits"]:
        settings["connector_overrides"] = dict(options["limits"])
    for key in ("acceptor", "serializer"):
        if options[key] is not None:
            settings[key] = options[key]
    setup: LogSetup = options["log-setup"]
    if setup.log_format == "json":  # request ids follow each request across servers
        settings["request_ids"] = True
        settings["access_log"] = setup.enabled(ACCESS_NAMESPACE, LogLevel.debug)
    return settings


def _listen_override(options: Options, frontends: list[ServerInfo]) -> dict[str, dict[str, Any]]:
    if options["listen"] is None:
        return {}
    if len(frontends) != 1:
        raise usage.UsageError(
            f"--listen needs exactly one frontend, the game has {len(frontends)}: "
            + ", ".join(s.id for s in frontends)
        )
    return {frontends[0].id: {"listen": options["listen"]}}


def filter_log_level(level: str, beginner: LogBeginner = globalLogBeginner) -> None:
    """Make ``beginner`` log only events at ``level`` (a ``--log-level`` spec) and above,
    in text (:meth:`~pomelo_twisted.logs.beginning.LogSetup.install`; once per beginner)."""
    LogSetup(level).install(beginner)


def makeService(
    options: Options,
    reactor: IServerReactor | None = None,
    exit_process: Callable[[IServerReactor], None] = exit_after_shutdown,
    environ: Mapping[str, str] | None = None,
) -> IService:
    """The service tree for the options; ``reactor`` defaults to the global one (twistd),
    ``environ`` (the ``OTEL_*`` variables of tracing) to the process's environment."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = cast(IServerReactor, global_reactor)
    twistd = options.parent is not None
    if twistd:  # twistd begins logging after this
        options["log-setup"].install(globalLogBeginner)
    on_term = graceful_sigterm(reactor)
    if not options["no-gc-freeze"]:
        freeze_heap_when_running(reactor)
    try:
        environment = os.environ if environ is None else environ
        service = _compose(options, reactor, exit_process, environment)
    except (ConfigError, usage.UsageError) as exc:
        if twistd:
            usage_exit(options, exc)
        raise usage.UsageError(str(exc)) from None
    drain = getattr(service, "components", {}).get("drain")
    if drain is not None:  # a cluster server: SIGTERM drains it first
        on_term.drain = drain.drain
    return service


def _compose(
    options: Options,
    reactor: IServerReactor,
    exit_process: Callable[[IServerReactor], None],
    environ: Mapping[str, str],
) -> IService:
    """The tree of ``--type``, built by the module that owns that kind of server."""
    setup: LogSetup = options["log-setup"]
    if options["type"] == "echo":
        setup.name(options["id"] or "echo-1", "echo")
        return build_echo_frontend(
            reactor,
            server_id=options["id"] or "echo-1",
            endpoint=options["listen"] or DEFAULT_ECHO_ENDPOINT,
            kind=options["acceptor"] or "hybrid",
            serializer=options["serializer"] or "json",
            config=options["config"],
        )

    def failed(_: object = None) -> None:
        exit_process(reactor)

    config = GameConfig(Path(options["app"]), options["env"])
    if options["type"] == "master":
        host = options["host"]
        setup.name(f"supervisor-{host}" if host else config.master_settings().id, "master")
        master = build_master(
            config,
            reactor,
            on_listen_failure=failed,
            log_level=options["log-level"],
            log_format=options["log-format"],
            host=options["host"],
            discovery=options["discovery"],
        )
        return with_dashboard(master, config, reactor, on_listen_failure=failed)
    servers = config.servers()
    settings = _settings(options)
    tracing = TracingSetup.from_environ(environ, random.Random())  # None: off
    if options["type"] == "all":
        frontends = [s for infos in servers.values() for s in infos if s.frontend]
        per_server = _listen_override(options, frontends)
        setup.name(config.base_dir.name, "all")
        return build_standalone(
            reactor,
            config.base_dir,
            options["env"],
            settings=settings,
            overrides=lambda server: per_server.get(server.id, {}),
            on_start_failure=failed,
            tracing=tracing,
        )
    server = _chosen_server(options, config, servers)
    setup.name(server.id, server.type)
    return build_cluster_server(
        server,
        reactor=reactor,
        servers=servers,
        config=config,
        settings={**settings, **_listen_override(options, [server]).get(server.id, {})},
        on_start_failure=failed,
        discovery=options["discovery"],
        tracing=tracing,
    )


def _chosen_server(
    options: Options, config: GameConfig, servers: dict[str, list[ServerInfo]]
) -> ServerInfo:
    """The server of ``--type``/``--id`` (or ``--server``, added to ``servers``)."""
    if options["server"] is not None:
        try:
            server = ServerInfo.from_dict(json.loads(options["server"]), options["type"])
        except (ValueError, ConfigError) as exc:
            raise usage.UsageError(f"--server: not a server entry ({exc})") from None
        if options["id"] is not None and options["id"] != server.id:
            raise usage.UsageError(f"--id {options['id']} differs from --server's {server.id}")
        servers.setdefault(server.type, []).append(server)
        return server
    candidates = servers.get(options["type"], [])
    if options["id"] is not None:
        candidates = [s for s in candidates if s.id == options["id"]]
    if not candidates:
        raise usage.UsageError(
            f"no server {options['id'] or ''} of type {options['type']!r} in "
            f"{config.path('servers')} ({options['env']})"
        )
    return candidates[0]
