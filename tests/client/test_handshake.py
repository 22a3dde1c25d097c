"""Handshake of the client core, driven by a fake server on a task.Clock."""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client import (
    ClientError,
    ConnectionClosed,
    HandshakeRejected,
    HandshakeTimeout,
    PomeloClient,
)
from pomelo_twisted.protocol import (
    ClientHandshake,
    HandshakeResponse,
    PackageType,
    encode_package,
)

from .helpers import DICTIONARY, FakeServer


class HandshakeTests(SynchronousTestCase):
    """Handshake, ack, and what the client learns from the server's reply."""

    def test_handshake_carries_sys_and_user(self) -> None:
        """The client handshake names the client type and version and carries the user data."""
        fake = FakeServer(self, user={"name": "bot"}, client_type="bot", version="9.9")
        fake.connect()
        [event] = fake.receive()
        assert isinstance(event, ClientHandshake)
        self.assertEqual(event.sys["type"], "bot")
        self.assertEqual(event.sys["version"], "9.9")
        self.assertEqual(event.user, {"name": "bot"})

    def test_ready_fires_after_ack(self) -> None:
        """`ready` fires with the client only once the ack has been written."""
        fake = FakeServer(self)
        fake.connect()
        fake.receive()
        self.assertNoResult(fake.client.ready)
        self.assertFalse(fake.client.connected)
        fake.send(HandshakeResponse(heartbeat=3))
        self.assertIs(self.successResultOf(fake.client.ready), fake.client)
        self.assertEqual(fake.written(), b"\x02\x00\x00\x00")
        self.assertTrue(fake.client.connected)

    def test_handshake_properties(self) -> None:
        """heartbeat, dictionary and handshake_user come from the server's reply."""
        fake = FakeServer(self)
        client = fake.handshake(
            heartbeat=3, dictionary=DICTIONARY, use_dict=True, user={"motd": "hi"}
        )
        self.assertEqual(client.heartbeat, 3.0)
        self.assertEqual(dict(client.dictionary), DICTIONARY.route_to_code())
        self.assertEqual(client.handshake_user, {"motd": "hi"})
        self.assertEqual(client.serializer.name, "json")

    def test_defaults_without_heartbeat_dict_or_user(self) -> None:
        """A bare pinus-style reply gives no heartbeat, an empty dictionary and no user data."""
        client = FakeServer(self).handshake()
        self.assertIsNone(client.heartbeat)
        self.assertEqual(dict(client.dictionary), {})
        self.assertIsNone(client.handshake_user)

    def test_msgpack_selected_from_handshake(self) -> None:
        """sys.serializer = msgpack makes the client use msgpack bodies."""
        client = FakeServer(self).handshake(serializer="msgpack")
        self.assertEqual(client.serializer.name, "msgpack")

    def test_unknown_serializer_fails(self) -> None:
        """A serializer the client does not know fails the handshake and closes."""
        fake = FakeServer(self)
        fake.connect()
        fake.receive()
        fake.send(HandshakeResponse(serializer="protobuf"))
        failure = self.failureResultOf(fake.client.ready, ClientError)
        self.assertIn("protobuf", str(failure.value))
        self.assertTrue(fake.transport.disconnecting)

    def test_rejected(self) -> None:
        """A reply code other than 200 errbacks HandshakeRejected(code, msg) and hangs up."""
        fake = FakeServer(self)
        fake.connect()
        fake.receive()
        fake.send(HandshakeResponse(code=501, message="old client"))
        error = self.failureResultOf(fake.client.ready, HandshakeRejected).value
        self.assertEqual((error.code, error.msg), (501, "old client"))
        self.assertIn("501", str(error))
        self.assertTrue(fake.transport.disconnecting)
        self.assertEqual(fake.written(), b"")  # no ack
        closed = fake.client.closed
        self.assertNoResult(closed)
        fake.lose()
        self.assertEqual(self.successResultOf(closed), "handshake rejected with code 501")

    def test_rejected_without_message(self) -> None:
        """A bare {"code": 500} reply gives HandshakeRejected with msg None."""
        fake = FakeServer(self)
        fake.connect()
        fake.receive()
        fake.send(HandshakeResponse(code=500))
        error = self.failureResultOf(fake.client.ready, HandshakeRejected).value
        self.assertEqual((error.code, error.msg), (500, None))

    def test_handshake_timeout(self) -> None:
        """No reply within handshake_timeout errbacks HandshakeTimeout and hangs up."""
        fake = FakeServer(self, handshake_timeout=5.0)
        fake.connect()
        fake.clock.advance(5 - 2**-10)
        self.assertNoResult(fake.client.ready)
        fake.clock.advance(2**-10)
        error = self.failureResultOf(fake.client.ready, HandshakeTimeout).value
        self.assertIn("5 s", str(error))
        self.assertTrue(fake.transport.disconnecting)
        self.assertEqual(fake.client.close_reason, "handshake timeout")

    def test_timer_cancelled_by_handshake(self) -> None:
        """A completed handshake leaves no handshake timer behind."""
        fake = FakeServer(self, handshake_timeout=5.0)
        fake.handshake()
        self.assertEqual(fake.clock.getDelayedCalls(), [])
        fake.clock.advance(10)
        self.assertTrue(fake.client.connected)

    def test_connection_lost_during_handshake(self) -> None:
        """The transport going before the reply errbacks ConnectionClosed."""
        fake = FakeServer(self)
        fake.connect()
        fake.lose()
        error = self.failureResultOf(fake.client.ready, ConnectionClosed).value
        self.assertEqual(error.reason, "connection closed")
        self.assertEqual(fake.clock.getDelayedCalls(), [])

    def test_cancel_ready(self) -> None:
        """Cancelling `ready` errbacks CancelledError and closes the connection."""
        fake = FakeServer(self)
        fake.connect()
        fake.client.ready.cancel()
        self.failureResultOf(fake.client.ready, CancelledError)
        self.assertTrue(fake.transport.disconnecting)
        self.assertEqual(fake.clock.getDelayedCalls(), [])

    def test_kick_during_handshake(self) -> None:
        """A kick instead of a handshake reply errbacks ConnectionClosed naming the reason."""
        fake = FakeServer(self)
        fake.connect()
        fake.receive()
        fake.protocol.dataReceived(encode_package(PackageType.KICK, b'{"reason":"full"}'))
        error = self.failureResultOf(fake.client.ready, ConnectionClosed).value
        self.assertEqual(error.reason, "kicked: full")

    def test_close_before_transport(self) -> None:
        """A client closed before any transport fires `closed` at once."""
        client = PomeloClient(FakeServer(self).clock)
        self.assertEqual(self.successResultOf(client.close()), "closed by client")
        self.failureResultOf(client.ready, ConnectionClosed)
