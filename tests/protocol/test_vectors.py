"""The 16 test vectors of PROTOCOL.md section 11, pinned byte for byte, both ways.

Encoding uses our API's equivalent of each reference call; decoding runs every vector
through the package decoder and the connections under the three feeding modes of
:func:`~tests.protocol.test_helpers.assert_decodes`.
"""

from __future__ import annotations

import zlib

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    ClientHandshake,
    ConnectionState,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Kick,
    Message,
    MessageType,
    Notify,
    Package,
    PackageType,
    ProtocolViolation,
    Push,
    Request,
    Response,
    RouteDictionary,
    encode_message,
    encode_package,
    encode_push,
    encode_response,
)

from .test_helpers import (
    NEXT_PACKAGE,
    Stream,
    assert_decodes,
    assert_message_decodes,
    client_in,
    connection_stream,
    package_stream,
    server_in,
    wrap,
)

# fmt: off
V1 = bytes.fromhex(
    "0100003e7b22737973223a7b2274797065223a22736f636b6574222c2276657273696f6e223a22302e302e31"
    "222c22727361223a7b7d7d2c2275736572223a7b7d7d"
)
V2 = bytes.fromhex(
    "010000787b22636f6465223a3230302c22737973223a7b22686561727462656174223a332c2264696374223a"
    "7b22636f6e6e6563746f722e656e74727948616e646c65722e6563686f223a332c226f6e43686174223a377d"
    "2c226469637456657273696f6e223a227631222c2275736544696374223a747275657d7d"
)
V3 = bytes.fromhex("02000000")
V4 = bytes.fromhex("03000000")
V5 = bytes.fromhex("050000117b22726561736f6e223a226b69636b227d")
V6 = bytes.fromhex(
    "00011c636f6e6e6563746f722e656e74727948616e646c65722e656e7472797b22756964223a227531227d"
)
V7 = bytes.fromhex(
    "0400002b00011c636f6e6e6563746f722e656e74727948616e646c65722e656e7472797b22756964223a2275"
    "31227d"
)
V8 = bytes.fromhex("01ac0200037b7d")
V9 = bytes.fromhex("018080800101027b7d")
V10 = bytes.fromhex(
    "0215636861742e6368617448616e646c65722e73656e647b22726964223a2272222c22636f6e74656e74223a"
    "226869227d"
)
V11 = bytes.fromhex("04017b22636f6465223a3230307d")
V12 = bytes.fromhex("0480017b22636f6465223a3530307d")
V13 = bytes.fromhex("0700077b22636f6e74656e74223a226869227d")
V14 = bytes.fromhex("06066f6e436861747b22636f6e74656e74223a226869227d")
V15 = bytes.fromhex("100505612e622e637b7d")
V16 = bytes.fromhex("000206c3a92e622e637b7d")
# fmt: on

HANDSHAKE_JSON = b'{"sys":{"type":"socket","version":"0.0.1","rsa":{}},"user":{}}'
REPLY_JSON = (
    b'{"code":200,"sys":{"heartbeat":3,"dict":{"connector.entryHandler.echo":3,"onChat":7},'
    b'"dictVersion":"v1","useDict":true}}'
)
KICK_JSON = b'{"reason":"kick"}'
ENTRY = "connector.entryHandler.entry"
ECHO = "connector.entryHandler.echo"
SEND = "chat.chatHandler.send"
UID_BODY = b'{"uid":"u1"}'
CHAT_BODY = b'{"rid":"r","content":"hi"}'
HI_BODY = b'{"content":"hi"}'
# A dictionary holding the codes vectors 8, 9 and 13 use.
DICTIONARY = RouteDictionary({ECHO: 3, "area.areaHandler.move": 258, "onChat": 7})
NEXT_NOTIFY = [Notify("a.b.c", b"{}")]


def working_server() -> Stream:
    """A working server connection knowing ``DICTIONARY``, as a stream."""
    return connection_stream(server_in(ConnectionState.WORKING, DICTIONARY))


def working_client_with_requests(*requests: tuple[int, str]) -> Stream:
    """A working client that knows ``DICTIONARY`` and has ``requests`` in flight."""
    conn = client_in(ConnectionState.WORKING)
    conn.dictionary = DICTIONARY
    for msg_id, route in requests:
        conn.send(Request(msg_id, route, b"{}"))
    return connection_stream(conn)


