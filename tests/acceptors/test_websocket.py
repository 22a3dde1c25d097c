"""The WebSocket acceptor's own frame path, after autobahn's opening handshake."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection

from pomelo_twisted.acceptors import PomeloWebSocketProtocol, WebSocketFactory
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    Request,
    Response,
)
from pomelo_twisted.protocol.wsframe import OPCODE_PING, OPCODE_PONG, encode_frame

from ..agent.helpers import HEARTBEAT, make_agents
from .helpers import OP_BINARY, OP_CLOSE, client_frame, server_frames, upgrade_request
from .test_hybrid import GlobalReactorCheck

ECHO = "connector.entryHandler.echo"
MASK = b"\x01\x02\x03\x04"
PEER = IPv4Address("TCP", "127.0.0.1", 50124)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


class FramePathTests(GlobalReactorCheck):
    """Frames in and out of a WebSocket connection on a memory transport."""

    def setUp(self) -> None:
        super().setUp()
        self.agents = make_agents(AgentConfig(heartbeat=3, max_packet_size=1000))
        factory = WebSocketFactory(self.agents)
        self.protocol = factory.buildProtocol(PEER)
        assert isinstance(self.protocol, PomeloWebSocketProtocol)
        self.transport = StringTransportWithDisconnection(peerAddress=PEER)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.client = ClientConnection()

    def upgrade(self, then: bytes = b"") -> None:
        """The opening handshake, followed in the same read by ``then``."""
        self.protocol.dataReceived(upgrade_request() + then)
        head, _, rest = self.transport.value().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.transport.clear()
        if rest:
            self.transport.write(rest)

    def received(self) -> list[tuple[int, bytes]]:
        """The frames the server wrote since the last call."""
        frames = server_frames(self.transport.value())
        self.transport.clear()
        return frames

    def connect(self) -> None:
        """Upgrade, then handshake and ack."""
        self.upgrade()
        self.protocol.dataReceived(client_frame(self.client.send(ClientHandshake(sys={}))))
        self.client.receive_data(self.received()[0][1])
        self.protocol.dataReceived(client_frame(self.client.send(HandshakeAck())))
        self.assertEqual(self.received(), [(OP_BINARY, HEARTBEAT)])

    def test_frames_in_the_handshake_read(self) -> None:
        """A Pomelo handshake frame sent right behind the upgrade request is answered."""
        self.upgrade(then=client_frame(self.client.send(ClientHandshake(sys={}))))
        ((opcode, payload),) = self.received()
        self.assertEqual(opcode, OP_BINARY)
        self.assertEqual(type(self.client.receive_data(payload)[0]).__name__, "HandshakeResponse")

    def test_one_byte_at_a_time(self) -> None:
        """Two requests fed a byte at a time are answered in order, one message each."""
        self.connect()
        data = client_frame(self.client.send(Request(1, ECHO, b'{"a":1}'))) + client_frame(
            self.client.send(Request(2, ECHO, b'{"b":2}'))
        )
        for index in range(len(data)):
            self.protocol.dataReceived(data[index : index + 1])
        events = [e for _, p in self.received() for e in self.client.receive_data(p)]
        self.assertEqual(events, [Response(1, b'{"a":1}', ECHO), Response(2, b'{"b":2}', ECHO)])

    def test_answers_of_one_read_leave_in_one_write(self) -> None:
        """Three requests in one read: three binary messages in a single transport write."""
        self.connect()
        writes: list[bytes] = []
        write = self.transport.write
        self.transport.write = lambda data: (writes.append(data), write(data))  # type: ignore[method-assign,func-returns-value]
        frames = b"".join(
            client_frame(self.client.send(Request(n, ECHO, b"{}"))) for n in (1, 2, 3)
        )
        self.protocol.dataReceived(frames)
        self.assertEqual(len(writes), 1)
        self.assertEqual([opcode for opcode, _ in self.received()], [OP_BINARY] * 3)

    def test_fragmented_message_with_a_ping_between(self) -> None:
        """Fragments are joined; a ping between them is answered with its payload first."""
        self.connect()
        package = self.client.send(Request(7, ECHO, b'{"frag":true}'))
        self.protocol.dataReceived(
            encode_frame(OP_BINARY, package[:5], fin=False, mask=MASK)
            + encode_frame(OPCODE_PING, b"are you there", mask=MASK)
            + encode_frame(0, package[5:], fin=True, mask=MASK)
        )
        frames = self.received()
        self.assertEqual(frames[0], (OPCODE_PONG, b"are you there"))
        self.assertEqual(
            self.client.receive_data(frames[1][1]), [Response(7, b'{"frag":true}', ECHO)]
        )

    def test_pong_is_ignored(self) -> None:
        """An unsolicited pong gets no answer and changes nothing."""
        self.connect()
        self.protocol.dataReceived(encode_frame(OPCODE_PONG, b"x", mask=MASK))
        self.assertEqual(self.received(), [])
        self.assertTrue(self.transport.connected)

    def test_client_close_is_answered(self) -> None:
        """The client's close frame is echoed with its code, then the connection closes."""
        self.connect()
        agent = self.protocol.agent
        assert agent is not None
        self.protocol.dataReceived(client_frame(close_payload(1001, b"going"), OP_CLOSE))
        self.assertEqual(self.received(), [(OP_CLOSE, close_payload(1001))])
        self.assertFalse(self.transport.connected)
        self.assertEqual(agent.close_reason, "client closed")
        self.assertEqual(self.agents.agents, {})

    def test_server_close_waits_for_the_answer(self) -> None:
        """agent.close sends close 1000; nothing is written after it; the answer hangs up."""
        self.connect()
        agent = self.protocol.agent
        assert agent is not None
        agent.close()
        self.protocol.write(b"late")
        self.assertEqual(self.received(), [(OP_CLOSE, close_payload(1000))])
        self.assertTrue(self.transport.connected)
        self.protocol.dataReceived(client_frame(close_payload(1000), OP_CLOSE))
        self.assertEqual(self.received(), [])
        self.assertFalse(self.transport.connected)
        self.assertEqual(self.agents.metrics.closed, {"server closed": 1})
        self.assertEqual(self.agents.clock.getDelayedCalls(), [])

    def test_unmasked_frame_fails_the_connection(self) -> None:
        """An unmasked client frame: close 1002 naming the fault, recorded as a protocol error."""
        self.connect()
        self.protocol.dataReceived(encode_frame(OP_BINARY, b"\x04\x00\x00\x00"))
        ((opcode, payload),) = self.received()
        self.assertEqual(opcode, OP_CLOSE)
        self.assertEqual(payload[:2], (1002).to_bytes(2, "big"))
        self.assertIn(b"mask", payload[2:])
        self.assertFalse(self.transport.connected)
        self.assertEqual(self.agents.metrics.closed, {"protocol error": 1})
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_requests_before_a_bad_frame_are_answered(self) -> None:
        """A request decoded before a violation in the same read is answered, then 1002."""
        self.connect()
        self.protocol.dataReceived(
            client_frame(self.client.send(Request(1, ECHO, b"{}")))
            + encode_frame(OP_BINARY, b"x", mask=MASK)[:1]
            + b"\x00"  # RSV-free, but the length byte says unmasked
        )
        frames = self.received()
        self.assertEqual(self.client.receive_data(frames[0][1]), [Response(1, b"{}", ECHO)])
        self.assertEqual(frames[1][0], OP_CLOSE)
        self.assertEqual(frames[1][1][:2], (1002).to_bytes(2, "big"))

    def test_oversized_frame_refused_from_its_header(self) -> None:
        """A frame header announcing more than the limit closes with 1009 before any payload."""
        self.connect()
        limit = self.protocol.factory.max_message_size
        header = b"\x82\xfe" + (limit + 1).to_bytes(2, "big") + MASK  # the shortest form
        self.protocol.dataReceived(header)
        ((opcode, payload),) = self.received()
        self.assertEqual((opcode, payload[:2]), (OP_CLOSE, (1009).to_bytes(2, "big")))
        self.assertFalse(self.transport.connected)
        self.assertEqual(self.agents.metrics.closed, {"protocol error": 1})
