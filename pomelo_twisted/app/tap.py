"""``twistd pomelo``: command-line options and the service tree of a server process.

- ``--app DIR [--type master]``: the master of the game's cluster; it starts
  every server of ``config/servers.json`` as its own process (the default
  type when ``--app`` is given);
- ``--app DIR --type TYPE [--id ID]``: one server of the game, talking to its
  peers over Perspective Broker and joining the master (``config/master.json``);
  ``--server JSON`` gives the entry of a server not in servers.json (the
  admin ``add`` command);
- ``--app DIR --type all``: every server of the game in this process
  (standalone, in-process RPC, no master);
- ``--type echo``: the echo frontend of :mod:`pomelo_twisted.testing.echo`
  (tests and benchmarks); the default without ``--app``.

Connection limits given on the command line override the game's ``connector``
setting; ``--listen`` overrides the client endpoint of the (single) frontend.
Once the reactor runs, the startup heap is frozen out of the garbage collector
(:mod:`pomelo_twisted.app.heap`; ``--no-gc-freeze`` to keep it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from ..acceptors import KINDS, AcceptorService, AgentPool
from ..agent import AgentConfig
from ..cluster import ServerInfo
from ..cluster.master import MasterService
from ..cluster.monitor import MonitorComponent
from ..cluster.server_info import LISTEN_BACKLOG
from ..cluster.supervisor import Supervisor
from ..errors import ConfigError
from ..rpc.pb import PbRpcTransport
from ..serializers import get_serializer
from ..testing.echo import EchoHandler, echo_dictionary
from .application import Application
from .build import StandaloneService, build_application, build_standalone, game_dictionary
from .config import GameConfig
from .heap import freeze_heap_when_running

__all__ = ["Options", "exit_after_shutdown", "makeService"]

log = Logger()

# Command-line limit -> AgentConfig field.
LIMITS = {
    "heartbeat": "heartbeat",
    "handshake-timeout": "handshake_timeout",
    "max-packet-size": "max_packet_size",
    "max-pending-bytes": "max_pending_bytes",
    "request-rate": "request_rate",
    "request-burst": "request_burst",
    "max-inflight": "max_inflight",
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
        ["listen", "l", None, "client endpoint string of the frontend (e.g. tcp:3010)"],
        ["acceptor", None, None, f"client acceptor: {', '.join(KINDS)} (default hybrid)"],
        ["serializer", None, None, "message body serializer: json or msgpack"],
        ["heartbeat", None, None, "heartbeat interval in seconds (0: off)", _seconds_or_off],
        ["handshake-timeout", None, None, "seconds to complete handshake + ack", _positive],
        ["max-packet-size", None, None, "largest package body accepted, bytes", int],
        ["max-pending-bytes", None, None, "send queue limit per client, bytes", int],
        ["request-rate", None, None, "requests/s per client (0: unlimited)", _seconds_or_off],
        ["request-burst", None, None, "requests a client may send at once", int],
        ["max-inflight", None, None, "requests of one client handled at once", int],
    ]

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


def exit_after_shutdown(reactor: Any, code: int = 1) -> None:
    """Stop the reactor, and exit with ``code`` once shutdown has finished."""

    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    reactor.addSystemEventTrigger("after", "shutdown", leave)
    if reactor.running:
        reactor.stop()
    else:  # failed during startup (twistd starts services before the loop runs)
        reactor.callWhenRunning(reactor.stop)


def graceful_sigterm(reactor: Any) -> None:
    """On SIGTERM stop the reactor (services stop in order) and exit 0.

    twistd's own handler re-raises the signal after shutdown, so a supervisor
    would see the process as killed; ours is installed once the reactor has
    installed its handlers, at startup.
    """

    def install() -> None:
        signal.signal(signal.SIGTERM, lambda _sig, _frame: reactor.callFromThread(reactor.stop))

    reactor.addSystemEventTrigger("during", "startup", install)


def _settings(options: Options) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if options["limits"]:
        settings["connector_overrides"] = dict(options["limits"])
    for key in ("acceptor", "serializer"):
        if options[key] is not None:
            settings[key] = options[key]
    return settings


def _echo_service(options: Options, reactor: Any) -> IService:
    server = MultiService()
    server.setName(options["id"] or "echo-1")
    agents = AgentPool(
        EchoHandler(reactor),
        reactor,
        serializer=get_serializer(options["serializer"] or "json"),
        config=options["config"],
        dictionary=echo_dictionary(),
    )
    endpoint = options["listen"] or f"tcp:3010:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"
    acceptor = AcceptorService(reactor, endpoint, agents, kind=options["acceptor"] or "hybrid")
    acceptor.setName("acceptor")
    acceptor.setServiceParent(server)
    return server


def _listen_override(options: Options, frontends: list[ServerInfo]) -> dict[str, dict[str, Any]]:
    if options["listen"] is None:
        return {}
    if len(frontends) != 1:
        raise usage.UsageError(
            f"--listen needs exactly one frontend, the game has {len(frontends)}: "
            + ", ".join(s.id for s in frontends)
        )
    return {frontends[0].id: {"listen": options["listen"]}}


def makeService(
    options: Options,
    reactor: Any = None,
    exit_process: Callable[[Any], None] = exit_after_shutdown,
) -> IService:
    """The service tree for the options; ``reactor`` defaults to the global one (twistd)."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    graceful_sigterm(reactor)
    if not options["no-gc-freeze"]:
        freeze_heap_when_running(reactor)
    if options["type"] == "echo":
        return _echo_service(options, reactor)
    try:
        config = GameConfig(Path(options["app"]), options["env"])
        servers = config.servers()
    except ConfigError as exc:
        raise usage.UsageError(str(exc)) from None
    settings = _settings(options)

    def failed(failure: Failure) -> None:
        exit_process(reactor)

    if options["type"] == "master":
        return _master_service(config, reactor, exit_process)
    if options["type"] == "all":
        frontends = [s for infos in servers.values() for s in infos if s.frontend]
        per_server = _listen_override(options, frontends)
        standalone: StandaloneService = build_standalone(
            reactor,
            config.base_dir,
            options["env"],
            settings=settings,
            overrides=lambda server: per_server.get(server.id, {}),
        )
        for each in standalone.apps:
            each.on_start_failure = failed
        return standalone
    server = _chosen_server(options, config, servers)
    server_settings = {**settings, **_listen_override(options, [server]).get(server.id, {})}
    try:
        master = config.master_endpoint()
        secret = config.cluster_secret()
    except ConfigError as exc:
        raise usage.UsageError(str(exc)) from None
    app: Application = build_application(
        server,
        reactor=reactor,
        rpc=PbRpcTransport(reactor, server.id, secret),
        servers=servers,
        config=config,
        dictionary=game_dictionary(config, list(servers)),
        settings=server_settings,
    )
    app.on_start_failure = failed
    if master is None:  # no master: the server is the whole cluster's judge of "up"
        app.started.addCallback(lambda _: app.after_start())
    else:
        app.load(MonitorComponent(app, master, secret, stop_process=reactor.stop))
    return app


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


