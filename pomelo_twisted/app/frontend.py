"""The frontend side of an Application: client connections become sessions and requests.

:class:`FrontendHandler` is what the agents of a frontend call, with each request's
route and its body as the client sent it. A route this server serves is decoded here
and dispatched; a route of another server type is forwarded with its body undecoded
(:mod:`pomelo_twisted.app.forward`), and the backend's encoded answer is written back
as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import BadRequest, SerializationError
from ..handlers.context import RequestContext
from ..interfaces import IAgent, IConnectionHandler
from ..protocol import ClientHandshake
from ..responses import EncodedBody, failure_response
from ..rpc.calls import DEFAULT_RPC_TIMEOUT
from .forward import Forwarder
from .typedroutes import request_validators

if TYPE_CHECKING:
    from .application import Application

__all__ = ["FrontendHandler", "forward_request", "forwarder_of"]

log = Logger()


def forwarder_of(app: Application) -> Forwarder:
    """The forwarder of a frontend ``app``'s requests."""
    return Forwarder(
        app.server_id,
        app.servers,
        app.router,
        app.rpc_call,
        seconds=app.reactor.seconds,
        timeout=lambda: float(app.get("rpc_timeout", DEFAULT_RPC_TIMEOUT)),
    )


def forward_request(forwarder: Forwarder, context: RequestContext) -> Deferred[Any]:
    """The dispatcher's ``forward``: a request with a decoded body (dispatched by game
    code) sent to another server type; a Deferred of the decoded response body."""
    return forwarder.forward_decoded(
        context.session, context.server_type, context.route, context.msg, context.notify
    )


@implementer(IConnectionHandler)
class FrontendHandler:
    """Connections of one frontend Application."""

    def __init__(self, app: Application, forwarder: Forwarder | None = None) -> None:
        assert app.session_service is not None, "only a frontend has client connections"
        self.app = app
        self.sessions = app.session_service
        self.dispatcher = app.dispatcher
        self.forwarder = forwarder if forwarder is not None else forwarder_of(app)
        # Typed forwarded routes are checked here, before the backend is called.
        self.validators = request_validators(app.handlers, app.base_dir, list(app.servers))

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
        """A local route dispatched (the body decoded here), another type's forwarded
        undecoded: the body, an ``EncodedBody`` or a Deferred of either."""
        dispatcher = self.dispatcher
        parts = dispatcher.route_parts(route)
        if parts is None:
            return dispatcher.call(route, None, agent.session)  # 404
        if parts[0] in dispatcher.server_types:
            return dispatcher.call_parsed(route, parts, _decode(agent, body), agent.session)
        serializer = agent.serializer.name
        try:
            validator = self.validators.get(route)
            if validator is not None:
                validator.check(body, serializer)
            d = self.forwarder.forward(agent.session, parts[0], route, serializer, body, False)
        except Exception:
            return self._failed(Failure(), agent, route, body)
        return d.addCallbacks(EncodedBody, self._failed, errbackArgs=(agent, route, body))

    def notify(self, agent: IAgent, route: str, body: bytes) -> object:
        """A notify, local or forwarded as a request is; the result is discarded."""
        dispatcher = self.dispatcher
        parts = dispatcher.route_parts(route)
        if parts is None:
            return dispatcher.call(route, None, agent.session, True)
        if parts[0] in dispatcher.server_types:
            return dispatcher.call_parsed(route, parts, _decode(agent, body), agent.session, True)
        serializer = agent.serializer.name
        validator = self.validators.get(route)
        if validator is not None:
            try:
                validator.check(body, serializer)
            except BadRequest as exc:
                log.debug("notify {route} refused: {error}", route=route, error=exc)
                return None
        d = self.forwarder.forward(agent.session, parts[0], route, serializer, body, True)
        return d.addErrback(_notify_failed, route)

    def disconnected(self, agent: IAgent, reason: str) -> None:
        """The connection closed: the session's on_closed callbacks run."""
        self.sessions.closed(agent.sid, reason)

    def _failed(self, failure: Failure, agent: IAgent, route: str, body: bytes) -> Any:
        """The body answering a forward that failed here: the game's error handler
        decides, else :func:`failure_response`."""
        dispatcher = self.dispatcher
        if dispatcher.error_handler is None:
            return failure_response(failure, route)
        parts = dispatcher.route_parts(route)
        assert parts is not None
        try:
            msg = agent.serializer.decode(body)
        except SerializationError:
            msg = body
        context = RequestContext(
            route=route,
            server_type=parts[0],
            handler=parts[1],
            method=parts[2],
            msg=msg,
            session=agent.session,
            started=dispatcher.clock.seconds(),
        )
        return dispatcher.failed(context, failure)


def _decode(agent: IAgent, body: bytes) -> object:
    """The request body, decoded with the connection's serializer (400 when it cannot)."""
    serializer = agent.serializer
    try:
        return serializer.decode(body)
    except SerializationError:
        raise BadRequest(f"body is not valid {serializer.name}") from None


def _notify_failed(failure: Failure, route: str) -> None:
    log.warn(
        "notify {route} was not delivered: {error}", route=route, error=failure.getErrorMessage()
    )
