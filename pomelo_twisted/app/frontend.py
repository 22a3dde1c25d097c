"""The frontend side of an Application: client connections become sessions and requests.

:class:`FrontendHandler` is what the agents of a frontend call; local routes go
to the dispatcher, routes of other server types are forwarded through RPC to a
server chosen by the route function, with a copy of the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import BadRequest, RpcError, SerializationError, error_response
from ..handlers.context import RequestContext
from ..interfaces import IAgent, IConnectionHandler
from ..protocol import ClientHandshake
from ..session import SYS_SERVICE

if TYPE_CHECKING:
    from .application import Application

__all__ = ["FrontendHandler", "forward_request"]

log = Logger()


def forward_request(app: Application, context: RequestContext) -> Deferred[Any]:
    """Send a request for another server type to the server its route function picks."""
    server_type = context.server_type
    servers = app.servers_of(server_type)
    if not servers:
        return succeed(error_response(500, f"no server type {server_type!r}"))
    try:
        server_id = app.router.pick(server_type, context.session, servers)
    except RpcError as exc:
        return succeed(error_response(500, str(exc)))
    args = (context.session.export(), context.route, context.msg, context.notify)
    d: Deferred[Any] = app.rpc_call(server_id, SYS_SERVICE, "forward", args)

    def failed(failure: Failure) -> dict[str, Any]:
        failure.trap(RpcError)
        log.warn(
            "forwarding {route} to {server} failed: {error}",
            route=context.route,
            server=server_id,
            error=failure.getErrorMessage(),
        )
        return error_response(500, failure.getErrorMessage())

    return d.addErrback(failed)


@implementer(IConnectionHandler)
class FrontendHandler:
    """Connections of one frontend Application."""

    def __init__(self, app: Application) -> None:
        assert app.session_service is not None, "only a frontend has client connections"
        self.app = app
        self.sessions = app.session_service

    def handshake(self, agent: IAgent, handshake: ClientHandshake) -> object:
        """The game's ``handshake`` setting decides: ``fn(user, sys) -> user data``;
        it may raise ``HandshakeRejected`` (code 501) or return a Deferred."""
        hook = self.app.get("handshake")
        if hook is None:
            return None
        return hook(handshake.user, handshake.sys)

    def connected(self, agent: IAgent) -> None:
        """The client acked the handshake: a session exists from now on."""
        agent.session = self.sessions.create(agent)

    def request(self, agent: IAgent, route: str, body: bytes) -> object:
        """Dispatch (locally or forwarded): the body, or a Deferred of it."""
        serializer = agent.serializer
        try:
            msg = serializer.decode(body)
        except SerializationError:
            raise BadRequest(f"body is not valid {serializer.name}") from None
        return self.app.dispatcher.call(route, msg, agent.session)

    def notify(self, agent: IAgent, route: str, body: bytes) -> object:
        """Dispatch a notify; the result is discarded."""
        try:
            msg = agent.serializer.decode(body)
        except SerializationError:
            return None
        return self.app.dispatcher.call(route, msg, agent.session, True)

    def disconnected(self, agent: IAgent, reason: str) -> None:
        """The connection closed: the session's on_closed callbacks run."""
        self.sessions.closed(agent.sid, reason)
