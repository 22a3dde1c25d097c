"""Hot-path shortcuts produce exactly the bytes of the general encoders."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    ConnectionState,
    Event,
    HandshakeAck,
    HandshakeResponse,
    LocalProtocolError,
    MessageType,
    Notify,
    PackageType,
    ProtocolViolation,
    Request,
    Response,
    RouteDictionary,
    ServerConnection,
    encode_message,
    encode_package,
    encode_response,
)
from pomelo_twisted.protocol.connection import _Connection
from pomelo_twisted.protocol.message import MAX_MESSAGE_ID

from .test_helpers import client_in, server_in


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
        self.assertRaises(ValueError, encode_response, 300, b"x" * 0xFFFFFD)
        self.assertRaises(ValueError, encode_response, 20000, b"x" * 0xFFFFFC)

    def test_encode_response_every_varint_width(self) -> None:
        """Ids of one to five varint bytes, on both sides of each width's edge."""
        for msg_id in (0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, 0x1FFFFF, 0x200000, MAX_MESSAGE_ID):
            expected = encode_package(
                PackageType.DATA, encode_message(MessageType.RESPONSE, msg_id, "", b"{}")
            )
            self.assertEqual(encode_response(msg_id, b"{}"), expected)

    def test_encode_response_refuses_bad_ids(self) -> None:
        """An id outside 0..2**31-1 is refused as encode_message refuses it."""
        self.assertRaises(LocalProtocolError, encode_response, -1, b"")
        self.assertRaises(LocalProtocolError, encode_response, MAX_MESSAGE_ID + 1, b"")


# -- receiving: the working server's fast path against the state table --------------

FAST_DICTIONARY = RouteDictionary.from_routes(
    ["connector.entryHandler.echo", "chat.chatHandler.send"], ["onChat"]
)


def _general_receive(conn: ServerConnection, data: bytes) -> list[Event]:
    """What the state table alone makes of ``data`` (the path before the ack)."""
    return _Connection._receive_by_table(conn, data)


def _comparable(events: list[Event]) -> list[object]:
    # ProtocolViolation carries an exception, equal only to itself: compare its reason.
    return [
        ("violation", type(e.error), e.reason) if isinstance(e, ProtocolViolation) else e
        for e in events
    ]