class EncodeVectorTests(SynchronousTestCase):
    """Our encoders reproduce each reference call's bytes exactly."""

    def test_v01_client_handshake(self) -> None:
        """Vector 1: a client handshake package, via encode_package and ClientConnection.send."""
        self.assertEqual(encode_package(PackageType.HANDSHAKE, HANDSHAKE_JSON), V1)
        handshake = ClientHandshake(sys={"type": "socket", "version": "0.0.1", "rsa": {}}, user={})
        self.assertEqual(
            client_in(ConnectionState.INITIAL, send_handshake=False).send(handshake), V1
        )

    def test_v02_server_handshake_response(self) -> None:
        """Vector 2: a server handshake response package."""
        self.assertEqual(encode_package(PackageType.HANDSHAKE, REPLY_JSON), V2)

    def test_v03_handshake_ack(self) -> None:
        """Vector 3: the empty handshake ack, via encode_package and ClientConnection.send."""
        self.assertEqual(encode_package(PackageType.HANDSHAKE_ACK), V3)
        self.assertEqual(client_in(ConnectionState.WAITING_ACK).send(HandshakeAck()), V3)

    def test_v04_heartbeat(self) -> None:
        """Vector 4: the empty heartbeat, from encode_package and from either side."""
        self.assertEqual(encode_package(PackageType.HEARTBEAT), V4)
        self.assertEqual(server_in(ConnectionState.WORKING).send(Heartbeat()), V4)
        self.assertEqual(client_in(ConnectionState.WORKING).send(Heartbeat()), V4)

    def test_v05_kick(self) -> None:
        """Vector 5: a kick package, via encode_package and ServerConnection.send(Kick)."""
        self.assertEqual(encode_package(PackageType.KICK, KICK_JSON), V5)
        self.assertEqual(server_in(ConnectionState.WORKING).send(Kick("kick")), V5)

    def test_v06_request_string_route(self) -> None:
        """Vector 6: request id 1 with a string route."""
        self.assertEqual(encode_message(MessageType.REQUEST, 1, ENTRY, UID_BODY), V6)

    def test_v07_request_in_data_package(self) -> None:
        """Vector 7: vector 6 framed as a data package, also as ClientConnection sends it."""
        self.assertEqual(encode_package(PackageType.DATA, V6), V7)
        self.assertEqual(wrap(V6), V7)
        self.assertEqual(client_in(ConnectionState.WORKING).send(Request(1, ENTRY, UID_BODY)), V7)

    def test_v08_request_two_byte_id_compressed(self) -> None:
        """Vector 8: request id 300, compressed route code 3; a dict-using client sends it."""
        self.assertEqual(encode_message(MessageType.REQUEST, 300, route_code=3, body=b"{}"), V8)
        reply = b'{"code":200,"sys":{"dict":{"connector.entryHandler.echo":3},"useDict":true}}'
        conn = client_in(ConnectionState.WORKING, reply)
        self.assertEqual(conn.send(Request(300, ECHO, b"{}")), wrap(V8))

    def test_v09_request_four_byte_id_code_258(self) -> None:
        """Vector 9: request id 2097152 (4-byte varint), route code 0x0102."""
        self.assertEqual(
            encode_message(MessageType.REQUEST, 2097152, route_code=258, body=b"{}"), V9
        )

    def test_v10_notify_string_route(self) -> None:
        """Vector 10: a notify (no id field) with a string route."""
        self.assertEqual(encode_message(MessageType.NOTIFY, 0, SEND, CHAT_BODY), V10)
        self.assertEqual(
            client_in(ConnectionState.WORKING).send(Notify(SEND, CHAT_BODY)), wrap(V10)
        )

    def test_v11_response_id_1(self) -> None:
        """Vector 11: response id 1, no route; encode_response and ServerConnection agree."""
        body = b'{"code":200}'
        self.assertEqual(encode_message(MessageType.RESPONSE, 1, body=body), V11)
        self.assertEqual(encode_response(1, body), wrap(V11))
        self.assertEqual(server_in(ConnectionState.WORKING).send(Response(1, body)), wrap(V11))

    def test_v12_response_id_128(self) -> None:
        """Vector 12: response id 128 (varint 80 01)."""
        body = b'{"code":500}'
        self.assertEqual(encode_message(MessageType.RESPONSE, 128, body=body), V12)
        self.assertEqual(encode_response(128, body), wrap(V12))

    def test_v13_push_compressed(self) -> None:
        """Vector 13: push with compressed route code 7, as encode_push writes it with a dict."""
        self.assertEqual(encode_message(MessageType.PUSH, 0, route_code=7, body=HI_BODY), V13)
        self.assertEqual(encode_push("onChat", HI_BODY, DICTIONARY), wrap(V13))
        conn = server_in(ConnectionState.WORKING, DICTIONARY)
        self.assertEqual(conn.send(Push("onChat", HI_BODY)), wrap(V13))

    def test_v14_push_string_route(self) -> None:
        """Vector 14: push with a string route, as encode_push writes it without a dict."""
        self.assertEqual(encode_message(MessageType.PUSH, 0, "onChat", HI_BODY), V14)
        self.assertEqual(encode_push("onChat", HI_BODY), wrap(V14))
        self.assertEqual(
            server_in(ConnectionState.WORKING).send(Push("onChat", HI_BODY)), wrap(V14)
        )

    def test_v15_request_gzip_flag(self) -> None:
        """Vector 15: request with the gzip flag bit 0x10 set, body untouched."""
        self.assertEqual(encode_message(MessageType.REQUEST, 5, "a.b.c", b"{}", gzip=True), V15)

    def test_v16_request_multibyte_route(self) -> None:
        """Vector 16: the route length counts UTF-8 bytes, not characters."""
        self.assertEqual(encode_message(MessageType.REQUEST, 2, "é.b.c", b"{}"), V16)


