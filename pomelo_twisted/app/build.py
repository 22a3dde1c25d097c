"""Building the Applications of a game: one server, or every server in one process.

``build_application`` wires one server: system remotes, the RPC server and (for
a frontend) the connector component, the game's handlers and remotes
discovered from ``servers/<type>/``, the route dictionary, then the game's own
``app.py`` ``configure(app)``. ``build_cluster_server`` makes it one server of a
cluster (Perspective Broker RPC, the monitor joining the master);
``build_standalone`` does it for every server of ``servers.json`` in one
process, joined by the in-process RPC transport.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..cluster.monitor import MonitorComponent
from ..cron import build_crons, register_cron_commands
from ..discovery.component import DiscoveryComponent
from ..discovery.interfaces import IServiceDiscovery, MembershipEvent
from ..discovery.select import build_etcd_discovery, etcd_settings
from ..drain.component import DrainComponent
from ..errors import ConfigError
from ..gameconfig import GameConfig, ServerInfo
from ..globalchannels.service import GlobalChannelService
from ..globalchannels.wiring import redis_components
from ..handlers.discovery import discover, discover_routes
from ..interfaces import IRpcTransport, IServerReactor
from ..loading import import_file
from ..logs.requestlog import install_request_log
from ..metrics.wiring import install_metrics
from ..protocol import RouteDictionary
from ..reload import CodeReloader, register_reload_command
from ..rpc import LocalRpcTransport, default_route, route_function
from ..rpc.breaker import BreakerBoard, BreakerSettings
from ..rpc.pb import PbRpcTransport
from ..rpc.pbguard import PortLimits
from ..session.backend import SYS_SERVICE
from ..tlsconfig import cluster_tls
from ..tracing import TracingSetup, install_tracing
from .application import Application
from .components import ConnectorComponent, RpcServerComponent
from .forward import FORWARD
from .frontend import forward_request, forwarder_of
from .sysremote import declare_system_remotes

__all__ = [
    "StandaloneService",
    "build_application",
    "build_cluster_server",
    "build_standalone",
    "load_game_module",
]

log = Logger()


def load_game_module(base_dir: Path) -> ModuleType | None:
    """The game's ``app.py`` (its ``configure(app)`` wiring), or None when absent."""
    path = base_dir / "app.py"
    if not path.exists():
        return None
    try:
        return import_file(path, "pomelo_game_app_")
    except Exception as exc:
        raise ConfigError(f"{path} failed to import: {exc}") from exc


def game_dictionary(config: GameConfig, server_types: Sequence[str]) -> RouteDictionary:
    """Handler routes of every server type, then ``config/dictionary.json``."""
    routes: list[str] = []
    for server_type in server_types:
        routes.extend(discover_routes(config.base_dir, server_type))
    return RouteDictionary.from_routes(routes, config.dictionary_routes())


