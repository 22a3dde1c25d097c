"""The zope Interfaces of pomelo_twisted.

Every pluggable piece of the framework is described here by an Interface, and concrete
classes declare what they provide with ``@implementer``; tests check them with
:func:`zope.interface.verify.verifyObject`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IPushProducer,
    IReactorCore,
    IReactorProcess,
    IReactorTCP,
    IReactorTime,
)
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface

from .callcontext import CallContext

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort

    from .gameconfig import ServerInfo
    from .protocol import ClientHandshake

__all__ = [
    "CallEnd",
    "IAcceptor",
    "IAfterFilter",
    "IAgent",
    "IAgentLink",
    "IBeforeFilter",
    "IComponent",
    "IConnectionHandler",
    "IHandlerHooks",
    "IHookedTransport",
    "IModule",
    "IRequestHooks",
    "IRpcHooks",
    "IRpcTransport",
    "ISerializer",
    "IServerReactor",
    "ISlicedLink",
    "RequestEnd",
]


class IServerReactor(IReactorCore, IReactorTime, IReactorTCP, IReactorProcess):
    """The whole reactor a server, the master or a command runs on (Twisted's default
    reactor provides it). Code that needs only a clock takes an ``IReactorTime``; code
    that needs more takes this, never ``Any``. The entry points (``tap.py``, the
    ``pomelo-twisted`` command) ``cast`` the global reactor to it, once."""


class ISerializer(Interface):
    """Turns message bodies (JSON-like Python values) into bytes and back."""

    name = Attribute("short name announced in the handshake as sys.serializer, e.g. 'json'")

    def encode(obj: object) -> bytes:
        """Return the bytes of ``obj``; raise SerializationError if it cannot be encoded."""

    def decode(data: bytes) -> object:
        """Return the value encoded in ``data``; raise SerializationError if it is invalid."""


class IAgentLink(Interface):
    """What an agent writes through: one client transport (TCP, TLS or WebSocket)."""

    peer = Attribute("the client's address as text, for logs")

    def write(data: bytes) -> None:
        """Send one whole package (a WebSocket link sends it as one binary message)."""

    def close() -> None:
        """Close after the bytes already written have been sent."""

    def abort() -> None:
        """Drop the connection at once, discarding unsent bytes."""

    def register_producer(producer: IPushProducer) -> None:
        """Register a streaming ``IPushProducer`` on the underlying transport."""


class ISlicedLink(IAgentLink):
    """A link whose reads can wait: an agent handles a long read in slices, one a
    reactor turn, and pauses the reads meanwhile (a link without it is not paused)."""

    def pause_reading() -> None:
        """Stop delivering received bytes until ``resume_reading``."""

    def resume_reading() -> None:
        """Deliver received bytes again."""

    def call_batched(f: Callable[[], None]) -> None:
        """Call ``f``; the packages written meanwhile may leave in one write."""


class IAgent(Interface):
    """The server side of one client connection, as handlers, sessions and channels see
    it (:class:`pomelo_twisted.agent.Agent` provides it)."""

    sid = Attribute("the connection's id, unique among the connections of its frontend")
    session = Attribute("what the connection handler attached to it (a frontend Session)")
    serializer = Attribute("the ISerializer of the bodies on this connection")
    link = Attribute("the IAgentLink it writes through")
    peer = Attribute("the client's address as text, for logs")
    handshake = Attribute("the client's ClientHandshake, once received (else None)")
    state = Attribute("the protocol ConnectionState")
    working = Attribute("whether the handshake is acknowledged and the connection not closing")
    pending_bytes = Attribute("bytes queued while the transport is paused")
    close_reason = Attribute("why the connection closed (a CloseReason cause), or None")
    push_format = Attribute(
        "agents with equal push_format encode a push to the same bytes: a package from one's "
        "prepare_push serves them all (hashable)"
    )

    def push(route: str, msg: object) -> bool:
        """Push ``msg`` on ``route``; False when the connection is not working."""

    def prepare_push(route: str, msg: object) -> bytes:
        """A push package for ``push_prepared`` of every agent of the same ``push_format``."""

    def push_prepared(package: bytes) -> bool:
        """Write a package from ``prepare_push``; False when the connection is not working."""

    def kick(reason: str = "kick") -> None:
        """Send the client a kick package with ``reason``, then close."""

    def close(reason: str = "server closed") -> None:
        """Close without a kick package, recording ``reason``."""


class IConnectionHandler(Interface):
    """What a frontend does with its client connections (the application implements it).

    Bodies arrive raw, in the connection's serializer (``agent.serializer`` decodes them).
    A request's result is the response body (the agent serializes it), an ``EncodedBody``
    (written as it is), or a Deferred or coroutine of either; a raise or an errback is
    answered through ``responses.failure_response``.
    """

    def handshake(agent: IAgent, handshake: ClientHandshake) -> object:
        """Accept a ``ClientHandshake``: return the ``user`` data to send back (or None),
        or a Deferred of it; raise ``HandshakeRejected`` to refuse with code 501."""

    def connected(agent: IAgent) -> None:
        """The client acknowledged the handshake: the connection is working."""

    def request(agent: IAgent, route: str, body: bytes) -> object:
        """Handle a request whose ``body`` is as the client sent it (decode it with
        ``agent.serializer``): return the response body, an ``EncodedBody`` (written as
        it is), a Deferred or a coroutine of either. A failure is answered through
        ``responses.failure_response``."""

    def notify(agent: IAgent, route: str, body: bytes) -> object:
        """Handle a notify (``body`` as the client sent it); any result is discarded,
        failures are logged."""

    def disconnected(agent: IAgent, reason: str) -> None:
        """The connection closed for ``reason`` (one of ``CloseReason``'s causes)."""


class IHandshakeNegotiator(Interface):
    """One thing a client's handshake decides about its connection: the body serializer,
    protobuf routes, a client dialect (libpitaya, pypomelo), a session resume.

    A listener runs its negotiators in order on each accepted handshake, after the game's
    ``handshake`` hook and before the reply is sent; each reads ``handshake`` and changes
    ``offer`` (a :class:`pomelo_twisted.agent.negotiation.ConnectionOffer`: what the
    connection will be and the extra ``sys`` fields of the reply). It may raise
    ``HandshakeRejected`` to refuse the client with that code and reason.
    """

    name = Attribute("what it negotiates, for logs and docs (e.g. 'serializer')")

    def negotiate(agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        """Read ``handshake``; change ``offer`` (a ``ConnectionOffer``)."""


class IAcceptor(Interface):
    """A client listener (a Service): where clients connect and the agents it holds."""

    description = Attribute("its endpoint string, e.g. 'tcp:3010:interface=127.0.0.1'")
    kind = Attribute("'hybrid', 'tcp' or 'ws'")
    agents = Attribute("the AgentPool holding the live connections and their metrics")
    listening = Attribute("a Deferred firing with the IListeningPort once bound")


class IComponent(Interface):
    """A framework piece loaded into an Application with ``app.load(component, name=...)``.

    ``start`` runs in load order, ``after_start`` once the whole cluster is up,
    ``stop`` in reverse load order. Each may return a Deferred; the application waits.
    """

    name = Attribute("the component's name in app.components")

    def start() -> object:
        """Start (listen, connect, load state). A failure stops the server."""

    def after_start() -> object:
        """Every server of the cluster has started."""

    def stop(force: bool) -> object:
        """Stop; ``force`` when the process is going down without waiting for clients."""


class IModule(Interface):
    """A long-lived object a game registers (a DB pool, a matchmaker).

    Modules start after the components (``init`` then ``after_init``) and stop before
    them (``before_shutdown`` then ``shutdown``). Each may return a Deferred.
    """

    def init() -> object:
        """Prepare; components are running."""

    def after_init() -> object:
        """Every module of this server is initialised."""

    def before_shutdown() -> object:
        """The server is about to stop; stop taking new work."""

    def shutdown() -> object:
        """Release resources."""


class IBeforeFilter(Interface):
    """Runs before a handler; raising ``HandlerError`` (or failing) answers without it."""

    def before(context: object) -> object:
        """Inspect or change the ``RequestContext``; may return a Deferred."""


class IAfterFilter(Interface):
    """Runs after a handler (or its failure) with the response about to be sent."""

    def after(context: object, response: object) -> object:
        """Return the response to send (the same, or another); may return a Deferred."""


class IRpcTransport(Interface):
    """Carries calls between servers: in-process now, Perspective Broker for a cluster.

    A call names a server, a declared remote service and a method; arguments and
    results are plain data (what msgpack can carry). Failures are ``RpcError``s.
    """

    def register(server_id: str, dispatcher: object) -> None:
        """Serve calls for ``server_id`` with ``dispatcher(service, method, args)``,
        which returns the result or a Deferred and raises ``RpcError`` for unknown
        services or methods."""

    def unregister(server_id: str) -> None:
        """Stop serving ``server_id``; calls to it fail fast."""

    def call(
        server_id: str, service: str, method: str, args: tuple[object, ...], timeout: float
    ) -> object:
        """A Deferred of the remote result; ``RpcError`` when the server is unknown or
        down, the remote is undeclared or fails, or ``timeout`` seconds pass."""

    def peers() -> dict[str, str]:
        """Each peer server's id and connection state (``connecting``, ``up``, ``down``);
        empty for a transport without peers (in-process)."""

    def when_peers_up(timeout: float) -> Deferred[list[str]]:
        """Fires with ``[]`` as soon as every peer is up (at once when they are, or when
        there are none), or after ``timeout`` seconds with the ids still not up. Driven by
        the peers' events, never by polling."""


class INetworkRpcTransport(IRpcTransport):
    """An ``IRpcTransport`` between processes: it listens, and keeps a connection per peer."""

    def listen(endpoint: str) -> Deferred[IListeningPort]:
        """Serve the registered servers to peers on ``endpoint``; a Deferred of the port."""

    def stop() -> Deferred[None]:
        """Stop listening and close every peer connection; a Deferred."""

    def add_peer(info: ServerInfo) -> None:
        """Keep a connection to the peer server ``info``."""

    def remove_peer(server_id: str) -> Deferred[None]:
        """Forget a peer; calls to it fail as to an unknown server."""

    def reconnect(server_id: str) -> None:
        """The peer is known to be up again: connect now instead of after the backoff."""

    def peer_state(server_id: str) -> str | None:
        """``connecting``, ``up`` or ``down``; None for an unknown peer."""

    def when_peer_up(server_id: str, timeout: float) -> Deferred[bool]:
        """Fires True once the peer's link is up (at once if it is), False after
        ``timeout`` seconds or when the peer is removed first."""


CallEnd = Callable[[Failure | None], None]
"""The end of an RPC (:class:`IRpcHooks`): called with None (answered) or the failure the
caller got."""

RequestEnd = Callable[[object], None]
"""The end of a client request (:class:`IRequestHooks`): called with the response body (a
dict, an ``EncodedBody``, ...) or a ``Failure`` when the handler failed; a notify's with
None or a ``Failure``."""


class IRequestHooks(Interface):
    """Called around every client request and notify of a frontend."""

    def request_started(
        agent: IAgent, route: str, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        """A request (``notify`` False) or notify of ``agent`` for ``route`` begins: the
        call context it runs within, and its end (or None)."""


class IRpcHooks(Interface):
    """Called around every server-to-server call, on both sides."""

    def call_started(
        server_id: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        """This server sends ``service.method`` to ``server_id``: the call context it
        carries, and its end (or None). Not called for a call refused before sending
        (peer down, circuit open, arguments not plain data)."""

    def serve_started(
        peer: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        """This server runs ``service.method`` for ``peer`` (a server id, or ``local``
        in-process), called with ``context``: the context the remote runs within, and
        its end (or None)."""


class IHandlerHooks(Interface):
    """Called around the handler of every request a backend serves for a frontend (the
    ``forward`` hop, :class:`~pomelo_twisted.app.forward.ForwardReceiver`)."""

    def handler_started(
        route: str, session: object, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        """The handler of ``route`` runs for ``session`` (a ``BackendSession``): the call
        context it runs within, and its end (called with the response body, or None for
        a notify), or None."""


class IHookedTransport(Interface):
    """An RPC transport that calls :class:`IRpcHooks`."""

    hooks = Attribute("the IRpcHooks called around every call, or None (the default)")