class DecodePackageVectorTests(SynchronousTestCase):
    """Vectors 1-5 and 7 decode at the package layer and through the connections."""

    def test_v01_client_handshake(self) -> None:
        """Vector 1 is one handshake package; a server in its initial state reports it."""
        assert_decodes(self, package_stream, V1, [Package(PackageType.HANDSHAKE, HANDSHAKE_JSON)])
        expected = ClientHandshake(
            sys={"type": "socket", "version": "0.0.1", "rsa": {}}, user={}, dict_version=None
        )
        assert_decodes(
            self,
            lambda: connection_stream(server_in(ConnectionState.INITIAL)),
            V1,
            [expected],
        )

    def test_v02_server_handshake_response(self) -> None:
        """Vector 2 is one handshake package; a client reads heartbeat, dict and dictVersion."""
        assert_decodes(self, package_stream, V2, [Package(PackageType.HANDSHAKE, REPLY_JSON)])
        expected = HandshakeResponse(
            code=200,
            heartbeat=3.0,
            dictionary=RouteDictionary({ECHO: 3, "onChat": 7}),
            dict_version="v1",
            use_dict=True,
        )
        assert_decodes(
            self, lambda: connection_stream(client_in(ConnectionState.INITIAL)), V2, [expected]
        )

    def test_v03_handshake_ack(self) -> None:
        """Vector 3 is an empty ack package; a server waiting for it reports HandshakeAck."""
        assert_decodes(
            self,
            package_stream,
            V3,
            [Package(PackageType.HANDSHAKE_ACK)],
            next_expected=[Package(PackageType.DATA, NEXT_PACKAGE[4:])],
        )
        assert_decodes(
            self,
            lambda: connection_stream(server_in(ConnectionState.WAITING_ACK)),
            V3,
            [HandshakeAck()],
            next_expected=NEXT_NOTIFY,
        )

    def test_v04_heartbeat(self) -> None:
        """Vector 4 is an empty heartbeat package; both working sides report Heartbeat."""
        assert_decodes(self, package_stream, V4, [Package(PackageType.HEARTBEAT, b"")])
        assert_decodes(
            self,
            lambda: connection_stream(server_in(ConnectionState.WORKING)),
            V4,
            [Heartbeat()],
            next_expected=NEXT_NOTIFY,
        )
        assert_decodes(
            self, lambda: connection_stream(client_in(ConnectionState.WORKING)), V4, [Heartbeat()]
        )

    def test_v05_kick(self) -> None:
        """Vector 5 is a kick package; a client reports Kick("kick")."""
        assert_decodes(self, package_stream, V5, [Package(PackageType.KICK, KICK_JSON)])
        assert_decodes(
            self, lambda: connection_stream(client_in(ConnectionState.WORKING)), V5, [Kick("kick")]
        )

    def test_v07_request_in_data_package(self) -> None:
        """Vector 7 is a data package holding vector 6; a working server reports the Request."""
        assert_decodes(
            self,
            package_stream,
            V7,
            [Package(PackageType.DATA, V6)],
            next_expected=[Package(PackageType.DATA, NEXT_PACKAGE[4:])],
        )
        assert_decodes(
            self, working_server, V7, [Request(1, ENTRY, UID_BODY)], next_expected=NEXT_NOTIFY
        )