def build_application(
    server: ServerInfo,
    *,
    reactor: IServerReactor,
    rpc: IRpcTransport,
    servers: Mapping[str, Sequence[ServerInfo]],
    config: GameConfig | None,
    dictionary: RouteDictionary | None = None,
    settings: Mapping[str, Any] | None = None,
    tracing: TracingSetup | None = None,
) -> Application:
    """One server of a game, wired and configured, not yet started; traced when
    ``tracing`` is given (:mod:`pomelo_twisted.tracing`)."""
    app = Application(server, reactor=reactor, rpc=rpc, servers=servers, config=config)
    for key, value in (settings or {}).items():
        app.set(key, value)
    if server.frontend:
        app.dispatcher.forward = partial(forward_request, forwarder_of(app))
    receiver = declare_system_remotes(app)
    if tracing is not None:  # its service first: it stops last, flushing every span
        traced = install_tracing(tracing, server, reactor, app.instruments)
        app.load(traced.service)
        app.instruments.add_handler_hooks(traced.handlers)
    app.load(RpcServerComponent(app))
    app.load(app.sessions)  # cluster-wide sessions: before the connector takes clients
    if server.frontend:
        app.load(ConnectorComponent(app))
    # -- Redis: global channels and online status (config/redis.json; none without it) --
    redis = config.redis() if config is not None else None
    if redis is not None:
        assert config is not None
        for component in redis_components(
            redis,
            reactor=reactor,
            rpc=app.rpc_call,
            server_type=server.type,
            sessions=app.session_service,
            where=config.where("redis"),
        ):
            app.load(component)
    # -- end Redis --
    if config is not None:
        for name, handler in discover(config.base_dir, server.type, "handler", app):
            app.register_handler(handler, name)
        for name, remote in discover(config.base_dir, server.type, "remote", app):
            app.register_remote(remote, name)
        # -- crons (config/crons.json) and hot reload: the cron and reload commands --
        crons = build_crons(config, server, reactor, app)
        app.load(crons)
        register_cron_commands(app.commands, crons)
        reloader = CodeReloader(
            config.base_dir, server.type, app, app.handlers, app.remotes, crons, server.id
        )
        register_reload_command(app.commands, reloader)
        # -- end crons and reload --
        # The remotes marked @idempotent, of every type this server may call.
        app.router.idempotent.declare_game(config.base_dir, list(servers))
        app.dictionary = dictionary or game_dictionary(config, list(servers))
        module = load_game_module(config.base_dir)
        configure = getattr(module, "configure", None)
        if configure is not None:
            configure(app)
    else:
        app.dictionary = dictionary
    if app.get("request_ids"):  # request ids in the logs (JSON logs, or the game, turn it on)
        access, forward = bool(app.get("access_log")), (SYS_SERVICE, FORWARD)
        install_request_log(app.instruments, server, reactor, random.Random(), access, forward)
    apply_rpc_settings(app, list(servers))
    install_metrics(app)  # metricsPort or the "metrics" setting (after configure set it)
    receiver.hooks = app.instruments.handlers  # tracing's and metrics' (None: no cost)
    return app


def apply_rpc_settings(app: Application, server_types: Sequence[str]) -> None:
    """The ``route`` setting (``crc32``, ``consistent-hash[:N]``) for every server type
    the game's ``configure`` did not route itself, and the circuit breakers' settings
    (``rpc_breaker_failures``, ``rpc_breaker_cool_down``); ConfigError naming a bad one."""
    spec = app.get("route")
    if spec is not None:
        route = route_function(spec)
        for server_type in server_types:
            if app.router.get(server_type) is default_route:
                app.route(server_type, route)
    board = getattr(app.rpc_transport, "breakers", None)
    if isinstance(board, BreakerBoard):
        try:
            board.configure(BreakerSettings.from_settings(app.settings))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"server {app.server_id}: {exc}") from None


def build_cluster_server(
    server: ServerInfo,
    *,
    reactor: IServerReactor,
    servers: Mapping[str, Sequence[ServerInfo]],
    config: GameConfig,
    settings: Mapping[str, Any] | None = None,
    on_start_failure: Callable[[Failure], None] | None = None,
    discovery: str | None = None,
    tracing: TracingSetup | None = None,
) -> Application:
    """One server of the game's cluster: RPC over Perspective Broker, and the monitor
    component joining the master of ``config/master.json`` (without a master the
    server alone decides that the cluster is up). With etcd discovery (master.json's
    ``discovery``, or ``discovery`` = ``--discovery``) it registers in etcd instead and
    needs no master (:mod:`pomelo_twisted.discovery`)."""
    etcd = etcd_settings(config, discovery)
    master = None if etcd is not None else config.master_endpoint()
    secret = config.cluster_secret()
    links = config.master_settings().rpc  # master.json's "rpc": pings, PB port limits
    tls = cluster_tls(config, server.id)
    if master is not None and tls is not None:
        master = tls.client(master, config.master_settings().id)
    app = build_application(
        server,
        reactor=reactor,
        rpc=PbRpcTransport(
            reactor,
            server.id,
            secret,
            tls=tls,
            port_limits=PortLimits(links.login_deadline, links.pre_login_bytes),
            ping_interval=links.ping_interval,
            ping_timeout=links.ping_timeout,
        ),
        servers=servers,
        config=config,
        dictionary=game_dictionary(config, list(servers)),
        settings=settings,
        tracing=tracing,
    )
    app.on_start_failure = on_start_failure
    if etcd is not None:
        # The session directory (unique login) keeps its bindings in the same etcd.
        app.set("discovery", app.get("discovery") or etcd.url)
        # A stop command read from etcd drains the server first, as SIGTERM does.
        drain = DrainComponent(app, stop_process=reactor.stop)
        found = build_etcd_discovery(app, etcd, stop_process=drain.drain)
        drain.announce = found.announce_leaving  # its record says "draining"
        app.load(DiscoveryComponent(app, found))
        forget_left_frontends(app, found)
        app.load(drain)
    elif master is None:
        app.started.addCallback(lambda _: app.after_start())
        app.load(DrainComponent(app, stop_process=reactor.stop))
    else:
        monitor = MonitorComponent(app, master, secret, stop_process=reactor.stop)
        app.load(monitor)
        forget_left_frontends(app, monitor.discovery)
        drain = DrainComponent(app, stop_process=reactor.stop, announce=monitor.announce_leaving)
        monitor.graceful_stop = drain.drain  # the master's stop drains, as SIGTERM does
        app.load(drain)
    return app


