"""ServerConnection's send methods: the one door every byte to a client leaves through."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    ClientConnection,
    ConnectionState,
    Heartbeat,
    Kick,
    LocalProtocolError,
    ProtocolViolation,
    Push,
    RouteDictionary,
    ServerConnection,
    encode_push,
)
from pomelo_twisted.protocol.connection import _Connection

from .test_helpers import server_in

S = ConnectionState
DICTIONARY = RouteDictionary.from_routes(["a.b.c"], ["onChat"])
NOT_WORKING = (S.INITIAL, S.WAITING_ACK, S.CLOSED)


def closed_by_violation() -> ServerConnection:
    conn = server_in(S.WORKING)
    (event,) = conn.receive_data(bytes.fromhex("05000000"))  # a client's kick
    assert isinstance(event, ProtocolViolation)
    return conn


class SendMethodTests(SynchronousTestCase):
    """The specific send methods equal send(event) and check the state as it does."""

    def test_push_heartbeat_kick_equal_send_of_events(self) -> None:
        """send_push, send_heartbeat and send_kick give the bytes of send(event)."""
        fast, general = server_in(S.WORKING, DICTIONARY), server_in(S.WORKING, DICTIONARY)
        self.assertEqual(fast.send_push("onChat", b"{}"), general.send(Push("onChat", b"{}")))
        self.assertEqual(fast.send_heartbeat(), general.send(Heartbeat()))
        self.assertEqual(fast.send_kick("bye"), general.send(Kick("bye")))
        self.assertIs(fast.state, S.CLOSED)

    def test_push_and_heartbeat_refused_unless_working(self) -> None:
        """send_push, send_heartbeat and send_prepared raise in every state but WORKING."""
        package = server_in(S.WORKING).prepare_push("onChat", b"{}")
        for state in NOT_WORKING:
            conn = server_in(S.WAITING_ACK) if state is S.CLOSED else server_in(state)
            if state is S.CLOSED:
                conn.close()
            self.assertRaises(LocalProtocolError, conn.send_push, "onChat", b"{}")
            self.assertRaises(LocalProtocolError, conn.send_heartbeat)
            self.assertRaises(LocalProtocolError, conn.send_prepared, package)

    def test_kick_refused_once_closed(self) -> None:
        """send_kick works before the ack too, but not twice (the first one closes)."""
        conn = server_in(S.WAITING_ACK)
        conn.send_kick("early")
        self.assertRaises(LocalProtocolError, conn.send_kick, "again")


class PreparedPushTests(SynchronousTestCase):
    """A push prepared once serves every connection sharing the dictionary."""

    def test_prepare_push_is_encode_push_with_the_dictionary(self) -> None:
        """prepare_push compresses the route with the connection's dictionary."""
        conn = server_in(S.WORKING, DICTIONARY)
        self.assertEqual(
            conn.prepare_push("onChat", b"{}"), encode_push("onChat", b"{}", DICTIONARY)
        )

    def test_prepare_in_any_state_send_only_when_working(self) -> None:
        """Preparing sends nothing (any state); send_prepared returns the package when working."""
        idle = server_in(S.INITIAL, DICTIONARY)
        package = idle.prepare_push("onChat", b"{}")
        self.assertIs(idle.state, S.INITIAL)
        other = server_in(S.WORKING, DICTIONARY)
        self.assertIs(other.send_prepared(package), package)


class ViolationKickTests(SynchronousTestCase):
    """The defined goodbye after the client broke the protocol."""

    def test_violation_recorded(self) -> None:
        """A ProtocolViolation closes the connection and records its reason."""
        conn = closed_by_violation()
        self.assertIs(conn.state, S.CLOSED)
        self.assertEqual(conn.violation, "client sent a kick package")

    def test_violation_kick_once(self) -> None:
        """send_violation_kick answers a violation with a kick package, once."""
        conn = closed_by_violation()
        self.assertEqual(
            conn.send_violation_kick("protocol error: x"),
            server_in(S.WORKING).send_kick("protocol error: x"),
        )
        self.assertRaises(LocalProtocolError, conn.send_violation_kick, "again")

    def test_violation_kick_refused_without_violation(self) -> None:
        """A connection closed for another cause, or still open, refuses it."""
        working = server_in(S.WORKING)
        self.assertRaises(LocalProtocolError, working.send_violation_kick, "x")
        working.close()
        self.assertRaises(LocalProtocolError, working.send_violation_kick, "x")


class SharedReceivePathTests(SynchronousTestCase):
    """Client and server share one receive loop; each side gives only its fast decoder."""

    def test_one_receive_loop(self) -> None:
        """Neither side overrides _Connection.receive_data."""
        self.assertIs(ServerConnection.receive_data, _Connection.receive_data)
        self.assertIs(ClientConnection.receive_data, _Connection.receive_data)