def _seconds(entry: dict[str, Any], key: str, default: float) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"master.json: {key!r} must be a positive number of seconds")
    return float(value)


def _master_service(
    config: GameConfig, reactor: Any, exit_process: Callable[[Any], None]
) -> IService:
    """The master of the game's cluster; exits 1 when it cannot listen.

    master.json may tune it: ``stopTimeout`` (seconds a server gets to stop before
    SIGKILL, default 10), ``restartMinDelay`` / ``restartMaxDelay`` (the restart
    backoff, default 0.5 and 30 s) and ``restartStableAfter`` (a run this long, in
    seconds, resets the backoff; default 10).
    """
    try:
        secret = config.cluster_secret()
        entry = config.master()
        limits = {
            key: _seconds(entry, key, default)
            for key, default in (
                ("stopTimeout", 10.0),
                ("restartMinDelay", 0.5),
                ("restartMaxDelay", 30.0),
                ("restartStableAfter", 10.0),
            )
        }
        try:
            supervisor = Supervisor(
                reactor,
                min_delay=limits["restartMinDelay"],
                max_delay=limits["restartMaxDelay"],
                stable_after=limits["restartStableAfter"],
                stop_timeout=limits["stopTimeout"],
            )
        except ValueError as exc:
            raise ConfigError(f"{config.path('master')}: {exc}") from None
        master = MasterService(
            reactor,
            config,
            secret,
            supervisor=supervisor,
            stop_timeout=limits["stopTimeout"],
        )
    except ConfigError as exc:
        raise usage.UsageError(str(exc)) from None
    master.stop_process = lambda: reactor.stop()

    def cannot_listen() -> None:
        exit_process(reactor)

    master.on_listen_failure = cannot_listen
    return master
