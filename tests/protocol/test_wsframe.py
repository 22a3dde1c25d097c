"""The RFC 6455 frame codec: encoders, the incremental WsFrameDecoder, its violations.

Client frames are built here by hand (:func:`client_frame`, an independent masking by
byte-wise XOR), so that a mistake in the codec's integer unmasking cannot cancel out
between its encoder and its decoder. Every decode case is fed three ways: whole, one
byte at a time, and followed by a partial next frame that must stay buffered.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol.wsframe import (
    CLOSE_INVALID_DATA,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TOO_BIG,
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONT,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    WsClose,
    WsEvent,
    WsFrameDecoder,
    WsPing,
    WsPong,
    WsProtocolError,
    WsText,
    encode_binary,
    encode_close,
    encode_frame,
    encode_pong,
)

LIMIT = 1 << 20
MASK = bytes.fromhex("37fa213d")  # the mask of RFC 6455 §5.7
HELLO = b"Hello"
MASKED_HELLO = bytes.fromhex("37fa213d7f9f4d5158")  # mask + "Hello" masked, from §5.7


def xor_mask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 §5.3 masking, byte by byte: the reference the codec is checked against."""
    return bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def client_frame(
    b0: int,
    payload: bytes,
    mask: bytes | None = MASK,
    *,
    length: int | None = None,
    length_bytes: int | None = None,
) -> bytes:
    """A frame built by hand: first byte ``b0``, a mask bit, a length, the masked payload.

    ``length`` overrides the declared length (the payload is then left out), and
    ``length_bytes`` (0, 2 or 8) forces the length encoding.
    """
    n = len(payload) if length is None else length
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 0x10000 else 8
    mask_bit = 0x80 if mask is not None else 0
    if length_bytes == 0:
        head = bytes((b0, mask_bit | n))
    else:
        marker = 126 if length_bytes == 2 else 127
        head = bytes((b0, mask_bit | marker)) + n.to_bytes(length_bytes, "big")
    if length is not None:
        return head + (mask or b"")
    if mask is None:
        return head + payload
    return head + mask + xor_mask(payload, mask)


NEXT_FRAME = client_frame(0x82, b"next frame", bytes.fromhex("a1b2c3d4"))


