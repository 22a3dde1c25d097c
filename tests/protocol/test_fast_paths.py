"""Hot-path shortcuts produce exactly the bytes of the general encoders."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    HandshakeResponse,
    LocalProtocolError,
    MessageType,
    PackageType,
    Response,
    ServerConnection,
    encode_message,
    encode_package,
    encode_response,
)
from pomelo_twisted.protocol.message import MAX_MESSAGE_ID


def working_server() -> ServerConnection:
    server = ServerConnection()
    client = ClientConnection()
    server.receive_data(client.send(ClientHandshake(sys={"type": "t"})))
    client.receive_data(server.send(HandshakeResponse()))
    server.receive_data(client.send(HandshakeAck()))
    return server


class ResponseFastPathTests(SynchronousTestCase):
    """encode_response and ServerConnection.send_response."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.integers(1, MAX_MESSAGE_ID), st.binary(max_size=2048))
    def test_encode_response_matches_general_encoder(self, msg_id: int, body: bytes) -> None:
        """encode_response equals encode_package(DATA, encode_message(RESPONSE, ...))."""
        expected = encode_package(
            PackageType.DATA, encode_message(MessageType.RESPONSE, msg_id, "", body)
        )
        self.assertEqual(encode_response(msg_id, body), expected)

    def test_send_response_equals_send_of_event(self) -> None:
        """send_response(id, body) gives the bytes of send(Response(id, body))."""
        server = working_server()
        self.assertEqual(
            server.send_response(300, b'{"code":200}'), server.send(Response(300, b'{"code":200}'))
        )

    def test_send_response_refused_before_working(self) -> None:
        """send_response checks the state like send does."""
        self.assertRaises(LocalProtocolError, ServerConnection().send_response, 1, b"{}")

    def test_oversized_response_refused(self) -> None:
        """A response over the 24-bit length is a ValueError, as encode_package raises."""
        self.assertRaises(ValueError, encode_response, 1, b"x" * 0xFFFFFF)
