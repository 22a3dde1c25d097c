"""Shared helpers of the protocol tests, and tests of the helpers themselves.

Every decode test runs through :func:`assert_decodes` (or one of its siblings), which
feeds the same bytes three ways: (a) whole, (b) one byte at a time, (c) followed by
trailing bytes that start the next package (they must stay buffered and complete that
package later). Message bodies go through :func:`assert_message_decodes`, which also
shows that extra bytes after a message become part of its body.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    ConnectionState,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Message,
    MessageDecodeError,
    MessageType,
    Package,
    PackageDecoder,
    PackageType,
    ProtocolError,
    ProtocolViolation,
    RouteDictionary,
    ServerConnection,
    decode_message,
    encode_message,
    encode_package,
)

HEARTBEAT_PACKAGE = bytes.fromhex("03000000")
CLIENT_HANDSHAKE_BODY = b'{"sys":{"type":"socket","version":"0.0.1","rsa":{}},"user":{}}'
# The default "next package": a data package holding a notify, so its header is complete
# (and checked) when the trailing bytes arrive, but its body is not.
NEXT_PACKAGE = encode_package(PackageType.DATA, bytes.fromhex("0205612e622e637b7d"))


@dataclasses.dataclass
class Stream:
    """Something bytes are fed into: a package decoder or a connection."""

    feed: Callable[[bytes], Sequence[Any]]
    buffered: Callable[[], int]


def package_stream(max_body_size: int | None = None) -> Stream:
    """A fresh :class:`PackageDecoder` seen as a :class:`Stream`."""
    decoder = PackageDecoder() if max_body_size is None else PackageDecoder(max_body_size)
    return Stream(decoder.feed, lambda: decoder.buffered)


def connection_stream(conn: ServerConnection | ClientConnection) -> Stream:
    """A connection seen as a :class:`Stream`."""
    return Stream(conn.receive_data, lambda: conn.buffered)


def wrap(message_body: bytes) -> bytes:
    """A message body framed as a data package (``04`` + 3-byte length)."""
    return bytes((4,)) + len(message_body).to_bytes(3, "big") + message_body


def assert_decodes(
    test: SynchronousTestCase,
    new_stream: Callable[[], Stream],
    data: bytes,
    expected: Sequence[Any],
    *,
    pending: int = 0,
    next_package: bytes = NEXT_PACKAGE,
    next_expected: Sequence[Any] | None = None,
) -> None:
    """Feed ``data`` whole, byte by byte and with trailing bytes; each gives ``expected``.

    ``pending`` is how many bytes of ``data`` are left waiting for more input. For (c) all
    but the last byte of ``next_package`` trail ``data``: they must stay buffered, and when
    ``next_expected`` is given, the last byte must complete them into ``next_expected``.
    """
    expected = list(expected)
    # (a) whole
    stream = new_stream()
    test.assertEqual(list(stream.feed(data)), expected, "fed whole")
    test.assertEqual(stream.buffered(), pending, "left buffered when fed whole")
    # (b) one byte at a time
    stream = new_stream()
    got: list[Any] = []
    last: Sequence[Any] = []
    for i in range(len(data)):
        last = stream.feed(data[i : i + 1])
        got.extend(last)
    test.assertEqual(got, expected, "fed one byte at a time")
    if expected and not pending:
        test.assertTrue(last, "the last byte completes the last package")
    test.assertEqual(stream.buffered(), pending, "left buffered when fed byte by byte")
    # (c) followed by the start of the next package
    stream = new_stream()
    trailer = next_package[:-1]
    test.assertEqual(list(stream.feed(data + trailer)), expected, "fed with trailing bytes")
    test.assertEqual(stream.buffered(), pending + len(trailer), "trailing bytes stay buffered")
    if next_expected is not None:
        test.assertEqual(list(stream.feed(next_package[-1:])), list(next_expected))
        test.assertEqual(stream.buffered(), 0)


E = TypeVar("E", bound=ProtocolError)


def assert_package_refused(
    test: SynchronousTestCase,
    new_stream: Callable[[], Stream],
    header: bytes,
    error: type[E],
) -> E:
    """A bad 4-byte header raises ``error`` at its 4th byte, whole, bytewise or with more bytes."""
    # (a) whole
    exc = test.assertRaises(error, new_stream().feed, header)
    # (b) one byte at a time: nothing happens before the 4th byte
    stream = new_stream()
    for i in range(len(header) - 1):
        test.assertEqual(list(stream.feed(header[i : i + 1])), [])
    test.assertRaises(error, stream.feed, header[-1:])
    # (c) with trailing bytes (body bytes, a next package): refused all the same
    test.assertRaises(error, new_stream().feed, header + b"\x00" * 8 + HEARTBEAT_PACKAGE)
    return exc


def assert_violation(
    test: SynchronousTestCase, event: object, error: type[ProtocolError] = ProtocolError
) -> None:
    """``event`` is a :class:`ProtocolViolation` carrying an ``error``."""
    test.assertIsInstance(event, ProtocolViolation)
    assert isinstance(event, ProtocolViolation)
    test.assertIsInstance(event.error, error)
    test.assertEqual(event.error.culprit, "remote")


def assert_connection_refuses(
    test: SynchronousTestCase,
    new_conn: Callable[[], ServerConnection | ClientConnection],
    data: bytes,
    error: type[ProtocolError],
    before: Sequence[Any] = (),
) -> None:
    """``data`` ends in a violation (``error``) whole, bytewise and with trailing bytes.

    ``before`` are the events ``data`` yields ahead of the violation. Trailing bytes (a
    whole heartbeat) yield nothing more: the connection is closed.
    """
    for mode in ("whole", "bytewise", "trailing"):
        conn = new_conn()
        if mode == "whole":
            events = list(conn.receive_data(data))
        elif mode == "bytewise":
            events = []
            for i in range(len(data)):
                events.extend(conn.receive_data(data[i : i + 1]))
        else:
            events = list(conn.receive_data(data + HEARTBEAT_PACKAGE))
        test.assertEqual(events[:-1], list(before), mode)
        test.assertEqual(len(events), len(before) + 1, mode)
        assert_violation(test, events[-1], error)
        test.assertIs(conn.state, ConnectionState.CLOSED, mode)
        test.assertEqual(conn.receive_data(HEARTBEAT_PACKAGE), [], mode)


def assert_message_decodes(
    test: SynchronousTestCase, body: bytes, expected: Message, extra: bytes = b"\xff\x00{}"
) -> None:
    """``body`` decodes to ``expected``: alone, framed and fed three ways, and with extra bytes.

    Extra bytes after a message are part of its body ("all remaining bytes").
    """
    # (a) whole
    test.assertEqual(decode_message(body), expected)
    # (a), (b), (c) at the package layer, then the package body decodes the same
    framed = wrap(body)
    assert_decodes(
        test,
        package_stream,
        framed,
        [Package(PackageType.DATA, body)],
        next_expected=[Package(PackageType.DATA, NEXT_PACKAGE[4:])],
    )
    decoder = PackageDecoder()
    packages: list[Package] = []
    for i in range(len(framed)):
        packages.extend(decoder.feed(framed[i : i + 1]))
    test.assertEqual([decode_message(p.body) for p in packages], [expected])
    # (c) trailing bytes become part of the body
    test.assertEqual(
        decode_message(body + extra), dataclasses.replace(expected, body=expected.body + extra)
    )


def assert_message_refused(
    test: SynchronousTestCase, body: bytes, trailing_rescues: bool = False
) -> None:
    """``body`` is refused: alone, with extra bytes, and framed into a working server.

    When ``trailing_rescues`` is set (a truncated message), extra bytes appended to the body
    would complete it, so (c) instead shows that bytes after the *package* do not.
    """
    test.assertRaises(MessageDecodeError, decode_message, body)
    if not trailing_rescues:
        test.assertRaises(MessageDecodeError, decode_message, body + b"\x00\x01\x02{}")
    assert_connection_refuses(
        test, lambda: server_in(ConnectionState.WORKING), wrap(body), MessageDecodeError
    )


def expected_message(
    msg_type: MessageType,
    msg_id: int = 0,
    route: str = "",
    body: bytes = b"",
    route_code: int = 0,
    gzip: bool = False,
) -> Message:
    """The :class:`Message` that decoding ``encode_message(...)`` of these fields gives."""
    has_id = msg_type in (MessageType.REQUEST, MessageType.RESPONSE)
    has_route = msg_type is not MessageType.RESPONSE
    return Message(
        msg_type,
        msg_id if has_id else 0,
        route if has_route and not route_code else "",
        body,
        route_code if has_route else 0,
        gzip,
    )


# -- connections in a given state ------------------------------------------------------


def server_in(
    state: ConnectionState,
    dictionary: RouteDictionary | None = None,
    max_packet_size: int | None = None,
) -> ServerConnection:
    """A server connection driven into ``state`` by a real handshake (+ ack)."""
    if max_packet_size is None:
        conn = ServerConnection(dictionary)
    else:
        conn = ServerConnection(dictionary, max_packet_size=max_packet_size)
    if state is ConnectionState.INITIAL:
        return conn
    conn.receive_data(encode_package(PackageType.HANDSHAKE, CLIENT_HANDSHAKE_BODY))
    conn.send(HandshakeResponse(heartbeat=3, dictionary=dictionary, use_dict=True))
    if state is ConnectionState.WORKING:
        assert conn.receive_data(bytes.fromhex("02000000")) == [HandshakeAck()]
    assert conn.state is state
    return conn


def client_in(
    state: ConnectionState,
    reply: bytes = b'{"code":200,"sys":{"heartbeat":3}}',
    send_handshake: bool = True,
) -> ClientConnection:
    """A client connection driven into ``state``; ``reply`` is the server's handshake body."""
    conn = ClientConnection()
    if state is ConnectionState.INITIAL and not send_handshake:
        return conn
    conn.send(ClientHandshake(sys={"type": "socket", "version": "0.0.1"}))
    if state is ConnectionState.INITIAL:
        return conn
    conn.receive_data(encode_package(PackageType.HANDSHAKE, reply))
    if state is ConnectionState.WORKING:
        conn.send(HandshakeAck())
    assert conn.state is state
    return conn


