"""The server connection state machine: SERVER_RECEIVE, every (state, package type) pair,
and what the server may send in each state.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    SERVER_RECEIVE,
    BadHandshake,
    ClientConnection,
    ClientHandshake,
    ConnectionState,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Ignored,
    Kick,
    LocalProtocolError,
    MessageDecodeError,
    MessageType,
    Notify,
    PackageType,
    ProtocolViolation,
    Push,
    RemoteProtocolError,
    Request,
    Response,
    RouteDictionary,
    ServerConnection,
    UnknownRouteCode,
    encode_message,
    encode_package,
)

from .test_helpers import (
    CLIENT_HANDSHAKE_BODY,
    HEARTBEAT_PACKAGE,
    NEXT_PACKAGE,
    assert_connection_refuses,
    assert_decodes,
    assert_violation,
    connection_stream,
    server_in,
    wrap,
)

S = ConnectionState
P = PackageType
LIVE_STATES = (S.INITIAL, S.WAITING_ACK, S.WORKING)
DICTIONARY = RouteDictionary.from_routes(
    ["area.areaHandler.move", "chat.chatHandler.send"], ["onChat"]
)
REQUEST_BODY = encode_message(MessageType.REQUEST, 7, "a.b.c", b"{}")
# One well-formed package of each type, as a client could send it.
PACKAGE_OF = {
    P.HANDSHAKE: encode_package(P.HANDSHAKE, CLIENT_HANDSHAKE_BODY),
    P.HANDSHAKE_ACK: encode_package(P.HANDSHAKE_ACK),
    P.HEARTBEAT: encode_package(P.HEARTBEAT),
    P.DATA: encode_package(P.DATA, REQUEST_BODY),
    P.KICK: encode_package(P.KICK, b'{"reason":"x"}'),
}
HANDSHAKE_EVENT = ClientHandshake(
    sys={"type": "socket", "version": "0.0.1", "rsa": {}}, user={}, dict_version=None
)
# PROTOCOL.md sections 5 and 12: (state, package type) -> (event type or violation, next state).
SERVER_OUTCOMES: dict[tuple[ConnectionState, PackageType], tuple[type[Any], ConnectionState]] = {
    (S.INITIAL, P.HANDSHAKE): (ClientHandshake, S.INITIAL),
    (S.INITIAL, P.HANDSHAKE_ACK): (Ignored, S.INITIAL),
    (S.INITIAL, P.HEARTBEAT): (Ignored, S.INITIAL),
    (S.INITIAL, P.DATA): (Ignored, S.INITIAL),
    (S.INITIAL, P.KICK): (ProtocolViolation, S.CLOSED),
    (S.WAITING_ACK, P.HANDSHAKE): (Ignored, S.WAITING_ACK),
    (S.WAITING_ACK, P.HANDSHAKE_ACK): (HandshakeAck, S.WORKING),
    (S.WAITING_ACK, P.HEARTBEAT): (Ignored, S.WAITING_ACK),
    (S.WAITING_ACK, P.DATA): (Ignored, S.WAITING_ACK),
    (S.WAITING_ACK, P.KICK): (ProtocolViolation, S.CLOSED),
    (S.WORKING, P.HANDSHAKE): (Ignored, S.WORKING),
    (S.WORKING, P.HANDSHAKE_ACK): (Ignored, S.WORKING),
    (S.WORKING, P.HEARTBEAT): (Heartbeat, S.WORKING),
    (S.WORKING, P.DATA): (Request, S.WORKING),
    (S.WORKING, P.KICK): (ProtocolViolation, S.CLOSED),
}


class ServerTableTests(SynchronousTestCase):
    """Every (state, package type) pair of the server; one generated test per pair below."""

    def test_table_is_exhaustive(self) -> None:
        """SERVER_RECEIVE has an entry for each live state and each of the 5 package types."""
        self.assertEqual(set(SERVER_RECEIVE), {(s, p) for s in LIVE_STATES for p in PackageType})
        self.assertEqual(set(SERVER_OUTCOMES), set(SERVER_RECEIVE))

    def test_closed_receives_nothing(self) -> None:
        """A closed connection returns no event for any package and buffers nothing."""
        for package in PACKAGE_OF.values():
            conn = server_in(S.WORKING)
            conn.close()
            self.assertIs(conn.state, S.CLOSED)
            self.assertEqual(conn.receive_data(package), [])
            self.assertEqual(conn.receive_data(bytes.fromhex("09000000")), [])


def _make_pair_test(
    state: ConnectionState, ptype: PackageType, outcome: type[Any], after: ConnectionState
) -> Callable[[ServerTableTests], None]:
    def test(self: ServerTableTests) -> None:
        conn = server_in(state)
        events = conn.receive_data(PACKAGE_OF[ptype])
        self.assertEqual(len(events), 1)
        if outcome is ProtocolViolation:
            assert_violation(self, events[0], RemoteProtocolError)
        else:
            self.assertIsInstance(events[0], outcome)
        self.assertIs(conn.state, after)
        if after is not S.CLOSED:

            def fresh() -> Any:
                return connection_stream(server_in(state))

            assert_decodes(self, fresh, PACKAGE_OF[ptype], events)

    test.__name__ = f"test_{state.name.lower()}_{ptype.name.lower()}"
    test.__doc__ = (
        f"A server in state {state.value} given a {ptype.name.lower()} package reports "
        f"{outcome.__name__} and is then {after.value}."
    )
    return test


for (_state, _ptype), (_outcome, _after) in SERVER_OUTCOMES.items():
    _test = _make_pair_test(_state, _ptype, _outcome, _after)
    setattr(ServerTableTests, _test.__name__, _test)


class ServerHandshakeTests(SynchronousTestCase):
    """The handshake and ack as the server sees them."""

    def test_handshake_event(self) -> None:
        """A client handshake is reported with its sys and user objects."""
        conn = ServerConnection()
        self.assertEqual(conn.receive_data(PACKAGE_OF[P.HANDSHAKE]), [HANDSHAKE_EVENT])

    def test_second_handshake_before_reply_ignored(self) -> None:
        """A second handshake before the reply is Ignored and the reply can still be sent."""
        conn = ServerConnection()
        conn.receive_data(PACKAGE_OF[P.HANDSHAKE])
        events = conn.receive_data(PACKAGE_OF[P.HANDSHAKE])
        self.assertEqual(len(events), 1)
        self.assertIsInstance(events[0], Ignored)
        conn.send(HandshakeResponse(heartbeat=3))
        self.assertIs(conn.state, S.WAITING_ACK)

    def test_second_handshake_on_working_connection(self) -> None:
        """A second handshake on a working connection is ignored; the connection stays usable."""
        conn = server_in(S.WORKING)
        events = conn.receive_data(PACKAGE_OF[P.HANDSHAKE] + PACKAGE_OF[P.DATA])
        self.assertIsInstance(events[0], Ignored)
        self.assertEqual(events[1:], [Request(7, "a.b.c", b"{}")])
        self.assertIs(conn.state, S.WORKING)

    def test_bad_handshake_then_500(self) -> None:
        """Bad handshake JSON is reported as BadHandshake; replying 500 closes with {"code":500}."""
        data = encode_package(P.HANDSHAKE, b'{"sys":')
        conn = ServerConnection()
        events = conn.receive_data(data)
        self.assertEqual(len(events), 1)
        assert isinstance(events[0], BadHandshake)
        self.assertIn("JSON", events[0].reason)
        assert_decodes(self, lambda: connection_stream(ServerConnection()), data, events)
        reply = conn.send(HandshakeResponse(code=500))
        self.assertEqual(reply, encode_package(P.HANDSHAKE, b'{"code":500}'))
        self.assertIs(conn.state, S.CLOSED)
        self.assertEqual(conn.receive_data(PACKAGE_OF[P.HANDSHAKE]), [])

    def test_rejected_client_501(self) -> None:
        """Replying 501 to a good handshake sends {"code":501} and closes."""
        conn = ServerConnection()
        conn.receive_data(PACKAGE_OF[P.HANDSHAKE])
        self.assertEqual(
            conn.send(HandshakeResponse(code=501)), encode_package(P.HANDSHAKE, b'{"code":501}')
        )
        self.assertIs(conn.state, S.CLOSED)

    def test_ack_moves_to_working(self) -> None:
        """The ack moves the server to working, where it may send the first heartbeat."""
        conn = server_in(S.WAITING_ACK)
        self.assertRaises(LocalProtocolError, conn.send, Heartbeat())
        self.assertEqual(conn.receive_data(PACKAGE_OF[P.HANDSHAKE_ACK]), [HandshakeAck()])
        self.assertEqual(conn.send(Heartbeat()), HEARTBEAT_PACKAGE)

    def test_reply_sets_dictionary(self) -> None:
        """The dictionary of the 200 reply is the one the connection resolves codes with."""
        conn = ServerConnection()
        conn.receive_data(PACKAGE_OF[P.HANDSHAKE])
        conn.send(HandshakeResponse(dictionary=DICTIONARY, use_dict=True))
        self.assertIs(conn.dictionary, DICTIONARY)
        conn.receive_data(PACKAGE_OF[P.HANDSHAKE_ACK])
        code = DICTIONARY.code_of("chat.chatHandler.send")
        body = encode_message(MessageType.NOTIFY, route_code=code, body=b"{}")
        self.assertEqual(conn.receive_data(wrap(body)), [Notify("chat.chatHandler.send", b"{}")])


class ServerDataTests(SynchronousTestCase):
    """Data packages on a working server connection."""

    def working(self) -> ServerConnection:
        """A working server connection that knows ``DICTIONARY``."""
        return server_in(S.WORKING, DICTIONARY)

    def test_request_before_ack_ignored(self) -> None:
        """A request after the reply but before the ack is Ignored; nothing is dispatched."""
        assert_decodes(
            self,
            lambda: connection_stream(server_in(S.WAITING_ACK)),
            PACKAGE_OF[P.DATA],
            [Ignored("message before the handshake ack")],
        )
        conn = server_in(S.WAITING_ACK)
        events = conn.receive_data(PACKAGE_OF[P.DATA] + PACKAGE_OF[P.HANDSHAKE_ACK])
        self.assertEqual(events[1:], [HandshakeAck()])
        self.assertEqual(conn.receive_data(PACKAGE_OF[P.DATA]), [Request(7, "a.b.c", b"{}")])

    def test_request_and_notify(self) -> None:
        """Requests become Request(id, route, body), notifies Notify(route, body)."""
        data = PACKAGE_OF[P.DATA] + wrap(encode_message(MessageType.NOTIFY, 0, "x.y.z", b"n"))
        assert_decodes(
            self,
            lambda: connection_stream(self.working()),
            data,
            [Request(7, "a.b.c", b"{}"), Notify("x.y.z", b"n")],
            next_package=NEXT_PACKAGE,
            next_expected=[Notify("a.b.c", b"{}")],
        )

    def test_request_with_id_0_is_a_notify(self) -> None:
        """A request whose id is 0 is reported as a Notify (never answered)."""
        data = wrap(encode_message(MessageType.REQUEST, 0, "a.b.c", b"{}"))
        assert_decodes(
            self, lambda: connection_stream(self.working()), data, [Notify("a.b.c", b"{}")]
        )

    def test_compressed_routes_resolved(self) -> None:
        """Compressed routes of requests and notifies are resolved through the dictionary."""
        code = DICTIONARY.code_of("area.areaHandler.move")
        data = wrap(encode_message(MessageType.REQUEST, 9, route_code=code, body=b"{}"))
        data += wrap(encode_message(MessageType.NOTIFY, route_code=code, body=b"{}"))
        assert_decodes(
            self,
            lambda: connection_stream(self.working()),
            data,
            [Request(9, "area.areaHandler.move", b"{}"), Notify("area.areaHandler.move", b"{}")],
        )

    def test_unknown_route_code(self) -> None:
        """An unknown code gives UnknownRouteCode with the request id, or 0 for a notify."""
        data = wrap(encode_message(MessageType.REQUEST, 9, route_code=999, body=b"{}"))
        data += wrap(encode_message(MessageType.NOTIFY, route_code=999, body=b"{}"))
        data += wrap(encode_message(MessageType.REQUEST, 0, route_code=999, body=b"{}"))
        expected = [UnknownRouteCode(9, 999), UnknownRouteCode(0, 999), UnknownRouteCode(0, 999)]
        assert_decodes(self, lambda: connection_stream(self.working()), data, expected)
        self.assertEqual(
            server_in(S.WORKING).receive_data(data),
            expected,
            "without a dictionary every code is unknown",
        )

    def test_response_or_push_from_client_is_a_violation(self) -> None:
        """A client sending a response or a push message breaks the protocol."""
        for body in (
            encode_message(MessageType.RESPONSE, 1, body=b"{}"),
            encode_message(MessageType.PUSH, 0, "onChat", b"{}"),
        ):
            assert_connection_refuses(self, self.working, wrap(body), RemoteProtocolError)

    def test_empty_data_package_is_a_violation(self) -> None:
        """An empty data package breaks the protocol."""
        assert_connection_refuses(self, self.working, bytes.fromhex("04000000"), MessageDecodeError)

    def test_client_kick_closes(self) -> None:
        """A kick package from the client is a ProtocolViolation and the state is CLOSED."""
        for state in LIVE_STATES:
            assert_connection_refuses(
                self, partial(server_in, state), PACKAGE_OF[P.KICK], RemoteProtocolError
            )

    def test_events_before_violation_kept(self) -> None:
        """Events decoded ahead of a violation in the same chunk come first, in order."""
        data = PACKAGE_OF[P.HEARTBEAT] + PACKAGE_OF[P.DATA] + wrap(b"\x0e\x01\x01")
        assert_connection_refuses(
            self,
            self.working,
            data,
            MessageDecodeError,
            before=[Heartbeat(), Request(7, "a.b.c", b"{}")],
        )
        assert_connection_refuses(
            self,
            self.working,
            PACKAGE_OF[P.DATA] + PACKAGE_OF[P.KICK] + PACKAGE_OF[P.DATA],
            RemoteProtocolError,
            before=[Request(7, "a.b.c", b"{}")],
        )

    def test_packages_counted(self) -> None:
        """packages_received counts every decoded package, ignored ones included."""
        conn = server_in(S.WORKING)
        self.assertEqual(conn.packages_received, 2)
        conn.receive_data(PACKAGE_OF[P.HEARTBEAT] + PACKAGE_OF[P.HANDSHAKE_ACK])
        self.assertEqual(conn.packages_received, 4)


class ServerSendTests(SynchronousTestCase):
    """What the server may send, and in which states."""

    def test_response_and_push_need_working(self) -> None:
        """Response, Push and Heartbeat raise LocalProtocolError before the ack and after close."""
        for state in (S.INITIAL, S.WAITING_ACK, S.CLOSED):
            conn = server_in(S.WORKING) if state is S.CLOSED else server_in(state)
            if state is S.CLOSED:
                conn.close()
            for event in (Response(1, b"{}"), Push("onChat", b"{}"), Heartbeat()):
                exc = self.assertRaises(LocalProtocolError, conn.send, event)
                self.assertEqual(exc.culprit, "local")
                self.assertIs(conn.state, state)

    def test_handshake_response_needs_a_handshake(self) -> None:
        """A HandshakeResponse before any handshake, or a second one, is refused."""
        conn = ServerConnection()
        self.assertRaises(LocalProtocolError, conn.send, HandshakeResponse())
        conn.receive_data(PACKAGE_OF[P.HANDSHAKE])
        conn.send(HandshakeResponse())
        self.assertRaises(LocalProtocolError, conn.send, HandshakeResponse())
        self.assertRaises(LocalProtocolError, server_in(S.WORKING).send, HandshakeResponse())

    def test_client_events_refused(self) -> None:
        """The server refuses to send client-only events."""
        conn = server_in(S.WORKING)
        for event in (Request(1, "a.b.c"), Notify("a.b.c"), HandshakeAck(), ClientHandshake()):
            self.assertRaises(LocalProtocolError, conn.send, event)

    def test_kick(self) -> None:
        """Kick sends 05 + length + {"reason": ...} in any live state and closes."""
        for state in LIVE_STATES:
            conn = server_in(state)
            data = conn.send(Kick("attack"))
            self.assertEqual(data, bytes.fromhex("05000013") + b'{"reason":"attack"}')
            self.assertIs(conn.state, S.CLOSED)
            self.assertEqual(conn.receive_data(PACKAGE_OF[P.DATA]), [])
            self.assertRaises(LocalProtocolError, conn.send, Kick("again"))

    def test_push_compression(self) -> None:
        """Pushes use the dictionary code when the route has one, the string otherwise."""
        conn = server_in(S.WORKING, DICTIONARY)
        code = DICTIONARY.code_of("onChat")
        self.assertEqual(
            conn.send(Push("onChat", b"{}")),
            wrap(encode_message(MessageType.PUSH, route_code=code, body=b"{}")),
        )
        self.assertEqual(
            conn.send(Push("onOther", b"{}")),
            wrap(encode_message(MessageType.PUSH, 0, "onOther", b"{}")),
        )

    def test_server_to_client_round_trip(self) -> None:
        """What a server sends, a client connected to it decodes, compressed routes included."""
        server = ServerConnection()
        client = ClientConnection()
        server.receive_data(client.send(ClientHandshake(sys={"type": "socket"})))
        reply = server.send(HandshakeResponse(heartbeat=3, dictionary=DICTIONARY, use_dict=True))
        [response] = client.receive_data(reply)
        self.assertIsInstance(response, HandshakeResponse)
        self.assertEqual(server.receive_data(client.send(HandshakeAck())), [HandshakeAck()])
        data = client.send(Request(1, "chat.chatHandler.send", b"q"))
        self.assertEqual(data[6:8], DICTIONARY.code_of("chat.chatHandler.send").to_bytes(2, "big"))
        self.assertEqual(server.receive_data(data), [Request(1, "chat.chatHandler.send", b"q")])
        pushed = server.send(Push("onChat", b"p")) + server.send(Response(1, b"r"))
        self.assertEqual(
            client.receive_data(pushed),
            [Push("onChat", b"p"), Response(1, b"r", "chat.chatHandler.send")],
        )
