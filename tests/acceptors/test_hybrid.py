"""The hybrid acceptor: first-byte sniffing, the raw TCP path and the WebSocket path."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.acceptors import PomeloTCPProtocol, PomeloWebSocketProtocol
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.interfaces import IAgentLink
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Kick,
    Request,
    Response,
)

from ..agent.helpers import HEARTBEAT, SYS, make_agents
from .helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    accept_key,
    client_frame,
    open_hybrid,
    server_frames,
    upgrade_request,
)

ECHO = "connector.entryHandler.echo"
CLOSE_NORMAL = (1000).to_bytes(2, "big")


class GlobalReactorCheck(SynchronousTestCase):
    """Fails a test that leaves delayed calls on the global reactor (autobahn uses it)."""

    def setUp(self) -> None:
        before = set(reactor.getDelayedCalls())  # type: ignore[attr-defined]

        def check() -> None:
            left = set(reactor.getDelayedCalls()) - before  # type: ignore[attr-defined]
            for call in left:
                call.cancel()
            self.assertEqual(left, set(), "delayed calls left on the global reactor")

        self.addCleanup(check)


class SniffingTests(GlobalReactorCheck):
    """What the first byte decides."""

    def test_pomelo_first_byte_takes_the_tcp_path(self) -> None:
        """A handshake package goes to the raw TCP protocol and is answered."""
        agents = make_agents()
        _, protocol, transport = open_hybrid(agents)
        client = ClientConnection()
        protocol.dataReceived(client.send(ClientHandshake(sys=dict(SYS))))
        self.assertIsInstance(protocol.inner, PomeloTCPProtocol)
        (reply,) = client.receive_data(transport.value())
        assert isinstance(reply, HandshakeResponse)
        self.assertEqual(reply.code, 200)

    def test_tcp_path_split_after_the_first_byte(self) -> None:
        """A handshake whose first byte arrives alone still works end to end."""
        agents = make_agents()
        _, protocol, transport = open_hybrid(agents)
        client = ClientConnection()
        data = client.send(ClientHandshake(sys=dict(SYS)))
        protocol.dataReceived(data[:1])
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(data[1:])
        client.receive_data(transport.value())
        transport.clear()
        protocol.dataReceived(client.send(HandshakeAck()))
        self.assertEqual(transport.value(), HEARTBEAT)
        transport.clear()
        protocol.dataReceived(client.send(Request(1, ECHO, b'{"a":1}')))
        (response,) = client.receive_data(transport.value())
        self.assertEqual(response, Response(1, b'{"a":1}', ECHO))
        assert isinstance(protocol.inner, PomeloTCPProtocol)
        verifyObject(IAgentLink, protocol.inner)

    def test_tcp_path_close_reaches_the_agent(self) -> None:
        """Losing the hybrid connection closes the inner agent and runs its hook."""
        agents = make_agents()
        _, protocol, transport = open_hybrid(agents)
        client = ClientConnection()
        protocol.dataReceived(client.send(ClientHandshake(sys=dict(SYS))))
        client.receive_data(transport.value())
        protocol.dataReceived(client.send(HandshakeAck()))
        transport.loseConnection()
        self.assertEqual(agents.metrics.closed, {"client closed": 1})
        self.assertEqual(len(agents.handler.closes), 1)
        self.assertEqual(agents.agents, {})

    def test_http_get_takes_the_websocket_path(self) -> None:
        """A WebSocket upgrade request on any path is answered 101 by autobahn."""
        agents = make_agents()
        _, protocol, transport = open_hybrid(agents)
        protocol.dataReceived(upgrade_request("/any/path?x=1"))
        self.assertIsInstance(protocol.inner, PomeloWebSocketProtocol)
        head, _, rest = transport.value().partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertTrue(lines[0].startswith(b"HTTP/1.1 101"), lines[0])
        self.assertIn(b"Sec-WebSocket-Accept: " + accept_key(), lines)
        self.assertEqual(rest, b"")
        self.assertEqual(len(agents.agents), 1)

    def test_silent_connection_aborted_at_handshake_timeout(self) -> None:
        """A connection that sends nothing is aborted at ``handshake_timeout`` and counted."""
        agents = make_agents(AgentConfig(handshake_timeout=10))
        _, protocol, transport = open_hybrid(agents)
        agents.clock.advance(9.5)
        self.assertTrue(transport.connected)
        agents.clock.advance(0.5)
        self.assertTrue(transport.disconnected)
        self.assertFalse(transport.connected)
        self.assertIsNone(protocol.inner)
        self.assertEqual(agents.metrics.connections_opened, 1)
        self.assertEqual(agents.metrics.closed, {"handshake timeout": 1})
        self.assertEqual(agents.metrics.connections_open, 0)
        self.assertEqual(agents.clock.getDelayedCalls(), [])

    def test_first_byte_cancels_the_sniffing_timer(self) -> None:
        """Once a byte arrived the sniffing timer is gone; the agent's deadline, counted
        from the accept (not restarted), takes over: accept to ack is one timeout."""
        agents = make_agents(AgentConfig(handshake_timeout=10))
        _, protocol, transport = open_hybrid(agents)
        agents.clock.advance(5)
        protocol.dataReceived(b"\x01")
        agents.clock.advance(4.5)
        self.assertTrue(transport.connected)
        agents.clock.advance(0.5)
        self.assertFalse(transport.connected)
        self.assertEqual(agents.metrics.closed, {"handshake timeout": 1})
        self.assertEqual(agents.metrics.connections_opened, 1)

    def test_closed_before_any_byte(self) -> None:
        """A client leaving before its first byte cancels the sniffing timer."""
        agents = make_agents()
        _, _, transport = open_hybrid(agents)
        transport.loseConnection()
        self.assertEqual(agents.clock.getDelayedCalls(), [])


class WebSocketPathTests(GlobalReactorCheck):
    """Pomelo over WebSocket behind the hybrid sniffing."""

    def setUp(self) -> None:
        super().setUp()
        self.agents = make_agents(AgentConfig(heartbeat=3))
        _, self.hybrid, self.transport = open_hybrid(self.agents)
        self.hybrid.dataReceived(upgrade_request())
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 101"))
        self.transport.clear()
        self.client = ClientConnection()

    def send(self, data: bytes, opcode: int = OP_BINARY) -> None:
        """Deliver ``data`` as one masked client frame."""
        self.hybrid.dataReceived(client_frame(data, opcode))

    def received(self) -> list[tuple[int, bytes]]:
        """The frames the server wrote since the last call."""
        frames = server_frames(self.transport.value())
        self.transport.clear()
        return frames

    def handshake(self) -> None:
        """Handshake and ack, each package in its own binary frame."""
        self.send(self.client.send(ClientHandshake(sys={"type": "js-websocket"})))
        ((opcode, payload),) = self.received()
        self.assertEqual(opcode, OP_BINARY)
        (reply,) = self.client.receive_data(payload)
        assert isinstance(reply, HandshakeResponse)
        self.assertEqual((reply.code, reply.serializer, reply.heartbeat), (200, "json", 3.0))
        self.send(self.client.send(HandshakeAck()))
        self.assertEqual(self.received(), [(OP_BINARY, HEARTBEAT)])

    def test_handshake_and_request(self) -> None:
        """Handshake, ack, request: each package the server sends is its own binary message."""
        self.handshake()
        self.send(self.client.send(Request(1, ECHO, b'{"ws":true}')))
        ((opcode, payload),) = self.received()
        self.assertEqual(opcode, OP_BINARY)
        self.assertEqual(self.client.receive_data(payload), [Response(1, b'{"ws":true}', ECHO)])
        inner = self.hybrid.inner
        assert isinstance(inner, PomeloWebSocketProtocol)
        verifyObject(IAgentLink, inner)
        self.assertEqual(inner.peer, "127.0.0.1:50123")
        self.assertIs(self.transport.producer, inner.agent.send_queue)

    def test_two_packages_in_one_frame(self) -> None:
        """A frame holding two requests gets both answered, one message each."""
        self.handshake()
        data = self.client.send(Request(1, ECHO, b'{"n":1}')) + self.client.send(
            Request(2, ECHO, b'{"n":2}')
        )
        self.send(data)
        frames = self.received()
        self.assertEqual([opcode for opcode, _ in frames], [OP_BINARY, OP_BINARY])
        events = [e for _, payload in frames for e in self.client.receive_data(payload)]
        self.assertEqual(events, [Response(1, b'{"n":1}', ECHO), Response(2, b'{"n":2}', ECHO)])

    def test_handshake_and_ack_in_one_text_frame_each(self) -> None:
        """Text frames are read like binary ones (handshake, ack, heartbeat, request)."""
        handshake = self.client.send(ClientHandshake(sys={"type": "js-websocket"}))
        self.send(handshake, OP_TEXT)
        ((_, payload),) = self.received()
        (reply,) = self.client.receive_data(payload)
        assert isinstance(reply, HandshakeResponse)
        self.assertEqual(reply.code, 200)
        self.send(self.client.send(HandshakeAck()), OP_TEXT)
        self.assertEqual(self.received(), [(OP_BINARY, HEARTBEAT)])
        self.send(HEARTBEAT, OP_TEXT)
        self.assertEqual(self.received(), [(OP_BINARY, HEARTBEAT)])
        self.send(self.client.send(Request(5, ECHO, b'{"t":1}')), OP_TEXT)
        ((_, payload),) = self.received()
        self.assertEqual(self.client.receive_data(payload), [Response(5, b'{"t":1}', ECHO)])

    def test_heartbeat_and_request_in_one_text_frame(self) -> None:
        """A text frame holding a heartbeat and a request gets both answered."""
        self.handshake()
        self.send(HEARTBEAT + self.client.send(Request(3, ECHO, b"{}")), OP_TEXT)
        events = [e for _, p in self.received() for e in self.client.receive_data(p)]
        self.assertEqual(events, [Heartbeat(), Response(3, b"{}", ECHO)])

    def test_kick_then_close_frame(self) -> None:
        """A kick goes out as a binary message, then a close frame; the client's close ends it."""
        self.handshake()
        agent = self.agents.agents[1]
        agent.kick("bye")
        frames = self.received()
        self.assertEqual(len(frames), 2, frames)
        self.assertEqual(frames[0][0], OP_BINARY)
        self.assertEqual(self.client.receive_data(frames[0][1]), [Kick("bye")])
        self.assertEqual(frames[1], (OP_CLOSE, CLOSE_NORMAL))
        self.assertTrue(self.transport.connected)
        self.send(CLOSE_NORMAL, OP_CLOSE)
        self.assertFalse(self.transport.connected)
        self.assertEqual(agent.close_reason, "kicked: bye")
        self.assertEqual(self.agents.metrics.closed, {"kicked": 1})
        self.assertEqual(self.agents.handler.closes, [(agent, "kicked: bye")])
        self.assertEqual(self.agents.clock.getDelayedCalls(), [])

    def test_unanswered_close_aborted_after_close_grace(self) -> None:
        """A client that never answers the close frame is aborted ``close_grace`` later."""
        # autobahn's own close-handshake timer runs on the global reactor, not on the
        # agents' clock: turn it off so only the agent's close_grace timer is in play.
        inner = self.hybrid.inner
        assert isinstance(inner, PomeloWebSocketProtocol)
        inner.closeHandshakeTimeout = 0
        self.handshake()
        self.agents.clock.advance(6)  # heartbeat timeout (2 x 3 s): close frame, no kick
        self.assertEqual(self.received(), [(OP_CLOSE, CLOSE_NORMAL)])
        agent = inner.agent
        assert agent is not None
        self.assertEqual(agent.close_reason, "heartbeat timeout")
        grace = self.agents.config.close_grace
        self.agents.clock.advance(grace - 0.5)
        self.assertTrue(self.transport.connected)
        self.agents.clock.advance(0.5)
        self.assertTrue(self.transport.disconnected)
        self.assertEqual(self.agents.metrics.closed, {"heartbeat timeout": 1})
        self.assertEqual(self.agents.handler.closes, [(agent, "heartbeat timeout")])

    def test_client_close_reaches_the_agent(self) -> None:
        """The TCP connection going away closes the agent with reason "client closed"."""
        self.handshake()
        self.transport.loseConnection()
        self.assertEqual(self.agents.metrics.closed, {"client closed": 1})
        self.assertEqual(self.agents.agents, {})
        (closed,) = self.agents.handler.closes
        self.assertEqual(closed[1], "client closed")