class HelperTests(SynchronousTestCase):
    """The feeding helpers catch decoders that mishandle splits or trailing bytes."""

    def test_wrap(self) -> None:
        """wrap() frames a message body as a data package with a 3-byte big-endian length."""
        self.assertEqual(wrap(b"\x00" * 0x0102), b"\x04\x00\x01\x02" + b"\x00" * 0x0102)

    def test_assert_decodes_passes_on_the_real_decoder(self) -> None:
        """The helper accepts the package decoder on a heartbeat, completing the next package."""
        assert_decodes(
            self,
            package_stream,
            HEARTBEAT_PACKAGE,
            [Package(PackageType.HEARTBEAT)],
            next_expected=[Package(PackageType.DATA, NEXT_PACKAGE[4:])],
        )

    def test_assert_decodes_catches_a_decoder_dropping_trailing_bytes(self) -> None:
        """A stream that forgets trailing bytes fails the helper."""

        def forgetful() -> Stream:
            decoder = PackageDecoder()

            def feed(data: bytes) -> list[Package]:
                packages = decoder.feed(data)
                if packages:
                    decoder._buffer.clear()
                return packages

            return Stream(feed, lambda: decoder.buffered)

        self.assertRaises(
            self.failureException,
            assert_decodes,
            self,
            forgetful,
            HEARTBEAT_PACKAGE,
            [Package(PackageType.HEARTBEAT)],
        )

    def test_assert_decodes_catches_a_decoder_needing_whole_input(self) -> None:
        """A stream that only decodes whole packages in one chunk fails the helper."""

        def whole_only() -> Stream:
            def feed(data: bytes) -> list[Package]:
                return PackageDecoder().feed(data)

            return Stream(feed, lambda: 0)

        self.assertRaises(
            self.failureException,
            assert_decodes,
            self,
            whole_only,
            HEARTBEAT_PACKAGE,
            [Package(PackageType.HEARTBEAT)],
        )

    def test_expected_message_drops_fields_the_type_lacks(self) -> None:
        """expected_message() keeps only the fields a message type carries on the wire."""
        self.assertEqual(
            expected_message(MessageType.RESPONSE, 7, "a.b.c", b"x", route_code=3),
            Message(MessageType.RESPONSE, 7, "", b"x", 0),
        )
        self.assertEqual(
            expected_message(MessageType.PUSH, 7, "a.b.c", b"x", route_code=3),
            Message(MessageType.PUSH, 0, "", b"x", 3),
        )
        body = encode_message(MessageType.NOTIFY, 9, "a.b.c", b"x")
        self.assertEqual(
            decode_message(body), expected_message(MessageType.NOTIFY, 9, "a.b.c", b"x")
        )

    def test_connections_reach_each_state(self) -> None:
        """server_in() and client_in() reach every live state."""
        for state in (
            ConnectionState.INITIAL,
            ConnectionState.WAITING_ACK,
            ConnectionState.WORKING,
        ):
            self.assertIs(server_in(state).state, state)
            self.assertIs(client_in(state).state, state)
        self.assertEqual(server_in(ConnectionState.WORKING).send(Heartbeat()), HEARTBEAT_PACKAGE)
