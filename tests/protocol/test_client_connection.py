"""The client connection state machine: CLIENT_RECEIVE, every (state, package type) pair,
responses mapped to routes, dictionary use and what the client may send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    CLIENT_RECEIVE,
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
    encode_message,
    encode_package,
)

from .test_helpers import (
    HEARTBEAT_PACKAGE,
    assert_connection_refuses,
    assert_decodes,
    assert_violation,
    client_in,
    connection_stream,
    wrap,
)

S = ConnectionState
P = PackageType
LIVE_STATES = (S.INITIAL, S.WAITING_ACK, S.WORKING)
DICT_REPLY = b'{"code":200,"sys":{"heartbeat":3,"dict":{"a.b.c":1,"onChat":7},"useDict":true}}'
DICT_NO_USE_REPLY = b'{"code":200,"sys":{"heartbeat":3,"dict":{"a.b.c":1,"onChat":7}}}'
PUSH_BODY = encode_message(MessageType.PUSH, 0, "onChat", b"{}")
# One well-formed package of each type, as a server could send it.
PACKAGE_OF = {
    P.HANDSHAKE: encode_package(P.HANDSHAKE, b'{"code":200,"sys":{"heartbeat":3}}'),
    P.HANDSHAKE_ACK: encode_package(P.HANDSHAKE_ACK),
    P.HEARTBEAT: encode_package(P.HEARTBEAT),
    P.DATA: wrap(PUSH_BODY),
    P.KICK: encode_package(P.KICK, b'{"reason":"bye"}'),
}
# (state, package type) -> (event type or violation, next state); INITIAL means the
# client handshake has been sent.
CLIENT_OUTCOMES: dict[tuple[ConnectionState, PackageType], tuple[type[Any], ConnectionState]] = {
    (S.INITIAL, P.HANDSHAKE): (HandshakeResponse, S.WAITING_ACK),
    (S.INITIAL, P.HANDSHAKE_ACK): (ProtocolViolation, S.CLOSED),
    (S.INITIAL, P.HEARTBEAT): (ProtocolViolation, S.CLOSED),
    (S.INITIAL, P.DATA): (ProtocolViolation, S.CLOSED),
    (S.INITIAL, P.KICK): (Kick, S.CLOSED),
    (S.WAITING_ACK, P.HANDSHAKE): (Ignored, S.WAITING_ACK),
    (S.WAITING_ACK, P.HANDSHAKE_ACK): (ProtocolViolation, S.CLOSED),
    (S.WAITING_ACK, P.HEARTBEAT): (Ignored, S.WAITING_ACK),
    (S.WAITING_ACK, P.DATA): (Ignored, S.WAITING_ACK),
    (S.WAITING_ACK, P.KICK): (Kick, S.CLOSED),
    (S.WORKING, P.HANDSHAKE): (Ignored, S.WORKING),
    (S.WORKING, P.HANDSHAKE_ACK): (ProtocolViolation, S.CLOSED),
    (S.WORKING, P.HEARTBEAT): (Heartbeat, S.WORKING),
    (S.WORKING, P.DATA): (Push, S.WORKING),
    (S.WORKING, P.KICK): (Kick, S.CLOSED),
}


class ClientTableTests(SynchronousTestCase):
    """Every (state, package type) pair of the client; one generated test per pair below."""

    def test_table_entries(self) -> None:
        """CLIENT_RECEIVE lists the accepted pairs; the missing ones are violations."""
        accepted = {
            pair
            for pair, (outcome, _) in CLIENT_OUTCOMES.items()
            if outcome is not ProtocolViolation
        }
        self.assertEqual(set(CLIENT_RECEIVE), accepted)
        self.assertEqual(set(CLIENT_OUTCOMES), {(s, p) for s in LIVE_STATES for p in PackageType})

    def test_handshake_reply_before_handshake_is_a_violation(self) -> None:
        """A handshake reply to a client that has sent no handshake breaks the protocol."""
        assert_connection_refuses(
            self,
            lambda: client_in(S.INITIAL, send_handshake=False),
            PACKAGE_OF[P.HANDSHAKE],
            RemoteProtocolError,
        )

    def test_closed_receives_nothing(self) -> None:
        """A closed client returns no event for any package."""
        for package in PACKAGE_OF.values():
            conn = client_in(S.WORKING)
            conn.close()
            self.assertEqual(conn.receive_data(package), [])


def _make_pair_test(
    state: ConnectionState, ptype: PackageType, outcome: type[Any], after: ConnectionState
) -> Callable[[ClientTableTests], None]:
    def test(self: ClientTableTests) -> None:
        conn = client_in(state)
        events = conn.receive_data(PACKAGE_OF[ptype])
        self.assertEqual(len(events), 1)
        if outcome is ProtocolViolation:
            assert_violation(self, events[0], RemoteProtocolError)
            assert_connection_refuses(
                self, lambda: client_in(state), PACKAGE_OF[ptype], RemoteProtocolError
            )
        else:
            self.assertIsInstance(events[0], outcome)
            assert_decodes(
                self, lambda: connection_stream(client_in(state)), PACKAGE_OF[ptype], events
            )
        self.assertIs(conn.state, after)

    test.__name__ = f"test_{state.name.lower()}_{ptype.name.lower()}"
    test.__doc__ = (
        f"A client in state {state.value} given a {ptype.name.lower()} package reports "
        f"{outcome.__name__} and is then {after.value}."
    )
    return test


for (_state, _ptype), (_outcome, _after) in CLIENT_OUTCOMES.items():
    _test = _make_pair_test(_state, _ptype, _outcome, _after)
    setattr(ClientTableTests, _test.__name__, _test)


class ClientHandshakeTests(SynchronousTestCase):
    """The handshake as the client sees it."""

    def test_reply_with_dictionary(self) -> None:
        """A 200 reply with dict and useDict installs the dictionary and moves to waiting-ack."""
        conn = client_in(S.INITIAL)
        [event] = conn.receive_data(encode_package(P.HANDSHAKE, DICT_REPLY))
        assert isinstance(event, HandshakeResponse)
        self.assertEqual(event.heartbeat, 3.0)
        self.assertEqual(conn.dictionary, RouteDictionary({"a.b.c": 1, "onChat": 7}))
        self.assertTrue(conn.use_dict)
        self.assertIs(conn.state, S.WAITING_ACK)

    def test_non_200_reply_closes(self) -> None:
        """A 500 or 501 reply is reported and closes the client."""
        for code in (500, 501):
            data = encode_package(P.HANDSHAKE, b'{"code":%d}' % code)
            conn = client_in(S.INITIAL)
            self.assertEqual(conn.receive_data(data), [HandshakeResponse(code=code)])
            self.assertIs(conn.state, S.CLOSED)
            self.assertRaises(LocalProtocolError, conn.send, HandshakeAck())
            assert_decodes(
                self,
                lambda: connection_stream(client_in(S.INITIAL)),
                data,
                [HandshakeResponse(code=code)],
            )

    def test_bad_reply_is_a_violation(self) -> None:
        """A reply that is not JSON or has no integer code breaks the protocol."""
        for body in (b"nope", b'{"sys":{}}', b"[" * 50000):
            assert_connection_refuses(
                self,
                lambda: client_in(S.INITIAL),
                encode_package(P.HANDSHAKE, body),
                MessageDecodeError,
            )

    def test_sends_in_wrong_states(self) -> None:
        """Handshake twice, ack before the reply, requests before working all raise."""
        conn = client_in(S.INITIAL)
        self.assertRaises(LocalProtocolError, conn.send, ClientHandshake())
        self.assertRaises(LocalProtocolError, conn.send, HandshakeAck())
        for event in (Request(1, "a.b.c"), Notify("a.b.c"), Heartbeat()):
            self.assertRaises(LocalProtocolError, conn.send, event)
            self.assertRaises(LocalProtocolError, client_in(S.WAITING_ACK).send, event)
        working = client_in(S.WORKING)
        self.assertRaises(LocalProtocolError, working.send, ClientHandshake())
        self.assertRaises(LocalProtocolError, working.send, HandshakeAck())

    def test_server_events_refused(self) -> None:
        """The client refuses to send server-only events."""
        conn = client_in(S.WORKING)
        for event in (Response(1), Push("onChat"), Kick(), HandshakeResponse()):
            self.assertRaises(LocalProtocolError, conn.send, event)


class ClientDataTests(SynchronousTestCase):
    """Responses, pushes and outgoing routes on a working client."""

    def test_response_maps_id_to_route(self) -> None:
        """A response carries the route of the request with its id; pending counts down."""
        conn = client_in(S.WORKING)
        conn.send(Request(1, "a.b.c", b"{}"))
        conn.send(Request(2, "x.y.z", b"{}"))
        self.assertEqual(conn.pending, 2)
        data = wrap(encode_message(MessageType.RESPONSE, 2, body=b"r2"))
        data += wrap(encode_message(MessageType.RESPONSE, 1, body=b"r1"))
        self.assertEqual(
            conn.receive_data(data), [Response(2, b"r2", "x.y.z"), Response(1, b"r1", "a.b.c")]
        )
        self.assertEqual(conn.pending, 0)

    def test_response_mapping_under_feeding_modes(self) -> None:
        """The route mapping holds whole, byte by byte and with trailing bytes."""

        def fresh() -> Any:
            conn = client_in(S.WORKING)
            conn.send(Request(300, "a.b.c", b"{}"))
            return connection_stream(conn)

        data = wrap(encode_message(MessageType.RESPONSE, 300, body=b"{}"))
        assert_decodes(
            self,
            fresh,
            data,
            [Response(300, b"{}", "a.b.c")],
            next_package=HEARTBEAT_PACKAGE,
            next_expected=[Heartbeat()],
        )

    def test_unknown_or_forgotten_response(self) -> None:
        """A response to an unknown or forgotten id is reported with an empty route."""
        conn = client_in(S.WORKING)
        conn.send(Request(5, "a.b.c"))
        conn.forget(5)
        conn.forget(6)
        self.assertEqual(conn.pending, 0)
        data = wrap(encode_message(MessageType.RESPONSE, 5, body=b"late"))
        self.assertEqual(conn.receive_data(data), [Response(5, b"late", "")])

    def test_duplicate_in_flight_id_refused(self) -> None:
        """Sending a request whose id is still in flight raises; after the response it is free."""
        conn = client_in(S.WORKING)
        conn.send(Request(1, "a.b.c"))
        self.assertRaises(LocalProtocolError, conn.send, Request(1, "x.y.z"))
        conn.receive_data(wrap(encode_message(MessageType.RESPONSE, 1, body=b"")))
        conn.send(Request(1, "x.y.z"))
        self.assertEqual(conn.pending, 1)

    def test_request_id_out_of_range_refused(self) -> None:
        """A request id of 2^31 raises and is not left pending."""
        conn = client_in(S.WORKING)
        self.assertRaises(LocalProtocolError, conn.send, Request(2**31, "a.b.c"))
        self.assertEqual(conn.pending, 0)

    def test_compressed_push_resolved(self) -> None:
        """A push with a compressed route is resolved through the handshake's dictionary."""
        data = wrap(encode_message(MessageType.PUSH, route_code=7, body=b"hi"))
        assert_decodes(
            self,
            lambda: connection_stream(client_in(S.WORKING, DICT_REPLY)),
            data,
            [Push("onChat", b"hi")],
        )

    def test_push_with_unknown_code_is_a_violation(self) -> None:
        """A push whose code is not in the dictionary (or with no dictionary) is a violation."""
        data = wrap(encode_message(MessageType.PUSH, route_code=8, body=b"hi"))
        assert_connection_refuses(
            self, lambda: client_in(S.WORKING, DICT_REPLY), data, RemoteProtocolError
        )
        data = wrap(encode_message(MessageType.PUSH, route_code=7, body=b"hi"))
        assert_connection_refuses(self, lambda: client_in(S.WORKING), data, RemoteProtocolError)

    def test_request_or_notify_from_server_is_a_violation(self) -> None:
        """A server sending a request or notify message breaks the protocol."""
        for body in (
            encode_message(MessageType.REQUEST, 1, "a.b.c", b""),
            encode_message(MessageType.NOTIFY, 0, "a.b.c", b""),
        ):
            assert_connection_refuses(
                self, lambda: client_in(S.WORKING), wrap(body), RemoteProtocolError
            )

    def test_malformed_message_is_a_violation(self) -> None:
        """A data package that is not a message breaks the protocol; earlier events stay."""
        assert_connection_refuses(
            self,
            lambda: client_in(S.WORKING),
            HEARTBEAT_PACKAGE + bytes.fromhex("04000000"),
            MessageDecodeError,
            before=[Heartbeat()],
        )

    def test_outgoing_routes_compressed_with_use_dict(self) -> None:
        """With useDict a route in the dict is sent as its code; other routes as strings."""
        conn = client_in(S.WORKING, DICT_REPLY)
        self.assertEqual(
            conn.send(Request(1, "a.b.c", b"{}")),
            wrap(encode_message(MessageType.REQUEST, 1, route_code=1, body=b"{}")),
        )
        self.assertEqual(
            conn.send(Notify("a.b.c", b"{}")),
            wrap(encode_message(MessageType.NOTIFY, route_code=1, body=b"{}")),
        )
        self.assertEqual(
            conn.send(Request(2, "x.y.z", b"{}")),
            wrap(encode_message(MessageType.REQUEST, 2, "x.y.z", b"{}")),
        )

    def test_outgoing_routes_plain_without_use_dict(self) -> None:
        """Without useDict (or without a dict) every route is sent as a string."""
        for reply in (DICT_NO_USE_REPLY, b'{"code":200,"sys":{"useDict":true}}'):
            conn = client_in(S.WORKING, reply)
            self.assertEqual(
                conn.send(Request(1, "a.b.c", b"{}")),
                wrap(encode_message(MessageType.REQUEST, 1, "a.b.c", b"{}")),
            )

    def test_cached_dictionary_used_when_server_omits_it(self) -> None:
        """A dictionary set before the handshake survives a reply with useDict but no dict."""
        conn = ClientConnection()
        conn.dictionary = RouteDictionary({"a.b.c": 4})
        conn.send(ClientHandshake(dict_version=conn.dictionary.version))
        conn.receive_data(encode_package(P.HANDSHAKE, b'{"code":200,"sys":{"useDict":true}}'))
        conn.send(HandshakeAck())
        self.assertEqual(
            conn.send(Notify("a.b.c", b"")), wrap(encode_message(MessageType.NOTIFY, route_code=4))
        )

    def test_kick(self) -> None:
        """A kick is reported as Kick(reason) and closes; packages after it are dropped."""
        conn = client_in(S.WORKING)
        events = conn.receive_data(PACKAGE_OF[P.KICK] + HEARTBEAT_PACKAGE)
        self.assertEqual(events, [Kick("bye")])
        self.assertIs(conn.state, S.CLOSED)
        self.assertEqual(conn.receive_data(HEARTBEAT_PACKAGE), [])
        self.assertRaises(LocalProtocolError, conn.send, Heartbeat())

    def test_kick_without_reason(self) -> None:
        """A kick whose body has no reason is reported as Kick("kick")."""
        conn = client_in(S.WORKING)
        self.assertEqual(conn.receive_data(encode_package(P.KICK)), [Kick("kick")])


class ClientServerRoundTripTests(SynchronousTestCase):
    """Property test: what a client sends, a server decodes, and the response comes back."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(
        msg_id=st.integers(1, 2**31 - 1),
        route=st.text(max_size=255).filter(lambda r: len(r.encode("utf-8")) <= 255),
        body=st.binary(max_size=1024),
        use_dict=st.booleans(),
    )
    def test_request_response(self, msg_id: int, route: str, body: bytes, use_dict: bool) -> None:
        """A request reaches the server intact and its response returns with the route."""
        dictionary = RouteDictionary.from_routes([route]) if use_dict and route else None
        server = ServerConnection(dictionary)
        client = ClientConnection()
        server.receive_data(client.send(ClientHandshake()))
        client.receive_data(
            server.send(HandshakeResponse(dictionary=dictionary, use_dict=use_dict))
        )
        server.receive_data(client.send(HandshakeAck()))
        self.assertEqual(
            server.receive_data(client.send(Request(msg_id, route, body))),
            [Request(msg_id, route, body)],
        )
        self.assertEqual(
            client.receive_data(server.send(Response(msg_id, body[::-1]))),
            [Response(msg_id, body[::-1], route)],
        )
