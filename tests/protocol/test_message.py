"""The message layer: flag, varint id, route (string or code) and body."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    LocalProtocolError,
    Message,
    MessageType,
    decode_message,
    encode_message,
)
from pomelo_twisted.protocol.message import (
    MAX_MESSAGE_ID,
    MAX_ROUTE_BYTES,
    MAX_ROUTE_CODE,
    encode_varint,
    mark_id_length,
)

from .test_helpers import assert_message_decodes, assert_message_refused, expected_message

MAX_ID = 2**31 - 1


class VarintTests(SynchronousTestCase):
    """Message ids are base-128 varints, least significant group first, within 0..2^31-1."""

    def test_documented_examples(self) -> None:
        """1, 127, 128, 300 and 2097152 encode as PROTOCOL.md section 3 shows."""
        examples = {
            0: "00",
            1: "01",
            127: "7f",
            128: "8001",
            300: "ac02",
            2097152: "80808001",
            MAX_ID: "ffffffff07",
        }
        for value, hex_bytes in examples.items():
            self.assertEqual(encode_varint(value), bytes.fromhex(hex_bytes), value)

    def test_limits(self) -> None:
        """The id limit is 2^31-1; 2^31 and negative ids raise LocalProtocolError."""
        self.assertEqual(MAX_MESSAGE_ID, MAX_ID)
        self.assertRaises(LocalProtocolError, encode_varint, 2**31)
        self.assertRaises(LocalProtocolError, encode_varint, -1)

    def test_max_id_round_trip(self) -> None:
        """Request id 2147483647 round-trips through a 5-byte varint."""
        body = encode_message(MessageType.REQUEST, MAX_ID, "a.b.c", b"{}")
        self.assertEqual(body, bytes.fromhex("00ffffffff07") + b"\x05a.b.c{}")
        assert_message_decodes(self, body, Message(MessageType.REQUEST, MAX_ID, "a.b.c", b"{}"))

    def test_max_id_response_round_trip(self) -> None:
        """Response id 2147483647 round-trips too."""
        body = encode_message(MessageType.RESPONSE, MAX_ID, body=b"{}")
        assert_message_decodes(self, body, Message(MessageType.RESPONSE, MAX_ID, "", b"{}"))

    def test_id_2_pow_31_refused_by_encode(self) -> None:
        """Encoding a request or response with id 2^31 raises LocalProtocolError."""
        self.assertRaises(
            LocalProtocolError, encode_message, MessageType.REQUEST, 2**31, "a.b.c", b""
        )
        self.assertRaises(LocalProtocolError, encode_message, MessageType.RESPONSE, 2**31)

    def test_id_over_max_refused_on_decode(self) -> None:
        """A 5-byte varint above 2^31-1 (2^31, 2^35-1) is refused on decode."""
        assert_message_refused(self, bytes.fromhex("0080808080080561") + b".b.c{}")
        assert_message_refused(self, bytes.fromhex("04ffffffff7f7b7d"))

    def test_varint_longer_than_five_bytes_refused(self) -> None:
        """A varint of 6 bytes is refused even when its value is small."""
        assert_message_refused(self, bytes.fromhex("04808080808000") + b"{}")
        assert_message_refused(self, bytes.fromhex("0481818181818101") + b"{}")

    def test_non_minimal_varint_accepted(self) -> None:
        """A padded varint within 5 bytes (81 80 00 = 1) decodes to its value, marked
        with its byte count (the answer goes back in those bytes)."""
        assert_message_decodes(
            self,
            bytes.fromhex("04818000") + b"{}",
            Message(MessageType.RESPONSE, mark_id_length(1, 3), "", b"{}"),
        )

    def test_truncated_id_refused(self) -> None:
        """A flag without id, or an id whose last byte has the continuation bit, is refused."""
        assert_message_refused(self, bytes.fromhex("00"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("04"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("0480"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("00ffffffff"), trailing_rescues=True)


class RouteTests(SynchronousTestCase):
    """Routes travel as a 1-byte length + UTF-8 bytes, or as a 2-byte dictionary code."""

    def test_route_of_255_bytes_accepted(self) -> None:
        """A 255-byte route (ASCII or multi-byte) encodes and decodes."""
        for route in ("r" * 255, "é" * 127 + "x"):
            body = encode_message(MessageType.NOTIFY, 0, route, b"{}")
            self.assertEqual(body[1], MAX_ROUTE_BYTES)
            assert_message_decodes(self, body, Message(MessageType.NOTIFY, 0, route, b"{}"))

    def test_route_of_256_bytes_refused(self) -> None:
        """A 256-byte route raises LocalProtocolError, counting UTF-8 bytes, not characters."""
        for route in ("r" * 256, "é" * 128):
            for msg_type in (MessageType.REQUEST, MessageType.NOTIFY, MessageType.PUSH):
                self.assertRaises(LocalProtocolError, encode_message, msg_type, 1, route)

    def test_empty_route(self) -> None:
        """A route of length 0 decodes as the empty string."""
        body = encode_message(MessageType.REQUEST, 3, "", b"x")
        self.assertEqual(body, bytes.fromhex("000300") + b"x")
        assert_message_decodes(self, body, Message(MessageType.REQUEST, 3, "", b"x"))

    def test_route_code_range(self) -> None:
        """Codes 1 and 65535 encode big-endian; 65536 and negative codes are refused."""
        self.assertEqual(MAX_ROUTE_CODE, 65535)
        self.assertEqual(
            encode_message(MessageType.NOTIFY, route_code=1, body=b""), bytes.fromhex("030001")
        )
        self.assertEqual(
            encode_message(MessageType.PUSH, route_code=65535, body=b""), bytes.fromhex("07ffff")
        )
        for code in (65536, -1):
            self.assertRaises(
                LocalProtocolError, encode_message, MessageType.NOTIFY, 0, "", b"", route_code=code
            )

    def test_route_code_zero_means_string_route(self) -> None:
        """route_code=0 sends the string route uncompressed."""
        self.assertEqual(
            encode_message(MessageType.NOTIFY, 0, "a", b"", route_code=0), bytes.fromhex("020161")
        )

    def test_compressed_code_beats_string_route(self) -> None:
        """With a route code the string route is not written at all."""
        self.assertEqual(
            encode_message(MessageType.REQUEST, 1, "ignored", b"{}", route_code=3),
            bytes.fromhex("010100037b7d"),
        )

    def test_truncated_route_refused(self) -> None:
        """A missing length, a short string route or a 1-byte code is refused."""
        assert_message_refused(self, bytes.fromhex("0001"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("02"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("02056162"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("000105616263"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("0101"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("030f"), trailing_rescues=True)
        assert_message_refused(self, bytes.fromhex("07"), trailing_rescues=True)

    def test_non_utf8_route_refused(self) -> None:
        """A string route that is not valid UTF-8 is refused."""
        assert_message_refused(self, bytes.fromhex("000102c328") + b"{}")
        assert_message_refused(self, bytes.fromhex("0201ff"))

    def test_route_code_zero_decodes_as_empty_route(self) -> None:
        """Compressed code 0 is in no dictionary: it decodes as an empty route (answered
        as unknown by the dispatcher) rather than killing the connection."""
        msg = decode_message(bytes.fromhex("0300007b7d"))
        self.assertEqual(
            (msg.type, msg.route, msg.route_code, msg.body), (MessageType.NOTIFY, "", 0, b"{}")
        )


class FlagTests(SynchronousTestCase):
    """The flag byte: compressed bit, type bits, gzip bit and unused high bits."""

    def test_message_types_4_to_7_refused_on_decode(self) -> None:
        """Flags carrying message types 4..7 are refused, compressed or not."""
        for msg_type in range(4, 8):
            for extra in (0x00, 0x01, 0x10):
                flag = (msg_type << 1) | extra
                assert_message_refused(self, bytes((flag,)) + bytes.fromhex("01000102") + b"{}")

    def test_message_types_4_to_7_refused_on_encode(self) -> None:
        """encode_message refuses message types outside 0..3."""
        for msg_type in (4, 7, -1):
            self.assertRaises(LocalProtocolError, encode_message, msg_type, 1, "a.b.c")

    def test_empty_data_package_refused(self) -> None:
        """An empty message (a data package with no body) is refused."""
        assert_message_refused(self, b"", trailing_rescues=True)

    def test_unused_bits_ignored(self) -> None:
        """Bits 6-7 of the flag are ignored when read; bit 5 is pitaya's error flag."""
        assert_message_decodes(
            self,
            bytes.fromhex("e40101") + b"{}",
            Message(MessageType.RESPONSE, 1, "", b"\x01{}", error=True),
        )
        assert_message_decodes(
            self,
            bytes.fromhex("e30007"),
            Message(MessageType.NOTIFY, 0, "", b"", route_code=7, error=True),
        )

    def test_gzip_flag_round_trip(self) -> None:
        """gzip=True sets bit 4 and is reported on decode; the body is left as is."""
        body = encode_message(MessageType.PUSH, 0, "onChat", b"raw", gzip=True)
        self.assertEqual(body[0], 0x16)
        assert_message_decodes(
            self, body, Message(MessageType.PUSH, 0, "onChat", b"raw", gzip=True)
        )

    def test_fields_a_type_lacks_are_not_written(self) -> None:
        """Notifies and pushes write no id; responses write no route, whatever is passed."""
        self.assertEqual(
            encode_message(MessageType.NOTIFY, 99, "a", b"x"), bytes.fromhex("020161") + b"x"
        )
        self.assertEqual(
            encode_message(MessageType.PUSH, 99, "a", b"x", route_code=0),
            bytes.fromhex("060161") + b"x",
        )
        self.assertEqual(
            encode_message(MessageType.RESPONSE, 1, "a.b.c", b"x", route_code=5),
            bytes.fromhex("0401") + b"x",
        )

    def test_empty_body(self) -> None:
        """A message may have an empty body."""
        assert_message_decodes(
            self, bytes.fromhex("0407"), Message(MessageType.RESPONSE, 7, "", b"")
        )

    def test_compressed_property(self) -> None:
        """Message.compressed is true exactly when a route code is set."""
        self.assertTrue(Message(MessageType.PUSH, route_code=7).compressed)
        self.assertFalse(Message(MessageType.PUSH, route="onChat").compressed)