def _message(draw: st.DrawFn) -> bytes:
    """A data package body: mostly well-formed requests and notifies, sometimes not."""
    kind = draw(st.sampled_from(["request", "notify", "response", "push", "raw"]))
    if kind == "raw":
        return draw(st.binary(max_size=12))
    msg_type = MessageType[kind.upper()]
    msg_id = draw(st.one_of(st.integers(0, 300), st.integers(0, MAX_MESSAGE_ID)))
    route = draw(
        st.sampled_from(
            ["connector.entryHandler.echo", "chat.chatHandler.send", "a.b.c", "", "é.x.y"]
        )
    )
    code = draw(st.sampled_from([0, 0, 1, 2, 3, 99, 0xFFFF]))
    body = draw(st.binary(max_size=40))
    gzip = draw(st.booleans())
    try:
        message = encode_message(msg_type, msg_id, route, body, route_code=code, gzip=gzip)
    except LocalProtocolError:
        message = b"\x00\x85\x80\x80\x80\x7f"  # a five-byte id over 2**31 - 1
    if draw(st.integers(0, 3)) == 0:  # truncated: in the id, the route or the body
        message = message[: draw(st.integers(0, len(message)))]
    return message


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Packages a client could send once working (and a few it should not), in chunks."""
    packages = []
    for _ in range(draw(st.integers(1, 8))):
        ptype = draw(st.sampled_from([4, 4, 4, 4, 3, 2, 1, 5, 9]))
        if ptype == 4:
            packages.append(encode_package(PackageType.DATA, _message(draw)))
        elif ptype == 9:
            packages.append(b"\x09\x00\x00\x00")  # a bad package type
        else:
            packages.append(encode_package(PackageType(ptype), draw(st.binary(max_size=6))))
    stream = b"".join(packages)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    return stream, cuts


class ReceiveFastPathTests(SynchronousTestCase):
    """A working ServerConnection decodes exactly what the state table decodes."""

    @settings(max_examples=400, deadline=None, database=None)
    @given(_streams(), st.booleans(), st.integers(8, 64))
    def test_same_events_as_the_state_table(
        self, stream: tuple[bytes, list[int]], with_dict: bool, max_size: int
    ) -> None:
        """Same events, state, package count and buffered bytes, chunk after chunk."""
        data, cuts = stream
        dictionary = FAST_DICTIONARY if with_dict else None
        fast = server_in(ConnectionState.WORKING, dictionary)
        general = server_in(ConnectionState.WORKING, dictionary)
        # A small limit (set once working: the handshake needs more) exercises refusals.
        fast._decoder.max_body_size = general._decoder.max_body_size = max_size
        for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
            chunk = data[start:stop]
            got = fast.receive_data(chunk)
            want = _general_receive(general, chunk)
            self.assertEqual(_comparable(got), _comparable(want))
            self.assertEqual(fast.state, general.state)
            self.assertEqual(fast.packages_received, general.packages_received)
            self.assertEqual(fast.buffered, general.buffered)

    def test_every_truncation_of_every_shape(self) -> None:
        """Each message shape, cut at every length, decodes as the state table decodes it."""
        shapes = [
            (msg_type, msg_id, route, code, body)
            for msg_type in (MessageType.REQUEST, MessageType.NOTIFY, MessageType.RESPONSE)
            for msg_id in (0, 5, 300, 20000, 3_000_000, MAX_MESSAGE_ID)
            for route, code in (("connector.entryHandler.echo", 0), ("", 1), ("", 7), ("é", 0))
            for body in (b"", b"{}")
        ]
        for with_dict in (True, False):
            dictionary = FAST_DICTIONARY if with_dict else None
            for msg_type, msg_id, route, code, body in shapes:
                message = encode_message(msg_type, msg_id, route, body, route_code=code)
                for cut in range(len(message) + 1):
                    data = encode_package(PackageType.DATA, message[:cut])
                    fast = server_in(ConnectionState.WORKING, dictionary)
                    general = server_in(ConnectionState.WORKING, dictionary)
                    self.assertEqual(
                        _comparable(fast.receive_data(data)),
                        _comparable(_general_receive(general, data)),
                        (with_dict, msg_type, msg_id, route, code, body, cut),
                    )

    def test_fast_events_equal_constructed_ones(self) -> None:
        """Events built on the fast path equal, hash and print like constructed ones."""
        conn = server_in(ConnectionState.WORKING, FAST_DICTIONARY)
        code = FAST_DICTIONARY.code_of("connector.entryHandler.echo")
        data = encode_package(
            PackageType.DATA,
            encode_message(MessageType.REQUEST, 300, "", b"{}", route_code=code),
        ) + encode_package(PackageType.DATA, encode_message(MessageType.NOTIFY, 0, "x.y.z", b"1"))
        request, notify = conn.receive_data(data)
        self.assertEqual(request, Request(300, "connector.entryHandler.echo", b"{}"))
        self.assertEqual(hash(request), hash(Request(300, "connector.entryHandler.echo", b"{}")))
        self.assertEqual(repr(notify), repr(Notify("x.y.z", b"1")))
        self.assertRaises(AttributeError, setattr, request, "id", 1)

    def test_bodies_are_bytes(self) -> None:
        """Fed a bytearray or a memoryview, the decoder still hands out bytes."""
        conn = server_in(ConnectionState.WORKING)
        data = encode_package(
            PackageType.DATA, encode_message(MessageType.REQUEST, 1, "a.b.c", b"{}")
        )
        for chunk in (bytearray(data), memoryview(data)):
            (event,) = conn.receive_data(chunk)  # type: ignore[arg-type]
            assert isinstance(event, Request)
            self.assertIs(type(event.body), bytes)

    def test_split_package_waits_without_copying_the_rest(self) -> None:
        """A package split anywhere comes out whole once its last byte arrives."""
        conn = server_in(ConnectionState.WORKING)
        data = encode_package(
            PackageType.DATA, encode_message(MessageType.REQUEST, 5, "a.b.c", b"x" * 100)
        )
        for split in range(1, len(data)):
            self.assertEqual(conn.receive_data(data[:split]), [])
            self.assertEqual(conn.buffered, split)
            self.assertEqual(conn.receive_data(data[split:]), [Request(5, "a.b.c", b"x" * 100)])
            self.assertEqual(conn.buffered, 0)


@st.composite
def _server_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Packages a server could send once working (and a few it should not), in chunks."""
    packages = []
    for _ in range(draw(st.integers(1, 8))):
        ptype = draw(st.sampled_from([4, 4, 4, 4, 3, 5, 1, 2, 9]))
        if ptype == 4:
            packages.append(encode_package(PackageType.DATA, _message(draw)))
        elif ptype == 9:
            packages.append(b"\x09\x00\x00\x00")
        elif ptype == 5:
            packages.append(encode_package(PackageType.KICK, b'{"reason":"x"}'))
        else:
            packages.append(encode_package(PackageType(ptype), draw(st.binary(max_size=6))))
    stream = b"".join(packages)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    return stream, cuts


def _client_with_pending() -> ClientConnection:
    reply = b'{"code":200,"sys":{"heartbeat":3,"dict":{"onChat":3},"useDict":true}}'
    client = client_in(ConnectionState.WORKING, reply)
    for msg_id in (5, 300, 20000):
        client.send(Request(msg_id, f"r.h.m{msg_id}", b"{}"))
    return client


class ClientReceiveFastPathTests(SynchronousTestCase):
    """A working ClientConnection decodes exactly what its state table decodes."""

    @settings(max_examples=300, deadline=None, database=None)
    @given(_server_streams())
    def test_same_events_as_the_state_table(self, stream: tuple[bytes, list[int]]) -> None:
        """Same events (responses with their routes), state, counts and pending requests."""
        data, cuts = stream
        fast, general = _client_with_pending(), _client_with_pending()
        for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
            chunk = data[start:stop]
            got = fast.receive_data(chunk)
            want = _Connection._receive_by_table(general, chunk)
            self.assertEqual(_comparable(got), _comparable(want))
            self.assertEqual(fast.state, general.state)
            self.assertEqual(fast.packages_received, general.packages_received)
            self.assertEqual(fast.buffered, general.buffered)
            self.assertEqual(fast.pending, general.pending)

    def test_every_truncation_of_a_response(self) -> None:
        """Responses cut at every length decode as the state table decodes them."""
        messages = [
            encode_message(MessageType.RESPONSE, msg_id, "", b'{"ok":1}')
            for msg_id in (0, 5, 300, 20000, 3_000_000, MAX_MESSAGE_ID)
        ]
        messages.append(b"\x04\xff\xff\xff\xff\x7f{}")  # a five-byte id over 2**31 - 1
        messages.append(b"\x04\x80\x80\x80\x80\x80\x01{}")  # a six-byte varint
        for msg_id, message in enumerate(messages):
            for cut in range(len(message) + 1):
                data = encode_package(PackageType.DATA, message[:cut])
                fast, general = _client_with_pending(), _client_with_pending()
                self.assertEqual(
                    _comparable(fast.receive_data(data)),
                    _comparable(_Connection._receive_by_table(general, data)),
                    (msg_id, cut),
                )
