"""RFC 6455 to the letter: UTF-8 of text messages, shortest lengths, opcodes, wsproto.

The literal cases are fed whole, byte by byte and before a partial next frame (the
helpers of ``test_wsframe``). The differential tests run random frame streams, valid
and broken, through our decoder and through wsproto's server-side frame decoder (a
reference implementation) and require the same messages and the same failure class.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from pomelo_twisted.protocol.wsframe import (
    CLOSE_INVALID_DATA,
    CLOSE_PROTOCOL_ERROR,
    WsClose,
    WsEvent,
    WsFrameDecoder,
    WsPing,
    WsPong,
    WsProtocolError,
    WsText,
)

from .test_wsframe import (
    LIMIT,
    assert_decodes,
    assert_refused,
    bytewise,
    client_frame,
    feed_chunks,
)

EURO = "€".encode()  # e2 82 ac
SMILE = "😀".encode()  # f0 9f 98 80


class Utf8Tests(SynchronousTestCase):
    """Text messages are UTF-8 validated, incrementally across fragments (1007)."""

    def test_valid_multibyte_text(self) -> None:
        """A text frame of multi-byte characters decodes to WsText of its bytes."""
        text = "κόσμε €😀".encode()
        assert_decodes(self, client_frame(0x81, text), [WsText(text)])

    def test_character_split_across_fragments(self) -> None:
        """A character cut between fragments (and a ping between them) is valid."""
        wire = (
            client_frame(0x01, SMILE[:1])
            + client_frame(0x00, SMILE[1:3])
            + client_frame(0x89, b"p")
            + client_frame(0x80, SMILE[3:] + EURO)
        )
        assert_decodes(self, wire, [WsPing(b"p"), WsText(SMILE + EURO)])

    def test_invalid_first_fragment_fails_at_once(self) -> None:
        """An invalid byte in the first fragment fails before the message ends."""
        decoder = WsFrameDecoder(LIMIT)
        error = self.assertRaises(WsProtocolError, decoder.feed, client_frame(0x01, b"ok\xc0\xaf"))
        self.assertEqual(error.code, CLOSE_INVALID_DATA)

    def test_dead_prefix_fails_at_once(self) -> None:
        """A fragment ending in ED A0 (a surrogate's start) fails before the rest comes."""
        assert_refused(self, client_frame(0x01, b"a\xed\xa0"), CLOSE_INVALID_DATA, "UTF-8")
        assert_refused(self, client_frame(0x01, b"\xf4\x90"), CLOSE_INVALID_DATA, "UTF-8")

    def test_fails_inside_a_frame(self) -> None:
        """Bad bytes at the start of a 1000-byte text frame fail before the rest arrives."""
        for first in (
            client_frame(0x81, b"ok\xff" + bytes(997)),
            client_frame(0x01, b"ok\xc0" + bytes(997)),
        ):
            decoder = WsFrameDecoder(LIMIT)
            self.assertEqual(decoder.feed(first[:9]), [])  # header, mask, "o"
            error = self.assertRaises(WsProtocolError, decoder.feed, first[9:12])
            self.assertEqual(error.code, CLOSE_INVALID_DATA)

    def test_fails_inside_a_continuation_frame(self) -> None:
        """A continuation arriving in pieces fails at its first bad byte, with the message's
        state carried over (a character begun in the previous fragment)."""
        decoder = WsFrameDecoder(LIMIT)
        self.assertEqual(decoder.feed(client_frame(0x01, b"a\xe2")), [])
        cont = client_frame(0x80, b"\x82" + b"\x41" + bytes(300))  # E2 82 41: broken
        self.assertEqual(decoder.feed(cont[:9]), [])  # E2 82 so far: still live
        error = self.assertRaises(WsProtocolError, decoder.feed, cont[9:10])
        self.assertEqual(error.code, CLOSE_INVALID_DATA)

    def test_valid_frame_in_pieces_checked_once(self) -> None:
        """A valid text frame in 7-byte pieces decodes; each piece is checked once."""
        text = ("€😀a" * 40).encode()
        wire = client_frame(0x81, text) + client_frame(0x89, b"p")
        decoder = WsFrameDecoder(LIMIT)
        events = feed_chunks(decoder, [wire[i : i + 7] for i in range(0, len(wire), 7)])
        self.assertEqual(events, [WsText(text), WsPing(b"p")])

    def test_live_prefix_waits(self) -> None:
        """A fragment ending inside a character that can still be valid is kept."""
        decoder = WsFrameDecoder(LIMIT)
        self.assertEqual(decoder.feed(client_frame(0x01, b"a\xf0\x9f")), [])
        self.assertEqual(decoder.feed(client_frame(0x80, b"\x98\x80")), [WsText(b"a" + SMILE)])

    def test_incomplete_at_message_end(self) -> None:
        """A message that stops inside a character fails at its last fragment."""
        wire = client_frame(0x01, b"a" + EURO[:2]) + client_frame(0x80, b"")
        assert_refused(self, wire, CLOSE_INVALID_DATA, "UTF-8")
        assert_refused(self, client_frame(0x81, EURO[:1]), CLOSE_INVALID_DATA, "UTF-8")

    def test_invalid_continuation_fragment(self) -> None:
        """A bad byte in a later fragment fails with 1007, the earlier events kept."""
        wire = (
            client_frame(0x82, b"bin")
            + client_frame(0x01, b"good")
            + client_frame(0x00, b"\xff")
            + client_frame(0x80, b"never")
        )
        assert_refused(self, wire, CLOSE_INVALID_DATA, "UTF-8", events=[b"bin"])

    def test_binary_not_validated(self) -> None:
        """Binary messages, whole or fragmented, are not UTF-8 checked."""
        wire = (
            client_frame(0x02, b"\xff") + client_frame(0x80, b"\xfe") + client_frame(0x82, b"\xc0")
        )
        assert_decodes(self, wire, [b"\xff\xfe", b"\xc0"])

    def test_16_bit_text_frame(self) -> None:
        """A 16-bit-length text frame takes the fast path and is validated too."""
        text = EURO * 100
        assert_decodes(self, client_frame(0x81, text), [WsText(text)])
        assert_refused(self, client_frame(0x81, text[:-1]), CLOSE_INVALID_DATA, "UTF-8")


class LengthAndCloseTests(SynchronousTestCase):
    """Shortest length forms (1002) and close payloads, literal bytes."""

    def test_ping_with_long_length_form(self) -> None:
        """The 5-byte ping behind a 16-bit length is a 1002 naming the length form."""
        wire = bytes.fromhex("89fe0005") + bytes.fromhex("37fa213d7f9f4d5158")
        assert_refused(self, wire, CLOSE_PROTOCOL_ERROR, "16-bit payload length 5 fits")
        wire = bytes.fromhex("89ff0000000000000005") + bytes.fromhex("37fa213d7f9f4d5158")
        assert_refused(self, wire, CLOSE_PROTOCOL_ERROR, "64-bit payload length 5 fits")

    def test_shortest_forms_at_the_boundaries(self) -> None:
        """126 in 16 bits and 65536 in 64 bits are the shortest forms: accepted."""
        for size in (126, 65535, 65536):
            payload = bytes(size)
            assert_decodes(self, client_frame(0x82, payload), [payload])

    def test_longest_non_minimal_forms(self) -> None:
        """125 in 16 bits and 65535 in 64 bits are refused before their payload."""
        assert_refused(
            self, client_frame(0x82, b"", length=125, length_bytes=2), 1002, "fits the 7-bit"
        )
        assert_refused(
            self, client_frame(0x82, b"", length=65535, length_bytes=8), 1002, "fits a shorter"
        )

    def test_close_payload_of_one_byte(self) -> None:
        """88 81 + mask + one byte: 1002."""
        assert_refused(self, bytes.fromhex("888137fa213d03"), CLOSE_PROTOCOL_ERROR, "1 byte")

    def test_close_reason_invalid_utf8(self) -> None:
        """Close 1000 with reason FF: 1007."""
        wire = client_frame(0x88, b"\x03\xe8\xff")
        assert_refused(self, wire, CLOSE_INVALID_DATA, "UTF-8")


# -- differential: ours against wsproto ----------------------------------------------

MASKS = st.binary(min_size=4, max_size=4)
CLOSE_CODES = [0, 999, 1000, 1001, 1002, 1004, 1005, 1006, 1007, 1011, 1015, 2999, 3000, 4999, 5000]
"""Close codes both decoders judge alike (1012-1014: wsproto's registry lacks 1014)."""


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One client frame, usually valid, sometimes broken in one way."""
    kind = draw(st.sampled_from(["text", "binary", "cont", "ping", "pong", "close", "raw"]))
    fin = draw(st.booleans()) if kind in ("text", "binary", "cont") else True
    text = st.text(max_size=40).map(lambda t: t.encode())
    payload = draw(st.one_of(text, st.binary(max_size=300)) if kind != "close" else st.just(b""))
    if kind == "close":
        if draw(st.booleans()):
            code = draw(st.sampled_from(CLOSE_CODES))
            reason = draw(st.one_of(text, st.binary(max_size=10)))
            payload = code.to_bytes(2, "big") + reason[:100]
        else:
            payload = draw(st.binary(max_size=1))
    opcode = {"text": 1, "binary": 2, "cont": 0, "ping": 9, "pong": 10, "close": 8}.get(kind)
    if opcode is None:
        opcode = draw(st.sampled_from([3, 7, 11, 15]))
    if opcode >= 8:
        payload = payload[:125] if draw(st.integers(0, 9)) else payload
    b0 = opcode | (0x80 if fin else 0)
    if not draw(st.integers(0, 19)):
        b0 |= draw(st.sampled_from([0x10, 0x20, 0x40]))
    length_bytes = None
    if not draw(st.integers(0, 9)):
        length_bytes = draw(st.sampled_from([2, 8]))
    mask = draw(MASKS) if draw(st.integers(0, 29)) else None
    if length_bytes is not None and len(payload) >= (126 if length_bytes == 2 else 0x10000):
        length_bytes = None
    return client_frame(b0, payload, mask, length_bytes=length_bytes)


Outcome = tuple[list[tuple[str, object]], int | None]


def ours(wire: bytes, chunks: list[bytes]) -> Outcome:
    """Our messages and failure code, ``wire`` fed in ``chunks``."""
    decoder = WsFrameDecoder(1 << 24)
    events: list[WsEvent] = []
    code = None
    try:
        events = feed_chunks(decoder, chunks)
    except WsProtocolError as error:
        code = error.code
    else:
        return normalise(events), None
    # The events before the failure: feed again, collecting what precedes it.
    decoder = WsFrameDecoder(1 << 24)
    for chunk in chunks:
        try:
            events.extend(decoder.feed(chunk))
        except WsProtocolError as error:
            events.extend(error.events)
            break
    return normalise(events), code


def normalise(events: list[WsEvent]) -> list[tuple[str, object]]:
    """Events as comparable tuples, up to and including a close."""
    out: list[tuple[str, object]] = []
    for event in events:
        if type(event) is bytes:
            out.append(("binary", event))
        elif isinstance(event, WsText):
            out.append(("text", event.payload))
        elif isinstance(event, WsPing):
            out.append(("ping", event.payload))
        elif isinstance(event, WsPong):
            out.append(("pong", event.payload))
        elif isinstance(event, WsClose):
            out.append(("close", (event.code, event.reason)))
    return out


def reference(wire: bytes) -> Outcome:
    """wsproto's server-side decoder: messages joined, and the failure code."""
    protocol = FrameProtocol(client=False, extensions=[])
    out: list[tuple[str, object]] = []
    parts: list[bytes] = []
    protocol.receive_bytes(wire)
    try:
        for frame in protocol.received_frames():
            if frame.opcode is Opcode.PING:
                out.append(("ping", bytes(frame.payload)))
            elif frame.opcode is Opcode.PONG:
                out.append(("pong", bytes(frame.payload)))
            elif frame.opcode is Opcode.CLOSE:
                code, reason = frame.payload
                out.append(("close", (None if code == 1005 else int(code), reason)))
                return out, None
            else:
                payload = frame.payload
                parts.append(payload.encode() if isinstance(payload, str) else bytes(payload))
                if frame.message_finished:
                    kind = "text" if frame.opcode is Opcode.TEXT else "binary"
                    out.append((kind, b"".join(parts)))
                    parts = []
    except ParseFailed as failure:
        return out, int(failure.code)
    return out, None


class DifferentialTests(SynchronousTestCase):
    """Our decoder and wsproto's agree on random client frame streams."""

    @settings(max_examples=600, deadline=None, database=None)
    @given(stream=st.lists(frames(), min_size=1, max_size=8), data=st.data())
    def test_same_messages_same_failure(self, stream: list[bytes], data: st.DataObject) -> None:
        """Same messages and control frames, and the same close code on a violation."""
        wire = b"".join(stream)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6), label="cuts"))
        bounds = [0, *cuts, len(wire)]
        chunks = [wire[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]
        self.assertEqual(ours(wire, chunks), reference(wire))

    def test_byte_by_byte_agrees(self) -> None:
        """A fixed mixed stream, fed a byte at a time, matches wsproto fed at once."""
        wire = (
            client_frame(0x01, SMILE[:2])
            + client_frame(0x89, b"hi")
            + client_frame(0x80, SMILE[2:])
            + client_frame(0x82, bytes(200))
            + client_frame(0x88, b"\x03\xe8bye")
        )
        self.assertEqual(ours(wire, bytewise(wire)), reference(wire))