def forget_left_frontends(app: Application, discovery: IServiceDiscovery) -> None:
    """A frontend that left the cluster (its lease ended, or it was removed) loses its
    members of the global channels, when this server has them (config/redis.json)."""
    channels = app.components.get("global_channels")
    if not isinstance(channels, GlobalChannelService):
        return

    def left(event: MembershipEvent) -> None:
        if event.kind != "up" and event.server.frontend:
            channels.remove_frontend(event.server.id).addErrback(
                lambda f: log.info(
                    "global channels keep {frontend}'s members for now: {why}",
                    frontend=event.server.id,
                    why=f.getErrorMessage(),
                )
            )

    discovery.subscribe(left)


class StandaloneService(MultiService):
    """Every server of a game in one process; ``after_start`` once all have started."""

    def __init__(self, apps: list[Application]) -> None:
        super().__init__()
        self.apps = apps
        for app in apps:
            app.setServiceParent(self)
        self.all_started: Deferred[None] = Deferred()

    def startService(self) -> None:
        """Start every server (frontends last, so backends are ready for them)."""
        # Listen before starting: a server failing synchronously inside startService
        # must reach all_started (its ``started`` is consumed once it has failed).
        started = gatherResults([app.started for app in self.apps], consumeErrors=True)
        started.addCallback(self._all_up)
        started.addErrback(self._failed)
        super().startService()

    def _all_up(self, _: object) -> Deferred[Any]:
        d = gatherResults([app.after_start() for app in self.apps], consumeErrors=True)
        d.addCallback(lambda _: self.all_started.callback(None))
        return d

    def _failed(self, failure: Failure) -> None:
        if not self.all_started.called:
            self.all_started.errback(failure)
            self.all_started.addErrback(lambda _: None)


def build_standalone(
    reactor: IServerReactor,
    base_dir: Path | str,
    env: str = "development",
    *,
    settings: Mapping[str, Any] | None = None,
    overrides: Callable[[ServerInfo], Mapping[str, Any]] | None = None,
    on_start_failure: Callable[[Failure], None] | None = None,
    tracing: TracingSetup | None = None,
) -> StandaloneService:
    """Every server of the game at ``base_dir`` in one process, with in-process RPC.

    ``overrides(server)`` may give per-server settings (e.g. a ``listen`` endpoint);
    ``on_start_failure`` runs when a server fails to start; ``tracing`` traces them.
    """
    config = GameConfig(base_dir, env)
    servers = config.servers()
    if not servers:
        raise ConfigError(f"{config.path('servers')} declares no server for {env!r}")
    transport = LocalRpcTransport(reactor)
    dictionary = game_dictionary(config, list(servers))
    ordered = [s for infos in servers.values() for s in infos if not s.frontend]
    ordered += [s for infos in servers.values() for s in infos if s.frontend]
    apps = []
    for server in ordered:
        server_settings = dict(settings or {})
        if overrides is not None:
            server_settings.update(overrides(server))
        app = build_application(
            server,
            reactor=reactor,
            rpc=transport,
            servers=servers,
            config=config,
            dictionary=dictionary,
            settings=server_settings,
            tracing=tracing,
        )
        app.on_start_failure = on_start_failure
        apps.append(app)
    return StandaloneService(apps)
