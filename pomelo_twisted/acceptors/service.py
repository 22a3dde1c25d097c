"""The acceptor service: one client listener, from an endpoint string."""

from __future__ import annotations

from typing import Literal

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..agent import CloseReason
from ..interfaces import IAcceptor
from .hybrid import HybridFactory
from .tcp import AgentPool, TCPFactory
from .websocket import WebSocketFactory

__all__ = ["KINDS", "AcceptorKind", "AcceptorService"]

log = Logger()

AcceptorKind = Literal["hybrid", "tcp", "ws"]
KINDS: tuple[AcceptorKind, ...] = ("hybrid", "tcp", "ws")


def _protocol_factory(kind: AcceptorKind, agents: AgentPool) -> IProtocolFactory:
    if kind == "hybrid":
        return HybridFactory(agents)
    if kind == "tcp":
        return TCPFactory(agents)
    if kind == "ws":
        return WebSocketFactory(agents)
    raise ValueError(f"unknown acceptor kind {kind!r}; expected one of {', '.join(KINDS)}")


@implementer(IAcceptor)
class AcceptorService(Service):
    """Listens on ``endpoint`` (e.g. ``tcp:3010:interface=127.0.0.1``, ``ssl:...``).

    ``kind`` is ``hybrid`` (raw TCP and WebSocket on one port, the default),
    ``tcp`` or ``ws``. Stopping closes every client connection, then the port.
    ``listening`` fires with the port once bound (or with the bind error).
    """

    def __init__(
        self,
        reactor: object,
        endpoint: str,
        agents: AgentPool,
        kind: AcceptorKind = "hybrid",
    ) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.kind = kind
        self.agents = agents
        self.factory = _protocol_factory(kind, agents)
        self.port: IListeningPort | None = None
        self.listening: Deferred[IListeningPort] = Deferred()

    def startService(self) -> None:
        """Start listening."""
        super().startService()
        d = serverFromString(self.reactor, self.endpoint).listen(self.factory)
        d.addCallbacks(self._listening, self._failed)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        log.info("{kind} acceptor listening on {address}", kind=self.kind, address=port.getHost())
        self.listening.callback(port)

    def _failed(self, failure: Failure) -> None:
        log.failure("cannot listen on {endpoint}", failure, endpoint=self.endpoint)
        self.listening.errback(failure)

    def stopService(self) -> Deferred[None]:
        """Stop listening, close every connection, and fire once they are all gone."""
        super().stopService()
        port, self.port = self.port, None
        waits: list[Deferred[object]] = []
        if port is not None:
            waits.append(maybeDeferred(port.stopListening))
        if isinstance(self.factory, HybridFactory):
            self.factory.abort_sniffing()
        waits.append(self.agents.close_all(CloseReason.SERVER_CLOSED))  # type: ignore[arg-type]
        return gatherResults(waits).addCallback(lambda _: None)
