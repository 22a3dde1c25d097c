"""A tiny echo server: the connection handler tests, benchmarks and ``make run`` use.

Routes are told apart by their method (the last part of ``type.handler.method``):

- ``*.*.echo``: answers the body unchanged; a numeric ``delayMs`` (≤ 10000)
  delays the answer on the clock (responses overtake each other on a connection
  that keeps no order: ``ordered: false``);
- ``*.*.push``: pushes the body back on ``onPush``, then answers ``{"code": 200}``;
- ``*.*.kick``: answers ``{"code": 200, "kicking": true}``, then kicks with the
  body's ``reason`` on the next turn;
- ``*.*.fail``: raises (the handler-failure path: ``{"code": 500, ...}``);
- ``*.*.error``: raises ``HandlerError(body["code"], body["msg"])``;
- anything else: ``{"code": 500, "msg": "no handler for route ..."}``.

Bodies arrive raw and are decoded with the connection's serializer (a body that is
not valid answers 400). Notifies to ``*.*.push`` push as well; other notifies are
counted (undecodable ones are dropped).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from zope.interface import implementer

from ..errors import BadRequest, HandlerError, HandshakeRejected, SerializationError
from ..interfaces import IAgent, IConnectionHandler
from ..protocol import ClientHandshake, RouteDictionary

__all__ = ["ECHO_ROUTES", "EchoHandler", "echo_dictionary"]

MAX_DELAY_MS = 10_000
ECHO_ROUTES = (
    "connector.entryHandler.echo",
    "connector.entryHandler.push",
    "connector.entryHandler.kick",
    "connector.entryHandler.fail",
    "connector.entryHandler.error",
)


def echo_dictionary() -> RouteDictionary:
    """The route dictionary of the echo server (its routes, then ``onPush``)."""
    return RouteDictionary.from_routes(ECHO_ROUTES, ["onPush"])


@implementer(IConnectionHandler)
class EchoHandler:
    """Answers requests as the module docstring says; records what it saw."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.sessions: list[IAgent] = []
        self.closes: list[tuple[IAgent, str]] = []
        self.notified: list[tuple[str, object]] = []
        self.reject: str | None = None
        """When set, handshakes are refused with this reason (code 501)."""

    def handshake(self, agent: IAgent, handshake: ClientHandshake) -> object:
        """Accept (echoing the client's ``user`` data back) unless ``reject`` is set."""
        if self.reject is not None:
            raise HandshakeRejected(self.reject)
        return handshake.user if handshake.user else None

    def connected(self, agent: IAgent) -> None:
        """Remember the working connection."""
        self.sessions.append(agent)

    def disconnected(self, agent: IAgent, reason: str) -> None:
        """Remember the close and its reason."""
        self.closes.append((agent, reason))

    def request(self, agent: IAgent, route: str, body: bytes) -> object:
        """Dispatch on the route's method."""
        serializer = agent.serializer
        try:
            msg = serializer.decode(body)
        except SerializationError:
            raise BadRequest(f"body is not valid {serializer.name}") from None
        method = route.rsplit(".", 1)[-1]
        if method == "echo":
            delay = msg.get("delayMs") if isinstance(msg, dict) else None
            if isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay > 0:
                seconds = min(float(delay), MAX_DELAY_MS) / 1000.0
                answer: Deferred[object] = deferLater(self.clock, seconds, lambda: msg)
                return answer
            return msg
        if method == "push":
            agent.push("onPush", msg)
            return {"code": 200}
        if method == "kick":
            reason = msg.get("reason") if isinstance(msg, dict) else None
            self.clock.callLater(0, agent.kick, reason if isinstance(reason, str) else "kick")
            return {"code": 200, "kicking": True}
        if method == "fail":
            raise RuntimeError("deliberate handler failure")
        if method == "error" and isinstance(msg, dict):
            raise HandlerError(int(msg.get("code", 500)), str(msg.get("msg", "")))
        return {"code": 500, "msg": f"no handler for route {route}"}

    def notify(self, agent: IAgent, route: str, body: bytes) -> None:
        """Push back on ``*.push``; remember every notify."""
        try:
            msg = agent.serializer.decode(body)
        except SerializationError:
            return
        self.notified.append((route, msg))
        if route.endswith(".push"):
            agent.push("onPush", msg)
