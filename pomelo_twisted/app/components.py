"""The default components of an Application: the RPC server and the client connector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from ..acceptors import KINDS, AcceptorService, AgentPool
from ..agent import AgentConfig
from ..errors import ConfigError
from ..interfaces import IComponent, INetworkRpcTransport
from ..rpc.pb import PbRpcTransport
from ..serializers import get_serializer
from .frontend import FrontendHandler

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
        listening: Deferred[Any] = transport.listen(endpoint)  # type: ignore[assignment]
        return listening.addCallback(lambda _: None)

    def after_start(self) -> Deferred[None] | None:
        """Over a network transport, wait (``peer_wait`` seconds, default 5) until every
        peer is connected, so the cluster counts as up only once it can serve."""
        transport = self.app.rpc_transport
        if not isinstance(transport, PbRpcTransport):
            return None
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
            stopped: Deferred[None] = transport.stop()  # type: ignore[assignment]
            return stopped
        return succeed(None)


@implementer(IComponent)
class ConnectorComponent:
    """A frontend's client listener.

    Settings: ``connector`` (an ``AgentConfig`` mapping: heartbeat, limits, use_dict;
    ``connector_overrides``, from the command line, wins over it),
    ``acceptor`` (``hybrid`` default, ``tcp``, ``ws``), ``serializer`` (``json`` or
    ``msgpack``), ``listen`` (an endpoint string overriding the server's client port),
    ``single_session`` (a uid logging in again kicks its older session).
    """

    name = "connector"

    def __init__(self, app: Application) -> None:
        self.app = app
        self.agents: AgentPool | None = None
        self.acceptor: AcceptorService | None = None

    def start(self) -> Deferred[Any]:
        """Listen for clients; fires once bound (fails when the port is taken)."""
        app = self.app
        endpoint = app.get("listen") or app.server.client_endpoint
        if endpoint is None:
            raise ConfigError(f"frontend {app.server_id!r} has no clientPort and no 'listen'")
        kind = app.get("acceptor", "hybrid")
        if kind not in KINDS:
            raise ConfigError(f"{app.server_id}: unknown acceptor {kind!r}")
        try:
            config = AgentConfig.from_mapping(
                {**app.get("connector", {}), **app.get("connector_overrides", {})}
            )
            serializer = get_serializer(app.get("serializer", "json"))
        except ValueError as exc:
            raise ConfigError(f"{app.server_id}: {exc}") from None
        assert app.session_service is not None
        app.session_service.single_session = bool(app.get("single_session", False))
        self.agents = AgentPool(
            FrontendHandler(app),
            app.clock,
            serializer=serializer,
            config=config,
            dictionary=app.dictionary,
        )
        self.acceptor = AcceptorService(app.reactor, endpoint, self.agents, kind=kind)
        self.acceptor.startService()
        return self.acceptor.listening

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def stop(self, force: bool) -> Deferred[None]:
        """Stop listening and close every client connection."""
        if self.acceptor is None or not self.acceptor.running:
            return succeed(None)
        return self.acceptor.stopService()