def feed_chunks(decoder: WsFrameDecoder, chunks: Sequence[bytes]) -> list[WsEvent]:
    """Every event of feeding ``chunks`` in turn."""
    events: list[WsEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def bytewise(data: bytes) -> list[bytes]:
    """``data`` cut into one-byte chunks."""
    return [data[i : i + 1] for i in range(len(data))]


def assert_decodes(
    test: SynchronousTestCase, wire: bytes, expected: Sequence[WsEvent], *, trailing: bool = True
) -> None:
    """``wire`` decodes to ``expected`` whole, byte by byte, and before a partial frame.

    ``trailing=False`` skips the partial next frame (after a close it is ignored).
    """
    decoder = WsFrameDecoder(LIMIT)
    test.assertEqual(decoder.feed(wire), list(expected))
    test.assertEqual(decoder.buffered, 0)
    decoder = WsFrameDecoder(LIMIT)
    test.assertEqual(feed_chunks(decoder, bytewise(wire)), list(expected))
    test.assertEqual(decoder.buffered, 0)
    for cut in (1, 2, 5, len(NEXT_FRAME) - 1) if trailing else ():
        decoder = WsFrameDecoder(LIMIT)
        test.assertEqual(decoder.feed(wire + NEXT_FRAME[:cut]), list(expected))
        test.assertEqual(decoder.buffered, cut)
        test.assertEqual(decoder.feed(NEXT_FRAME[cut:]), [b"next frame"])
        test.assertEqual(decoder.buffered, 0)


def assert_refused(
    test: SynchronousTestCase,
    wire: bytes,
    code: int,
    words: str,
    *,
    events: Sequence[WsEvent] = (),
    limit: int = LIMIT,
) -> None:
    """``wire`` raises ``WsProtocolError(code)`` naming ``words``, whole and byte by byte."""
    decoder = WsFrameDecoder(limit)
    error = test.assertRaises(WsProtocolError, decoder.feed, wire)
    test.assertEqual((error.code, error.events), (code, list(events)))
    test.assertIn(words, error.reason)
    test.assertEqual(decoder.feed(NEXT_FRAME), [], "the decoder is finished after an error")
    decoder = WsFrameDecoder(limit)
    seen: list[WsEvent] = []
    for byte in bytewise(wire):
        try:
            seen.extend(decoder.feed(byte))
        except WsProtocolError as err:
            test.assertEqual(err.code, code)
            test.assertIn(words, err.reason)
            seen.extend(err.events)
            break
    else:
        test.fail("fed byte by byte, the frame was never refused")
    test.assertEqual(seen, list(events))


class EncoderTests(SynchronousTestCase):
    """The encoders produce the exact bytes of RFC 6455 §5.7 and the shortest lengths."""

    def test_unmasked_text_hello(self) -> None:
        """An unmasked final text frame "Hello" is 81 05 48 65 6c 6c 6f."""
        self.assertEqual(encode_frame(OPCODE_TEXT, HELLO), bytes.fromhex("810548656c6c6f"))

    def test_masked_text_hello(self) -> None:
        """ "Hello" masked with 37 fa 21 3d is 81 85 37 fa 21 3d 7f 9f 4d 51 58."""
        self.assertEqual(
            encode_frame(OPCODE_TEXT, HELLO, mask=MASK), bytes.fromhex("818537fa213d7f9f4d5158")
        )

    def test_fragmented_unmasked_text(self) -> None:
        """ "Hel" then "lo" are 01 03 48 65 6c (FIN clear) and 80 02 6c 6f (continuation)."""
        self.assertEqual(encode_frame(OPCODE_TEXT, b"Hel", fin=False), bytes.fromhex("010348656c"))
        self.assertEqual(encode_frame(OPCODE_CONT, b"lo"), bytes.fromhex("80026c6f"))

    def test_unmasked_ping(self) -> None:
        """An unmasked ping carrying "Hello" is 89 05 48 65 6c 6c 6f."""
        self.assertEqual(encode_frame(OPCODE_PING, HELLO), bytes.fromhex("890548656c6c6f"))

    def test_masked_pong(self) -> None:
        """A masked pong carrying "Hello" is 8a 85 37 fa 21 3d 7f 9f 4d 51 58."""
        self.assertEqual(
            encode_frame(OPCODE_PONG, HELLO, mask=MASK), bytes.fromhex("8a8537fa213d7f9f4d5158")
        )

    def test_binary_256_header(self) -> None:
        """256 bytes take the 16-bit length: header 82 7e 01 00."""
        payload = bytes(range(256))
        self.assertEqual(encode_binary(payload), bytes.fromhex("827e0100") + payload)
        self.assertEqual(encode_frame(OPCODE_BINARY, payload), encode_binary(payload))

    def test_binary_65536_header(self) -> None:
        """65536 bytes take the 64-bit length: header 82 7f 00 00 00 00 00 01 00 00."""
        payload = bytes(65536)
        self.assertEqual(encode_binary(payload), bytes.fromhex("827f0000000000010000") + payload)
        self.assertEqual(encode_frame(OPCODE_BINARY, payload), encode_binary(payload))

    def test_length_boundaries(self) -> None:
        """125 bytes fit the 7-bit length, 126..65535 the 16-bit, 65536 the 64-bit one."""
        for size, head in ((0, "8200"), (125, "827d"), (126, "827e007e"), (65535, "827effff")):
            self.assertEqual(encode_binary(bytes(size))[: len(head) // 2], bytes.fromhex(head))
            self.assertEqual(len(encode_binary(bytes(size))), size + len(head) // 2)

    def test_pong(self) -> None:
        """encode_pong echoes up to 125 bytes unmasked and refuses more."""
        self.assertEqual(encode_pong(HELLO), bytes.fromhex("8a0548656c6c6f"))
        self.assertEqual(encode_pong(b""), b"\x8a\x00")
        self.assertEqual(encode_pong(bytes(125))[:2], b"\x8a\x7d")
        self.assertRaises(ValueError, encode_pong, bytes(126))

    def test_close(self) -> None:
        """encode_close puts the code big-endian before the UTF-8 reason; None is empty."""
        self.assertEqual(encode_close(1000), bytes.fromhex("880203e8"))
        self.assertEqual(encode_close(1001, "bye"), bytes.fromhex("880503e9") + b"bye")
        self.assertEqual(encode_close(None), b"\x88\x00")

    def test_close_refuses(self) -> None:
        """A reason without a code and a code not allowed on the wire raise ValueError."""
        self.assertRaises(ValueError, encode_close, None, "why")
        for code in (999, 1005, 1006, 1015, 2999, 5000):
            self.assertRaises(ValueError, encode_close, code)

    def test_close_reason_truncated_on_utf8_boundary(self) -> None:
        """A long reason is cut to at most 123 bytes without splitting a character."""
        frame = encode_close(1000, "é" * 100)  # 200 bytes: 61 whole characters fit
        self.assertEqual(frame[:4], bytes.fromhex("887c03e8"))
        self.assertEqual(frame[4:].decode("utf-8"), "é" * 61)
        self.assertEqual(len(encode_close(1000, "a" * 200)), 2 + 125)

    def test_encode_frame_refuses(self) -> None:
        """Reserved opcodes, bad control frames and a mask of 3 bytes raise ValueError."""
        for opcode in (3, 7, 11, 15, 16, -1):
            self.assertRaises(ValueError, encode_frame, opcode, b"")
        self.assertRaises(ValueError, encode_frame, OPCODE_PING, bytes(126))
        self.assertRaises(ValueError, encode_frame, OPCODE_CLOSE, b"", fin=False)
        self.assertRaises(ValueError, encode_frame, OPCODE_BINARY, b"", mask=b"abc")

    @settings(max_examples=60, deadline=None, database=None)
    @given(
        size=st.one_of(st.integers(0, 300), st.sampled_from([125, 126, 65535, 65536, 70000])),
        mask=st.binary(min_size=4, max_size=4),
        opcode=st.sampled_from([OPCODE_CONT, OPCODE_TEXT, OPCODE_BINARY]),
        fin=st.booleans(),
    )
    def test_masked_frame_matches_reference(
        self, size: int, mask: bytes, opcode: int, fin: bool
    ) -> None:
        """encode_frame with a mask equals the frame built by byte-wise XOR."""
        payload = random.Random(size).randbytes(size)
        self.assertEqual(
            encode_frame(opcode, payload, fin=fin, mask=mask),
            client_frame(opcode | (0x80 if fin else 0), payload, mask),
        )
        self.assertEqual(
            encode_frame(opcode, payload, fin=fin),
            client_frame(opcode | (0x80 if fin else 0), payload, None),
        )


class DecoderTests(SynchronousTestCase):
    """Masked client frames decode to messages and control frames, however they arrive."""

    def test_masked_text_hello(self) -> None:
        """The masked "Hello" of §5.7 decodes to WsText(b"Hello"), the opcode reported."""
        assert_decodes(self, bytes.fromhex("8185") + MASKED_HELLO, [WsText(HELLO)])

    def test_masked_binary(self) -> None:
        """A masked binary frame decodes to its unmasked payload."""
        assert_decodes(self, client_frame(0x82, b"\x00\x01binary\xff"), [b"\x00\x01binary\xff"])

    def test_empty_frames(self) -> None:
        """Empty text and binary frames decode to WsText(b"") and b""."""
        assert_decodes(self, client_frame(0x81, b"") + client_frame(0x82, b""), [WsText(b""), b""])

    def test_text_not_utf8_refused(self) -> None:
        """A text frame carrying invalid UTF-8 fails with 1007 (RFC 6455 §8.1)."""
        assert_refused(self, client_frame(0x81, b"\xff\xfe\xc3"), CLOSE_INVALID_DATA, "UTF-8")

    def test_masked_fragmented_hello(self) -> None:
        """Masked "Hel" (FIN clear) then continuation "lo" decode to one b"Hello"."""
        wire = client_frame(0x01, b"Hel") + client_frame(0x80, b"lo")
        self.assertEqual(wire[:2] + wire[9:11], bytes.fromhex("01838082"))
        assert_decodes(self, wire, [WsText(HELLO)])

    def test_masked_ping(self) -> None:
        """A masked ping carrying "Hello" decodes to WsPing(b"Hello")."""
        assert_decodes(self, bytes.fromhex("8985") + MASKED_HELLO, [WsPing(HELLO)])

    def test_masked_pong(self) -> None:
        """The masked pong of §5.7 (8a 85 37 fa 21 3d ...) decodes to WsPong(b"Hello")."""
        assert_decodes(self, bytes.fromhex("8a8537fa213d7f9f4d5158"), [WsPong(HELLO)])

    def test_binary_256(self) -> None:
        """A masked 256-byte binary frame (82 fe 01 00 + mask) decodes to its payload."""
        payload = bytes(range(256))
        wire = client_frame(0x82, payload)
        self.assertEqual(wire[:4], bytes.fromhex("82fe0100"))
        assert_decodes(self, wire, [payload])

    def test_binary_65536(self) -> None:
        """A masked 65536-byte binary frame (64-bit length) decodes to its payload."""
        payload = random.Random(65536).randbytes(65536)
        wire = client_frame(0x82, payload)
        self.assertEqual(wire[:10], bytes.fromhex("82ff0000000000010000"))
        assert_decodes(self, wire, [payload])

    def test_non_minimal_lengths_refused(self) -> None:
        """A length in a longer form than it needs is a protocol error (1002), §5.2."""
        for frame, words in (
            (client_frame(0x82, b"ab", length_bytes=2), "16-bit payload length 2"),
            (client_frame(0x82, b"cd", length_bytes=8), "64-bit payload length 2"),
            (client_frame(0x82, bytes(300), length_bytes=8), "64-bit payload length 300"),
        ):
            assert_refused(self, frame, CLOSE_PROTOCOL_ERROR, words)

    def test_fragments_with_interleaved_control_frames(self) -> None:
        """Pings and pongs between fragments come out first, in wire order, then the message."""
        wire = (
            client_frame(0x02, b"one ")
            + client_frame(0x89, b"p1")
            + client_frame(0x00, b"")
            + client_frame(0x8A, b"")
            + client_frame(0x00, b"two ")
            + client_frame(0x89, b"p2")
            + client_frame(0x80, b"three")
        )
        assert_decodes(self, wire, [WsPing(b"p1"), WsPong(b""), WsPing(b"p2"), b"one two three"])

    def test_bytearray_and_memoryview_chunks(self) -> None:
        """feed accepts a bytearray or a memoryview and still returns bytes."""
        wire = client_frame(0x82, HELLO) + client_frame(0x82, bytes(200))
        for chunk in (bytearray(wire), memoryview(wire)):
            events = WsFrameDecoder(LIMIT).feed(chunk)  # type: ignore[arg-type]
            self.assertEqual(events, [HELLO, bytes(200)])
            self.assertEqual([type(event) for event in events], [bytes, bytes])

    def test_many_frames_in_one_chunk(self) -> None:
        """Five hundred frames of mixed sizes in one chunk decode in order."""
        payloads = [bytes([i % 256]) * (i % 300) for i in range(500)]
        wire = b"".join(
            client_frame(0x82, p, bytes([i % 256, 1, 2, 3])) for i, p in enumerate(payloads)
        )
        self.assertEqual(WsFrameDecoder(LIMIT).feed(wire), payloads)

    def test_close_frames(self) -> None:
        """Close frames decode to WsClose: empty payload gives code None."""
        assert_decodes(self, client_frame(0x88, b""), [WsClose(None, "")], trailing=False)
        wire = client_frame(0x88, (1001).to_bytes(2, "big") + "adiós".encode())
        assert_decodes(self, wire, [WsClose(1001, "adiós")], trailing=False)

    def test_allowed_close_codes(self) -> None:
        """Codes 1000–1003, 1007–1014 and 3000–4999 are accepted."""
        for code in (1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4000, 4999):
            wire = client_frame(0x88, code.to_bytes(2, "big"))
            self.assertEqual(WsFrameDecoder(LIMIT).feed(wire), [WsClose(code, "")])

    def test_bytes_after_close_ignored(self) -> None:
        """Frames before a close come out with it; anything after it, now or later, is ignored."""
        wire = client_frame(0x82, b"a") + client_frame(0x88, b"\x03\xe8") + client_frame(0x82, b"b")
        decoder = WsFrameDecoder(LIMIT)
        self.assertEqual(decoder.feed(wire + b"\xff\xff"), [b"a", WsClose(1000, "")])
        self.assertEqual(decoder.feed(NEXT_FRAME), [])
        self.assertEqual(decoder.feed(b"\x00garbage"), [])
        self.assertEqual(decoder.buffered, 0)

    def test_limit_is_inclusive(self) -> None:
        """A frame, or a fragmented message, of exactly max_message_size bytes is accepted."""
        decoder = WsFrameDecoder(300)
        self.assertEqual(decoder.feed(client_frame(0x82, bytes(300))), [bytes(300)])
        wire = client_frame(0x02, bytes(100)) + client_frame(0x80, bytes(200))
        self.assertEqual(decoder.feed(wire), [bytes(300)])
        self.assertEqual(WsFrameDecoder(0).feed(client_frame(0x82, b"")), [b""])

    def test_control_frames_not_bound_by_limit(self) -> None:
        """A 125-byte ping passes even when max_message_size is smaller."""
        self.assertEqual(
            WsFrameDecoder(10).feed(client_frame(0x89, bytes(125))), [WsPing(bytes(125))]
        )

    def test_negative_limit_refused(self) -> None:
        """A negative max_message_size raises ValueError."""
        self.assertRaises(ValueError, WsFrameDecoder, -1)

    def test_error_attributes(self) -> None:
        """WsProtocolError keeps code and reason, starts with no events, and shows both."""
        error = WsProtocolError(CLOSE_PROTOCOL_ERROR, "bad thing")
        self.assertEqual((error.code, error.reason, error.events), (1002, "bad thing", []))
        self.assertIn("bad thing", str(error))
        self.assertIn("1002", str(error))


class ViolationTests(SynchronousTestCase):
    """Every RFC 6455 violation raises WsProtocolError with the close code to send back."""

    def test_unmasked_client_frame(self) -> None:
        """A client frame without the mask bit is a protocol error (1002)."""
        assert_refused(self, client_frame(0x82, HELLO, None), 1002, "not masked")

    def test_rsv_bits(self) -> None:
        """Any of RSV1, RSV2, RSV3 set is a protocol error: no extension is negotiated."""
        for rsv in (0x40, 0x20, 0x10, 0x70):
            assert_refused(self, client_frame(0x82 | rsv, HELLO), 1002, "RSV")

    def test_reserved_opcodes(self) -> None:
        """Opcodes 3–7 and 11–15 are a protocol error."""
        for opcode in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            assert_refused(self, client_frame(0x80 | opcode, b""), 1002, f"opcode {opcode}")

    def test_fragmented_control_frame(self) -> None:
        """A ping, pong or close with FIN clear is a protocol error."""
        for opcode in (OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG):
            assert_refused(self, client_frame(opcode, b""), 1002, "fragmented control")

    def test_control_frame_too_long(self) -> None:
        """A control frame declaring 126 bytes is refused from its header."""
        for b0 in (0x88, 0x89, 0x8A):
            assert_refused(self, client_frame(b0, b"", length=126), 1002, "over 125")

    def test_continuation_without_message(self) -> None:
        """A continuation frame with no message started is a protocol error."""
        assert_refused(self, client_frame(0x80, b"lo"), 1002, "continuation")

    def test_new_message_inside_fragmented_one(self) -> None:
        """A text or binary frame while a fragmented message is open is a protocol error."""
        for b0 in (0x81, 0x82, 0x01, 0x02):
            wire = client_frame(0x01, b"Hel") + client_frame(b0, b"lo")
            assert_refused(self, wire, 1002, "inside a fragmented message")

    def test_64_bit_length_top_bit(self) -> None:
        """A 64-bit length with its most significant bit set is a protocol error."""
        wire = client_frame(0x82, b"", length=1 << 63, length_bytes=8)
        assert_refused(self, wire, 1002, "top bit", limit=1 << 64)

    def test_frame_over_limit(self) -> None:
        """A frame longer than max_message_size is 1009, from 7-, 16- and 64-bit lengths."""
        assert_refused(self, client_frame(0x82, bytes(11)), 1009, "max_message_size", limit=10)
        assert_refused(self, client_frame(0x81, bytes(300)), 1009, "frame over", limit=299)
        assert_refused(self, client_frame(0x82, bytes(70000)), 1009, "frame", limit=65536)

    def test_fragmented_message_over_limit(self) -> None:
        """Fragments each under the limit but summing over it are 1009."""
        wire = (
            client_frame(0x02, bytes(60)) + client_frame(0x89, b"") + client_frame(0x00, bytes(41))
        )
        assert_refused(self, wire, 1009, "fragmented message over", events=[WsPing(b"")], limit=100)

    def test_limit_checked_before_payload(self) -> None:
        """The header alone of an oversized frame raises: its payload is never buffered."""
        for wire in (
            bytes((0x82, 0xFF)) + (1 << 40).to_bytes(8, "big"),
            bytes((0x82, 0xFE)) + (1000).to_bytes(2, "big"),
            bytes((0x82, 0xFF)) + (1 << 62).to_bytes(8, "big") + MASK,
        ):
            decoder = WsFrameDecoder(999)
            error = self.assertRaises(WsProtocolError, decoder.feed, wire)
            self.assertEqual(error.code, CLOSE_TOO_BIG)
        decoder = WsFrameDecoder(100)
        self.assertEqual(decoder.feed(client_frame(0x02, bytes(90))), [])
        error = self.assertRaises(WsProtocolError, decoder.feed, b"\x80\x8b")
        self.assertEqual(error.code, CLOSE_TOO_BIG)

    def test_close_payload_of_one_byte(self) -> None:
        """A close frame with a 1-byte payload is a protocol error."""
        assert_refused(self, client_frame(0x88, b"\x03"), 1002, "1 byte")

    def test_close_codes_not_allowed(self) -> None:
        """Close codes below 1000, 1004–1006, 1015–2999 and from 5000 are protocol errors."""
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535):
            wire = client_frame(0x88, code.to_bytes(2, "big") + b"x")
            assert_refused(self, wire, 1002, f"close code {code}")

    def test_close_reason_not_utf8(self) -> None:
        """A close reason that is not valid UTF-8 is invalid data (1007)."""
        wire = client_frame(0x88, b"\x03\xe8ok\xc3")
        assert_refused(self, wire, CLOSE_INVALID_DATA, "UTF-8")

    def test_events_before_violation_kept(self) -> None:
        """Messages and pings decoded before a violation in the same chunk ride on the error."""
        wire = (
            client_frame(0x82, b"first")
            + client_frame(0x89, b"ping")
            + client_frame(0x01, b"He")
            + client_frame(0x80, b"llo")
            + client_frame(0x82, b"bad", None)
        )
        assert_refused(
            self, wire, 1002, "not masked", events=[b"first", WsPing(b"ping"), WsText(HELLO)]
        )


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """Random bytes of 0..70000, often near the 125/126/65535/65536 length boundaries."""
    size = draw(
        st.one_of(
            st.integers(0, 300),
            st.sampled_from([0, 1, 124, 125, 126, 127, 65535, 65536, 65537]),
            st.integers(0, 70000),
        )
    )
    return random.Random(draw(st.integers(0, 1 << 32))).randbytes(size)


@st.composite
def client_streams(draw: st.DrawFn) -> tuple[bytes, list[WsEvent]]:
    """Messages cut into masked frames with pings in between: the bytes and the events."""
    frames: list[bytes] = []
    events: list[WsEvent] = []
    masks = st.binary(min_size=4, max_size=4)
    for message in draw(st.lists(payloads(), min_size=1, max_size=4)):
        opcode = draw(st.sampled_from([OPCODE_TEXT, OPCODE_BINARY]))
        if opcode == OPCODE_TEXT:  # text must be UTF-8: the random bytes as code points
            message = message[:2000].decode("latin-1").encode("utf-8")
        cuts = sorted(draw(st.lists(st.integers(0, len(message)), max_size=3)))
        bounds = [0, *cuts, len(message)]
        for i in range(len(bounds) - 1):
            fin = i == len(bounds) - 2
            fragment = message[bounds[i] : bounds[i + 1]]
            frames.append(
                encode_frame(opcode if i == 0 else 0, fragment, fin=fin, mask=draw(masks))
            )
            if not fin and draw(st.booleans()):
                ping = draw(st.binary(max_size=125))
                frames.append(encode_frame(OPCODE_PING, ping, mask=draw(masks)))
                events.append(WsPing(ping))
        events.append(WsText(message) if opcode == OPCODE_TEXT else message)
    return b"".join(frames), events


class RoundTripTests(SynchronousTestCase):
    """Property tests: encoded client frames decode back to the messages, however cut."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(stream=client_streams(), data=st.data())
    def test_random_fragmentation_and_chunking(
        self, stream: tuple[bytes, list[WsEvent]], data: st.DataObject
    ) -> None:
        """Messages fragmented at random and the stream cut at random decode exactly."""
        wire, expected = stream
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12), label="cuts"))
        bounds = [0, *cuts, len(wire)]
        decoder = WsFrameDecoder(LIMIT)
        chunks = [wire[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]
        self.assertEqual(feed_chunks(decoder, chunks), expected)
        self.assertEqual(decoder.buffered, 0)

    @settings(max_examples=200, deadline=None, database=None)
    @given(payload=payloads(), mask=st.binary(min_size=4, max_size=4))
    def test_single_frame(self, payload: bytes, mask: bytes) -> None:
        """One masked binary frame decodes to its payload; encode_binary frames it back."""
        (message,) = WsFrameDecoder(LIMIT).feed(encode_frame(OPCODE_BINARY, payload, mask=mask))
        assert isinstance(message, bytes)
        self.assertEqual(message, payload)
        self.assertEqual(encode_binary(message), encode_frame(OPCODE_BINARY, payload))
