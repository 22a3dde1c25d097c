"""The acceptor service: one client listener, from an endpoint string.

A :class:`~twisted.application.internet.StreamServerEndpointService`, so it
listens in ``privilegedStartService`` (twistd calls it before dropping root: a
port below 1024 works) and stops listening on ``stopService``; on top of that it
holds the agents of its connections, reports the bound port on ``listening``,
and stopping also closes every client connection.
"""

from __future__ import annotations

from typing import Any, Literal

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..agent import CloseReason
from ..compat import endpoint_arguments
from ..gameconfig import LISTEN_BACKLOG
from ..interfaces import IAcceptor, IServerReactor
from .hybrid import HybridFactory
from .tcp import AgentPool, TCPFactory
from .websocket import WebSocketFactory

__all__ = ["KINDS", "AcceptorKind", "AcceptorService", "with_backlog"]

log = Logger()

AcceptorKind = Literal["hybrid", "tcp", "ws"]
KINDS: tuple[AcceptorKind, ...] = ("hybrid", "tcp", "ws")


# The endpoint types of serverFromString that take a ``backlog`` keyword.
_BACKLOG_TYPES = frozenset(("tcp", "tcp6", "ssl", "unix"))


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def with_backlog(description: str, backlog: int = LISTEN_BACKLOG) -> str:
    """``description`` with ``backlog=`` (the listen queue) when it names none.

    Twisted's default is 50: a connection storm overflows it. The string is read with
    Twisted's own endpoint grammar and written back quoted, so escaped colons (an IPv6
    ``interface``) survive; types that take no backlog (plugins) are left as they are.
    """
    args, kwargs = endpoint_arguments(description)
    if not args or args[0].lower() not in _BACKLOG_TYPES or "backlog" in kwargs:
        return description
    kwargs["backlog"] = str(int(backlog))
    return ":".join(
        [_quote(a) for a in args] + [f"{_quote(k)}={_quote(v)}" for k, v in kwargs.items()]
    )


def _protocol_factory(kind: AcceptorKind, agents: AgentPool) -> IProtocolFactory:
    if kind == "hybrid":
        return HybridFactory(agents)
    if kind == "tcp":
        return TCPFactory(agents)
    if kind == "ws":
        return WebSocketFactory(agents)
    raise ValueError(f"unknown acceptor kind {kind!r}; expected one of {', '.join(KINDS)}")


@implementer(IStreamServerEndpoint)
class _ReportingEndpoint:
    """An endpoint that tells its acceptor how its ``listen`` ended (port or failure)."""

    def __init__(self, endpoint: IStreamServerEndpoint, acceptor: AcceptorService) -> None:
        self.endpoint = endpoint
        self.acceptor = acceptor

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """Listen on the wrapped endpoint; the acceptor sees the outcome first."""
        self.acceptor.listen_requested = True
        d: Deferred[IListeningPort] = self.endpoint.listen(factory)
        return d.addCallbacks(self.acceptor.bound, self.acceptor.bind_failed)


@implementer(IAcceptor)
class AcceptorService(StreamServerEndpointService):
    """Listens on ``description`` (e.g. ``tcp:3010:interface=127.0.0.1``, ``ssl:...``),
    with a listen backlog of ``LISTEN_BACKLOG`` unless it names one (:func:`with_backlog`).

    ``kind`` is ``hybrid`` (raw TCP and WebSocket on one port, the default),
    ``tcp`` or ``ws``. Stopping closes every client connection, then the port.
    ``listening`` fires with the port once bound (or with the bind error).
    """

    def __init__(
        self,
        reactor: IServerReactor,
        description: str,
        agents: AgentPool,
        kind: AcceptorKind = "hybrid",
    ) -> None:
        self.description = description
        self.kind = kind
        self.agents = agents
        super().__init__(
            _ReportingEndpoint(serverFromString(reactor, with_backlog(description)), self),
            _protocol_factory(kind, agents),
        )
        self.port: IListeningPort | None = None
        self.listen_requested = False
        self.listening: Deferred[IListeningPort] = Deferred()

    def bound(self, port: IListeningPort) -> IListeningPort:
        """The endpoint is listening: remember the port and fire ``listening``."""
        self.port = port
        log.info("{kind} acceptor listening on {address}", kind=self.kind, address=port.getHost())
        self.listening.callback(port)
        return port

    def bind_failed(self, failure: Failure) -> Failure:
        """The endpoint cannot listen: fail ``listening`` (the base service logs it)."""
        log.error(
            "cannot listen on {endpoint}: {error}",
            endpoint=self.description,
            error=failure.getErrorMessage(),
        )
        self.listening.errback(failure)
        return failure

    def stopService(self) -> Deferred[None]:
        """Stop listening, close every connection, and fire once they are all gone."""
        waits: list[Deferred[Any]] = []
        if self.listen_requested:
            waits.append(maybeDeferred(super().stopService))
        else:
            Service.stopService(self)
        self.port = None
        if isinstance(self.factory, HybridFactory):
            self.factory.abort_sniffing()
        waits.append(self.agents.close_all(CloseReason.SERVER_CLOSED))
        return gatherResults(waits).addCallback(lambda _: None)
