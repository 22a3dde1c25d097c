"""The default components of an Application: the RPC server and the client connector
(a service holding its acceptor)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..acceptors import KINDS, AcceptorService, AgentPool
from ..errors import ConfigError
from ..handlers.concurrency import concurrent_routes
from ..instruments import ObservedHandler
from ..interfaces import (
    IComponent,
    IConnectionHandler,
    IHandshakeNegotiator,
    INetworkRpcTransport,
)
from ..resume import ResumeNegotiator
from ..serializers import get_serializer
from .frontend import FrontendHandler
from .lifecycle import IReadyService
from .negotiators import connector_config, negotiators_of

if TYPE_CHECKING:
    from .application import Application

__all__ = ["ConnectorComponent", "RpcServerComponent"]

log = Logger()


@implementer(IComponent)
class RpcServerComponent:
    """Serves this server's declared remotes (and the system remotes) over the transport."""

    name = "rpc_server"

    def __init__(self, app: Application) -> None:
        self.app = app

    def start(self) -> Deferred[Any]:
        """Register the remote dispatcher under this server's id; over a network
        transport also listen on the server's RPC port and connect to every peer."""
        app = self.app
        transport = app.rpc_transport
        transport.register(app.server_id, app.remotes)
        if not INetworkRpcTransport.providedBy(transport):
            return succeed(None)
        for info in app.all_servers():
            if info.id != app.server_id:
                transport.add_peer(info)
        endpoint = app.get("rpc_listen") or app.server.rpc_endpoint
        return transport.listen(endpoint).addCallback(lambda _: None)

    def after_start(self) -> Deferred[None] | None:
        """Wait (``peer_wait`` seconds, default 5) until every peer is connected, so the
        cluster counts as up only once it can serve (at once without peers)."""
        transport = self.app.rpc_transport
        wait = float(self.app.get("peer_wait", 5.0))

        def report(down: list[str]) -> None:
            if down:
                log.warn(
                    "{server}: peers still not connected after {wait}s: {down}",
                    server=self.app.server_id,
                    wait=wait,
                    down=", ".join(down),
                )

        return transport.when_peers_up(wait).addCallback(report)

    def stop(self, force: bool) -> Deferred[None]:
        """Stop serving: calls to this server now fail fast; close peer connections."""
        transport = self.app.rpc_transport
        transport.unregister(self.app.server_id)
        if INetworkRpcTransport.providedBy(transport):
            return transport.stop()
        return succeed(None)


@implementer(IReadyService)
class ConnectorComponent(MultiService):
    """A frontend's client listener: a service whose child is the :class:`AcceptorService`.

    The acceptor is built from the settings (final once the game's ``configure``
    has run) in ``privilegedStartService``, so twistd binds the client port before
    it drops root, or in ``startService`` when nothing called that first.

    Settings: ``connector`` (an ``AgentConfig`` mapping: heartbeat, limits, use_dict;
    ``connector_overrides``, from the command line, wins over it),
    ``acceptor`` (``hybrid`` default, ``tcp``, ``ws``), ``serializer`` (``json`` or
    ``msgpack``), ``listen`` (an endpoint string overriding the server's client port),
    ``single_session`` (a uid logging in again kicks its older session).
    """

    def __init__(self, app: Application) -> None:
        super().__init__()
        self.setName("connector")
        self.app = app
        self.agents: AgentPool | None = None
        self.negotiators: list[IHandshakeNegotiator] = []
        self.acceptor: AcceptorService | None = None
        self._unusable: Failure | None = None

    def _acceptor(self) -> AcceptorService:
        app = self.app
        endpoint = app.get("listen") or app.server.client_endpoint
        if endpoint is None:
            raise ConfigError(f"frontend {app.server_id!r} has no clientPort and no 'listen'")
        kind = app.get("acceptor", "hybrid")
        if kind not in KINDS:
            raise ConfigError(f"{app.server_id}: unknown acceptor {kind!r}")
        config = connector_config(app)
        try:
            serializer = get_serializer(app.get("serializer", "json"))
        except ValueError as exc:
            raise ConfigError(f"{app.server_id}: {exc}") from None
        # The routes marked @concurrent skip the per-user order (pomelo_twisted.agent.ordering).
        marked = concurrent_routes(app.handlers, app.base_dir, list(app.servers))
        config = replace(config, concurrent_routes=config.concurrent_routes | marked)
        negotiators = self.negotiators = negotiators_of(app, config)
        assert app.session_service is not None
        app.session_service.single_session = bool(app.get("single_session", False))
        handler: IConnectionHandler = FrontendHandler(app)
        hooks = app.instruments.requests
        if hooks is not None:  # metrics, tracing, request logs (pomelo_twisted.instruments)
            handler = ObservedHandler(handler, hooks)
        self.agents = AgentPool(
            handler,
            app.clock,
            serializer=serializer,
            config=config,
            dictionary=app.dictionary,
            negotiators=negotiators,
        )
        return AcceptorService(app.reactor, endpoint, self.agents, kind=kind)

    def _build(self) -> None:
        """The acceptor child, once; a configuration it cannot listen with is kept as
        the failure :meth:`when_ready` reports (the server then fails to start)."""
        if self.acceptor is not None or self._unusable is not None:
            return
        try:
            self.acceptor = self._acceptor()
        except Exception:
            self._unusable = Failure()
            return
        self.acceptor.setName("acceptor")
        self.acceptor.setServiceParent(self)

    def privilegedStartService(self) -> None:
        """Build the acceptor and bind its port (twistd calls this before dropping root)."""
        self._build()
        super().privilegedStartService()

    def startService(self) -> None:
        """Listen for clients (unless privilegedStartService did already)."""
        self._build()
        super().startService()

    def stopService(self) -> Deferred[None]:
        """Close every connection (the acceptor), then the sessions parked for resume."""

        def close_parked(result: object) -> object:
            for negotiator in self.negotiators:
                if isinstance(negotiator, ResumeNegotiator):
                    negotiator.registry.close_all()
            return result

        return super().stopService().addBoth(close_parked)

    def when_ready(self) -> Deferred[None]:
        """Fires once the client port is bound (fails when it is taken or misconfigured)."""
        if self._unusable is not None:
            return fail(self._unusable)
        assert self.acceptor is not None
        ready: Deferred[None] = Deferred()

        def relay(result: object) -> None:
            if isinstance(result, Failure):
                ready.errback(result)
            else:
                ready.callback(None)

        self.acceptor.listening.addBoth(relay)
        return ready