class DecodeMessageVectorTests(SynchronousTestCase):
    """Message vectors 6 and 8-16 decode alone, framed, and through the connections."""

    def test_v06_request_string_route(self) -> None:
        """Vector 6: request id 1 on connector.entryHandler.entry."""
        assert_message_decodes(self, V6, Message(MessageType.REQUEST, 1, ENTRY, UID_BODY))
        assert_decodes(
            self, working_server, wrap(V6), [Request(1, ENTRY, UID_BODY)], next_expected=NEXT_NOTIFY
        )

    def test_v08_request_two_byte_id_compressed(self) -> None:
        """Vector 8: request id 300 with route code 3, resolved by the server's dictionary."""
        assert_message_decodes(self, V8, Message(MessageType.REQUEST, 300, "", b"{}", 3))
        assert_decodes(self, working_server, wrap(V8), [Request(300, ECHO, b"{}")])

    def test_v09_request_four_byte_id_code_258(self) -> None:
        """Vector 9: request id 2097152 with route code 258."""
        assert_message_decodes(self, V9, Message(MessageType.REQUEST, 2097152, "", b"{}", 258))
        assert_decodes(
            self, working_server, wrap(V9), [Request(2097152, "area.areaHandler.move", b"{}")]
        )

    def test_v10_notify_string_route(self) -> None:
        """Vector 10: a notify on chat.chatHandler.send, no id."""
        assert_message_decodes(self, V10, Message(MessageType.NOTIFY, 0, SEND, CHAT_BODY))
        assert_decodes(self, working_server, wrap(V10), [Notify(SEND, CHAT_BODY)])

    def test_v11_response_id_1(self) -> None:
        """Vector 11: response id 1, mapped back by the client to the requested route."""
        assert_message_decodes(self, V11, Message(MessageType.RESPONSE, 1, "", b'{"code":200}'))
        assert_decodes(
            self,
            lambda: working_client_with_requests((1, ENTRY)),
            wrap(V11),
            [Response(1, b'{"code":200}', ENTRY)],
        )

    def test_v12_response_id_128(self) -> None:
        """Vector 12: response id 128 (two-byte varint)."""
        assert_message_decodes(self, V12, Message(MessageType.RESPONSE, 128, "", b'{"code":500}'))
        assert_decodes(
            self,
            lambda: working_client_with_requests((1, ENTRY), (128, ECHO)),
            wrap(V12),
            [Response(128, b'{"code":500}', ECHO)],
        )

    def test_v13_push_compressed(self) -> None:
        """Vector 13: push with route code 7, resolved to onChat by the client's dictionary."""
        assert_message_decodes(self, V13, Message(MessageType.PUSH, 0, "", HI_BODY, 7))
        assert_decodes(self, working_client_with_requests, wrap(V13), [Push("onChat", HI_BODY)])

    def test_v14_push_string_route(self) -> None:
        """Vector 14: push on the string route onChat."""
        assert_message_decodes(self, V14, Message(MessageType.PUSH, 0, "onChat", HI_BODY))
        assert_decodes(
            self,
            lambda: connection_stream(client_in(ConnectionState.WORKING)),
            wrap(V14),
            [Push("onChat", HI_BODY)],
        )

    def test_v15_request_gzip_flag(self) -> None:
        """Vector 15: the gzip flag is reported by the message codec (body as sent); a
        server inflates a 0x10 body and refuses one that is not zlib or gzip."""
        assert_message_decodes(
            self, V15, Message(MessageType.REQUEST, 5, "a.b.c", b"{}", gzip=True)
        )
        zlib_v15 = encode_message(MessageType.REQUEST, 5, "a.b.c", zlib.compress(b"{}"), gzip=True)
        assert_decodes(self, working_server, wrap(zlib_v15), [Request(5, "a.b.c", b"{}")])
        (event,) = working_server().feed(wrap(V15))
        self.assertIsInstance(event, ProtocolViolation)

    def test_v16_request_multibyte_route(self) -> None:
        """Vector 16: a route of 6 UTF-8 bytes decodes to 'é.b.c'."""
        assert_message_decodes(self, V16, Message(MessageType.REQUEST, 2, "é.b.c", b"{}"))
        assert_decodes(self, working_server, wrap(V16), [Request(2, "é.b.c", b"{}")])
