"""Test doubles for the client: a fake server over StringTransport and a tiny echo server."""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client import PomeloClient, PomeloClientProtocol
from pomelo_twisted.protocol import (
    ClientHandshake,
    Event,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Kick,
    Notify,
    Push,
    Request,
    Response,
    RouteDictionary,
    ServerConnection,
)
from pomelo_twisted.serializers import JsonSerializer

DICTIONARY = RouteDictionary.from_routes(
    ["chat.chatHandler.send", "connector.entryHandler.entry"], ["onChat"]
)


class FakeServer:
    """A :class:`ServerConnection` at the far end of the client's StringTransport."""

    def __init__(self, case: SynchronousTestCase, **client_kwargs: Any) -> None:
        self.case = case
        self.clock = task.Clock()
        self.client = PomeloClient(self.clock, **client_kwargs)
        self.protocol = PomeloClientProtocol(self.client)
        self.transport = StringTransport()
        self.server = ServerConnection()
        self.json = JsonSerializer()

    def connect(self) -> None:
        """Connect the client protocol: it sends its handshake."""
        self.protocol.makeConnection(self.transport)

    def written(self) -> bytes:
        """Bytes the client wrote since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return data

    def receive(self) -> list[Event]:
        """Events the server connection gets from what the client wrote since the last call."""
        return self.server.receive_data(self.written())

    def send(self, *events: Event) -> None:
        """Encode ``events`` on the server side and deliver them to the client in one chunk."""
        self.protocol.dataReceived(b"".join(self.server.send(e) for e in events))

    def handshake(self, **response: Any) -> PomeloClient:
        """Run the handshake with a reply built from ``response``; return the ready client."""
        self.connect()
        events = self.receive()
        self.case.assertIsInstance(events[0], ClientHandshake)
        self.send(HandshakeResponse(**response))
        self.case.assertEqual(self.receive(), [HandshakeAck()])
        return self.case.successResultOf(self.client.ready)

    def lose(self, reason: type[Exception] = ConnectionDone) -> None:
        """The transport reports the connection gone."""
        self.protocol.connectionLost(Failure(reason()))


class EchoLogic:
    """A minimal Pomelo server: echoes requests; some routes push, notify back or kick.

    * ``echo.push``: push ``onEcho`` with the body, then the response, in one write;
    * ``echo.kick``: kick with reason ``"bye"``;
    * any other request: respond with ``{"route": route, "body": body}``;
    * notify ``echo.notify``: push ``onNotify`` with the body.
    """

    heartbeat: float | None = None

    def start_echo(self) -> None:
        self.conn = ServerConnection()
        self.json = JsonSerializer()

    def send_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def hang_up(self) -> None:
        raise NotImplementedError

    def handle(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            self.handle_event(event)

    def handle_event(self, event: Event) -> None:
        conn, json = self.conn, self.json
        if isinstance(event, ClientHandshake):
            reply = HandshakeResponse(
                heartbeat=self.heartbeat,
                dictionary=DICTIONARY,
                use_dict=True,
                user={"hello": event.user, "type": event.sys.get("type")},
            )
            self.send_bytes(conn.send(reply))
        elif isinstance(event, Heartbeat) or (isinstance(event, HandshakeAck) and self.heartbeat):
            # one heartbeat right after the ack, then one in reply to each client heartbeat
            self.send_bytes(conn.send(Heartbeat()))
        elif isinstance(event, Request):
            body = json.decode(event.body)
            if event.route == "echo.push":
                push = conn.send(Push("onEcho", event.body))
                self.send_bytes(push + conn.send(Response(event.id, event.body)))
            elif event.route == "echo.kick":
                self.send_bytes(conn.send(Kick("bye")))
                self.hang_up()
            else:
                echoed = json.encode({"route": event.route, "body": body})
                self.send_bytes(conn.send(Response(event.id, echoed)))
        elif isinstance(event, Notify) and event.route == "echo.notify":
            self.send_bytes(conn.send(Push("onNotify", event.body)))


class EchoServerProtocol(EchoLogic, Protocol):
    """The echo server over a plain stream."""

    def __init__(self, lost: Deferred[None]) -> None:
        self.lost = lost

    def connectionMade(self) -> None:
        self.start_echo()

    def dataReceived(self, data: bytes) -> None:
        self.handle(data)

    def send_bytes(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def hang_up(self) -> None:
        assert self.transport is not None
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


class EchoServerFactory(Factory):
    """Makes echo protocols and remembers them (and when each connection went)."""

    def __init__(self) -> None:
        self.protocols: list[EchoServerProtocol] = []
        self.lost: list[Deferred[None]] = []

    def buildProtocol(self, addr: object) -> EchoServerProtocol:
        lost: Deferred[None] = Deferred()
        proto = EchoServerProtocol(lost)
        proto.factory = self
        self.protocols.append(proto)
        self.lost.append(lost)
        return proto
