"""A frontend in memory with resume: sessions, an agent pool, clients over StringTransports."""

from __future__ import annotations

import json
from random import Random
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from zope.interface import implementer

from pomelo_twisted.acceptors import AgentPool, PomeloTCPProtocol, TCPFactory
from pomelo_twisted.agent import Agent, AgentConfig
from pomelo_twisted.interfaces import IAgent, IConnectionHandler, IHandshakeNegotiator
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    Event,
    HandshakeAck,
    HandshakeResponse,
    Push,
    Request,
    Response,
)
from pomelo_twisted.resume import ResumeNegotiator, ResumeSettings
from pomelo_twisted.session.service import SessionService
from pomelo_twisted.session.session import Session
from pomelo_twisted.testing import echo_dictionary

SYS = {"type": "socket", "version": "0.0.1", "rsa": {}}
FRONTEND = "connector-1"


@implementer(IConnectionHandler)
class SessionHandler:
    """A frontend's handler in small: a session per connection; ``bind`` binds the uid
    in the body, anything else echoes; records what it is told."""

    def __init__(self, sessions: SessionService) -> None:
        self.sessions = sessions
        self.connects: list[int] = []
        self.disconnects: list[tuple[int, str]] = []

    def handshake(self, agent: IAgent, handshake: ClientHandshake) -> object:
        return None

    def connected(self, agent: IAgent) -> None:
        agent.session = self.sessions.create(agent)
        self.connects.append(agent.sid)

    def request(self, agent: IAgent, route: str, body: bytes) -> object:
        msg = json.loads(body)
        session = agent.session
        assert isinstance(session, Session)
        if route == "bind":
            return session.bind(msg["uid"]).addCallback(lambda _: {"sid": session.id})
        return {"sid": session.id, "echo": msg}

    def notify(self, agent: IAgent, route: str, body: bytes) -> None:
        pass

    def disconnected(self, agent: IAgent, reason: str) -> None:
        self.disconnects.append((agent.sid, reason))
        self.sessions.closed(agent.sid, reason)


class Client:
    """One client connection: the sans-I/O client connection over a StringTransport."""

    def __init__(
        self,
        frontend: Frontend,
        resume: dict[str, Any] | None,
        ack: bool,
        sys: dict[str, Any] | None = None,
    ) -> None:
        self.frontend = frontend
        protocol = TCPFactory(frontend.agents).buildProtocol(None)  # type: ignore[arg-type]
        assert isinstance(protocol, PomeloTCPProtocol)
        self.protocol = protocol
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = protocol
        protocol.makeConnection(self.transport)
        self.conn = ClientConnection()
        self.pushes: list[tuple[str, Any]] = []
        fields = {**SYS, **(sys or {})}
        if resume is not None:
            fields["resume"] = resume
        self.send(ClientHandshake(sys=fields))
        (reply,) = self.events()
        assert isinstance(reply, HandshakeResponse) and reply.code == 200, reply
        self.sys: dict[str, Any] = dict(reply.extra_sys or {})
        if ack:
            self.acknowledge()

    def acknowledge(self) -> None:
        """Send the handshake ack and read what follows."""
        self.send(HandshakeAck())
        self.read()

    @property
    def agent(self) -> Agent:
        agent = self.protocol.agent
        assert agent is not None
        return agent

    @property
    def resume(self) -> dict[str, Any]:
        """The reply's ``sys.resume``."""
        reply = self.sys["resume"]
        assert isinstance(reply, dict)
        return reply

    def send(self, event: Event) -> None:
        self.protocol.dataReceived(self.conn.send(event))

    def events(self) -> list[Event]:
        data = self.transport.value()
        self.transport.clear()
        return self.conn.receive_data(data)

    def read(self) -> list[Any]:
        """Read what the server wrote: pushes are kept; the response bodies returned."""
        responses = []
        for event in self.events():
            if isinstance(event, Push):
                self.pushes.append((event.route, json.loads(event.body)))
            elif isinstance(event, Response):
                responses.append(json.loads(event.body))
        return responses

    def request(self, route: str, body: object, msg_id: int = 1) -> Any:
        self.send(Request(msg_id, route, json.dumps(body).encode()))
        (response,) = self.read()
        return response

    def drop(self) -> None:
        """The network drops the connection (the server sees it lost)."""
        self.transport.loseConnection()

    def texts(self) -> list[Any]:
        """The ``n`` of every ``onChat`` push received, in order."""
        return [body["n"] for route, body in self.pushes if route == "onChat"]


class Frontend:
    """A frontend's sessions, a resume negotiator and an agent pool, on one Clock."""

    def __init__(self, frontend_id: str = FRONTEND, **settings: Any) -> None:
        self.clock = Clock()
        self.sessions = SessionService(frontend_id)
        self.handler = SessionHandler(self.sessions)
        self.negotiator = ResumeNegotiator.for_sessions(
            self.sessions, self.clock, Random(7), ResumeSettings(**settings)
        )
        negotiators: list[IHandshakeNegotiator] = [self.negotiator]
        self.agents = AgentPool(
            self.handler,
            self.clock,
            config=AgentConfig(heartbeat=None),
            dictionary=echo_dictionary(),
            negotiators=negotiators,
        )

    @property
    def registry(self) -> Any:
        return self.negotiator.registry

    def connect(
        self,
        resume: dict[str, Any] | None = None,
        *,
        ack: bool = True,
        sys: dict[str, Any] | None = None,
    ) -> Client:
        """A client connection asking ``resume`` (None: a stock client), with more
        handshake ``sys`` fields; acknowledged unless ``ack`` is false."""
        return Client(self, resume, ack, sys)

    def chat(self, *numbers: int, uid: str = "alice") -> None:
        """Push ``onChat {"n": n}`` to ``uid`` for each number (the channel's path)."""
        for n in numbers:
            self.sessions.push_to_uids("onChat", {"n": n}, [uid])

    def closed_callbacks(self, session: Session) -> list[str]:
        """A list filled with the reasons ``session``'s on_closed callbacks get."""
        reasons: list[str] = []
        session.on_closed(lambda _s, reason: reasons.append(reason))
        return reasons