def _route_text() -> st.SearchStrategy[str]:
    return st.text(max_size=255).filter(lambda r: len(r.encode("utf-8")) <= MAX_ROUTE_BYTES)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    """Any encodable message, with the fields its type carries."""
    msg_type = draw(st.sampled_from(list(MessageType)))
    msg_id = draw(st.integers(0, MAX_ID))
    code = draw(st.one_of(st.just(0), st.integers(1, MAX_ROUTE_CODE)))
    route = draw(_route_text())
    body = draw(st.binary(max_size=2048))
    gzip = draw(st.booleans())
    return expected_message(msg_type, msg_id, route, body, code, gzip)


class MessageRoundTripTests(SynchronousTestCase):
    """Property tests: encode then decode gives back the same message."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(message=messages())
    def test_round_trip(self, message: Message) -> None:
        """Every type, id, string or compressed route, body and gzip flag round-trips."""
        data = encode_message(
            message.type,
            message.id,
            message.route,
            message.body,
            route_code=message.route_code,
            gzip=message.gzip,
        )
        assert_message_decodes(self, data, message)

    @settings(max_examples=200, deadline=None, database=None)
    @given(route=_route_text(), msg_id=st.integers(1, MAX_ID), body=st.binary(max_size=512))
    def test_request_length(self, route: str, msg_id: int, body: bytes) -> None:
        """A request is flag + varint + length byte + UTF-8 route + body, nothing else."""
        data = encode_message(MessageType.REQUEST, msg_id, route, body)
        raw = route.encode("utf-8")
        self.assertEqual(data, b"\x00" + encode_varint(msg_id) + bytes((len(raw),)) + raw + body)
