"""The Application: one server process's state, wiring and lifecycle (Pomelo's ``app``).

It is a service tree (an :class:`~pomelo_twisted.app.lifecycle.OrderedServices`):
its children are its components in load order (a component that is a service,
like the connector with its acceptor, as it is; a game's ``IComponent`` through
a ``ComponentService``), then the hooks of the game's modules, handlers and
remotes. twistd (or the standalone runner) starts it: each child starts once the
previous one is ready, so components start in load order, then ``init`` and
``after_init``; ``after_start`` runs once the whole cluster is up; stopping runs
the shutdown hooks, then stops the components in reverse order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from twisted.application.service import IService
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from ..channels import ChannelService
from ..errors import ConfigError
from ..gameconfig import GameConfig, ServerInfo
from ..handlers.dispatch import Dispatcher
from ..handlers.registry import HandlerRegistry, default_name
from ..instruments import Instruments
from ..interfaces import IComponent, INetworkRpcTransport, IRpcTransport, IServerReactor
from ..protocol import RouteDictionary
from ..rpc import RemoteDispatcher, Router, RpcProxies
from ..rpc.calls import DEFAULT_RPC_TIMEOUT
from ..servercommands import ServerCommands
from ..session.component import SessionsComponent
from ..session.service import SessionService
from .lifecycle import ComponentService, HooksService, OrderedServices, run_in_order

__all__ = ["Application"]

IC = TypeVar("IC", IComponent, IService)

log = Logger()


def _matches(selector: str | None, value: str) -> bool:
    return selector is None or value in selector.split("|")


class Application(OrderedServices):
    """One server: its ServerInfo, settings, components, handlers, filters and RPC."""

    def __init__(
        self,
        server: ServerInfo,
        *,
        reactor: IServerReactor,
        rpc: IRpcTransport,
        servers: Mapping[str, Sequence[ServerInfo]],
        config: GameConfig | None = None,
        env: str = "development",
    ) -> None:
        super().__init__()
        self.setName(server.id)
        self.server = server
        self.reactor = reactor
        self.clock = reactor
        self.env = config.env if config is not None else env
        self.config = config
        self.rpc_transport = rpc
        self.servers: dict[str, list[ServerInfo]] = {t: list(s) for t, s in servers.items()}
        self.settings: dict[str, Any] = {}
        self.components: dict[str, IComponent | IService] = {}
        self.modules: dict[str, object] = {}
        self.handlers = HandlerRegistry()
        # Development mode checks typed routes' responses (pomelo_twisted.typed).
        self.handlers.validate_responses = self.env == "development"
        self.remotes = RemoteDispatcher()
        self.router = Router()
        self.rpc = RpcProxies(rpc, self.router, self.servers_of)
        #: Metrics, tracing and request-log hooks (:mod:`pomelo_twisted.instruments`).
        self.instruments = Instruments(rpc)
        #: Operator commands (:mod:`pomelo_twisted.servercommands`).
        self.commands = ServerCommands(server.id)
        self.dispatcher = Dispatcher({server.type}, self.handlers, reactor)
        self.session_service = SessionService(server.id) if server.frontend else None
        self.channel_service = ChannelService(self.rpc_call, self.frontend_ids)
        # -- cluster-wide sessions: app.sessions (an ISessionDirectory); build_application
        # loads it before the connector, its settings are read at start.
        self.sessions = SessionsComponent(self)
        self.dictionary: RouteDictionary | None = None
        self.started: Deferred[None] = Deferred()
        self.on_start_failure: Callable[[Failure], None] | None = None
        self._after_start_done = False
        self._hooks = HooksService(self._hooked)
        self._hooks.setServiceParent(self)

    def __repr__(self) -> str:
        return f"<Application {self.server.id} ({self.server.type})>"

    # -- identity and membership ----------------------------------------------

    @property
    def server_id(self) -> str:
        """This server's id."""
        return self.server.id

    @property
    def server_type(self) -> str:
        """This server's type."""
        return self.server.type

    @property
    def base_dir(self) -> Path | None:
        """The game folder, when the application runs a game."""
        return self.config.base_dir if self.config is not None else None

    def servers_of(self, server_type: str) -> list[ServerInfo]:
        """The servers of ``server_type`` in the cluster."""
        return self.servers.get(server_type, [])

    def add_server(self, info: ServerInfo) -> None:
        """A server joined the cluster (or changed address): route to it, connect to it."""
        servers = self.servers.setdefault(info.type, [])
        for index, known in enumerate(servers):
            if known.id == info.id:
                servers[index] = info
                break
        else:
            servers.append(info)
        if info.id != self.server.id and INetworkRpcTransport.providedBy(self.rpc_transport):
            self.rpc_transport.add_peer(info)

    def remove_server(self, server_id: str) -> ServerInfo | None:
        """A server left the cluster for good (stopped, not crashed): stop routing to it."""
        for servers in self.servers.values():
            for known in servers:
                if known.id == server_id:
                    servers.remove(known)
                    if INetworkRpcTransport.providedBy(self.rpc_transport):
                        self.rpc_transport.remove_peer(server_id)
                    return known
        return None

    def all_servers(self) -> list[ServerInfo]:
        """Every server of the cluster, this one included, by type then in order."""
        return [s for servers in self.servers.values() for s in servers]

    def frontend_ids(self) -> list[str]:
        """The ids of every frontend server."""
        return [s.id for servers in self.servers.values() for s in servers if s.frontend]

    def rpc_call(self, server_id: str, service: str, method: str, args: tuple[Any, ...]) -> Any:
        """A server-to-server call with the default deadline (``rpc_timeout`` setting)."""
        timeout = float(self.get("rpc_timeout", DEFAULT_RPC_TIMEOUT))
        return self.rpc_transport.call(server_id, service, method, args, timeout)

    # -- settings and configuration -------------------------------------------

    def set(self, key: str, value: Any) -> Application:
        """Store a setting; returns the application for chaining."""
        self.settings[key] = value
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """A setting, or ``default``."""
        return self.settings.get(key, default)

    def configure(
        self, env: str | None, server_type: str | None, fn: Callable[[Application], object]
    ) -> None:
        """Run ``fn(app)`` now when ``env`` and ``server_type`` match (``"a|b"`` selects
        several, ``None`` any), like Pomelo's ``app.configure``."""
        if _matches(env, self.env) and _matches(server_type, self.server.type):
            fn(self)

    # -- components, modules, handlers, filters, routes -----------------------

    def load(self, component: IC, name: str | None = None) -> IC:
        """Add a component (an ``IComponent``, or a named ``IService``): a child of this
        server's service tree; components start in load order and stop in reverse."""
        if IService.providedBy(component):
            verifyObject(IService, component)
        else:
            verifyObject(IComponent, component)
        key = name or component.name
        if key in self.components:
            raise ConfigError(f"{self.server.id}: a component named {key!r} is loaded already")
        if self.running:
            raise ConfigError(f"{self.server.id}: load {key!r} before the server starts")
        child = component if IService.providedBy(component) else ComponentService(component, key)
        if child.name != key:
            child.setName(key)
        # The hooks stay the last child: modules start after the components, stop before.
        self._hooks.disownServiceParent()
        child.setServiceParent(self)
        self._hooks.setServiceParent(self)
        self.components[key] = component
        return component

    def register_module(self, module: object, name: str) -> object:
        """Add a game module (init/after_init/before_shutdown/shutdown hooks)."""
        if name in self.modules:
            raise ConfigError(f"{self.server.id}: a module named {name!r} is registered already")
        self.modules[name] = module
        return module

    def register_handler(self, handler: object, name: str | None = None) -> None:
        """Serve ``handler``'s public methods as ``<this type>.<name>.<method>``."""
        self.handlers.register(self.server.type, name, handler)

    def register_remote(self, remote: object, name: str | None = None) -> None:
        """Declare ``remote``'s public methods for ``app.rpc.<type>.<name>.<method>``."""
        self.remotes.add(name or default_name(remote), remote)

    def before(self, flt: object, server_type: str | None = None) -> None:
        """Add a before-filter (global, or for the server types ``"a|b"``)."""
        if _matches(server_type, self.server.type):
            self.dispatcher.add_before(flt, self._filter_chain(server_type))

    def after(self, flt: object, server_type: str | None = None) -> None:
        """Add an after-filter (global, or for the server types ``"a|b"``)."""
        if _matches(server_type, self.server.type):
            self.dispatcher.add_after(flt, self._filter_chain(server_type))

    def filter(self, flt: object, server_type: str | None = None) -> None:
        """Add a filter to whichever chains it serves (before, after or both)."""
        if _matches(server_type, self.server.type):
            self.dispatcher.add_filter(flt, self._filter_chain(server_type))

    def _filter_chain(self, server_type: str | None) -> str | None:
        # A filter selected by server type joins the dispatcher's chain of this type,
        # which runs after the global chain (whatever the registration order).
        return None if server_type is None else self.server.type

    def set_error_handler(self, fn: Callable[[Any, Failure], object]) -> None:
        """Decide the response of a failed request: ``fn(context, failure) -> body``."""
        self.dispatcher.error_handler = fn

    def route(self, server_type: str, fn: Callable[[Any, Sequence[ServerInfo]], str]) -> None:
        """Choose the server of ``server_type`` for a session/uid: ``fn(param, servers)``."""
        self.router.set(server_type, fn)

    # -- lifecycle ------------------------------------------------------------

    def _hooked(self) -> list[tuple[str, object]]:
        steps: list[tuple[str, object]] = [(f"module {n}", m) for n, m in self.modules.items()]
        steps += [(f"handler {n}", h) for n, h in self.handlers.handlers()]
        steps += [(f"remote {n}", r) for n, r in self.remotes.objects()]
        return steps

    def startService(self) -> None:
        """Start the components in load order, then the modules' and handlers' hooks."""
        super().startService()
        self.when_ready().addCallbacks(self._up, self._start_failed)

    def _up(self, _: object) -> None:
        log.info(
            "{server} ({type}) started with components: {names}",
            server=self.server.id,
            type=self.server.type,
            names=", ".join(self.components) or "none",
        )
        self.started.callback(None)

    def _start_failed(self, failure: Failure) -> None:
        log.critical(
            "server {server} failed to start: {error}",
            server=self.server.id,
            error=failure.getErrorMessage(),
        )
        log.failure("start of {server}", failure, server=self.server.id)
        self.started.errback(failure)
        self.started.addErrback(lambda _: None)
        if self.on_start_failure is not None:
            self.on_start_failure(failure)

    def after_start(self) -> Deferred[None]:
        """The whole cluster is up: run every component's ``after_start`` once."""
        if self._after_start_done:
            return succeed(None)
        self._after_start_done = True
        return run_in_order("after_start", self.components.items(), "after_start")

    def handler_routes(self) -> Iterable[str]:
        """Routes of this server's handlers."""
        return self.handlers.routes()
