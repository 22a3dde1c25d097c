"""Answers carry the id bytes their request came with (the stock pomelo 2.2.7 browser
client writes ids most significant group first)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import LocalProtocolError, Request, encode_response
from pomelo_twisted.protocol.fastpath import decode_request_fast
from pomelo_twisted.protocol.message import (
    MessageType,
    decode_message,
    encode_varint,
    id_length_of,
    mark_id_length,
)

from ..agent.helpers import connect


def _msb_first(msg_id: int) -> bytes:
    """pomelo-protocol's old encodeMsgId (build.js of pomelo 2.2.7): most significant first."""
    groups = []
    while True:
        groups.append(msg_id & 0x7F)
        msg_id >>= 7
        if not msg_id:
            break
    groups.reverse()
    return bytes(g | 0x80 for g in groups[:-1]) + bytes(groups[-1:])


class IdBytesTests(SynchronousTestCase):
    """The codec keeps a non-canonical id's bytes."""

    def test_trailing_zero_group_marked(self) -> None:
        """81 00 (id 128 sent most significant first) decodes to 1 marked with 2 bytes."""
        msg = decode_message(bytes.fromhex("008100") + b"\x03a.b{}")
        self.assertEqual(msg.type, MessageType.REQUEST)
        self.assertEqual(msg.id, mark_id_length(1, 2))
        self.assertEqual(id_length_of(msg.id), 2)

    def test_marked_id_encodes_to_its_bytes(self) -> None:
        """A marked id encodes back to the bytes it came in; a response carries them."""
        self.assertEqual(encode_varint(mark_id_length(1, 2)), bytes.fromhex("8100"))
        self.assertEqual(encode_varint(mark_id_length(1, 3)), bytes.fromhex("818000"))
        self.assertEqual(encode_varint(mark_id_length(3, 5)), bytes.fromhex("8380808000"))
        self.assertEqual(
            encode_response(mark_id_length(1, 2), b"{}"), bytes.fromhex("04000005048100") + b"{}"
        )

    def test_canonical_ids_stay_plain(self) -> None:
        """Canonical ids (81 01 = 129) decode to plain ints, on the fast path too."""
        self.assertEqual(decode_message(bytes.fromhex("008101") + b"\x03a.b{}").id, 129)
        self.assertEqual(
            decode_request_fast(bytes.fromhex("008101") + b"\x03a.b{}", None),
            Request(129, "a.b", b"{}"),
        )
        self.assertEqual(decode_message(bytes.fromhex("0000") + b"\x03a.b").id, 0)

    def test_fast_path_leaves_trailing_zero_to_the_full_decoder(self) -> None:
        """The fast decoder returns None for a trailing zero group (and for 0x10/0x20 flags)."""
        self.assertIsNone(decode_request_fast(bytes.fromhex("008100") + b"\x03a.b{}", None))
        self.assertIsNone(decode_request_fast(bytes.fromhex("1001") + b"\x03a.b{}", None))
        self.assertIsNone(decode_request_fast(bytes.fromhex("2001") + b"\x03a.b{}", None))

    def test_bad_marks_refused(self) -> None:
        """A mark of 1 or 6 bytes, or of id 0, is refused."""
        self.assertRaises(LocalProtocolError, mark_id_length, 1, 1)
        self.assertRaises(LocalProtocolError, mark_id_length, 1, 6)
        self.assertRaises(LocalProtocolError, mark_id_length, 0, 2)
        self.assertRaises(LocalProtocolError, encode_varint, 1 << 40)


class AnsweredUnderItsBytesTests(SynchronousTestCase):
    """Requests of the 2.2.7 browser client get their answers under the ids they sent."""

    def test_every_id_to_300_answered_with_its_bytes(self) -> None:
        """Ids 1..300 written most significant first are each answered with those bytes."""
        conn = connect()
        for msg_id in range(1, 301):
            route = b"connector.entryHandler.echo"
            message = b"\x00" + _msb_first(msg_id) + bytes((len(route),)) + route + b"{}"
            conn.feed(bytes((4,)) + len(message).to_bytes(3, "big") + message)
            answer = conn.written()
            self.assertEqual(answer[5 : 5 + len(_msb_first(msg_id))], _msb_first(msg_id), msg_id)
            self.assertEqual(answer[4], 0x04)
            self.assertTrue(answer.endswith(b"{}"))

    def test_unknown_route_code_answered_with_its_bytes(self) -> None:
        """A 404 for an unknown route code goes back under the id bytes sent (81 00)."""
        conn = connect()
        message = bytes.fromhex("018100ffff") + b"{}"
        conn.feed(bytes((4,)) + len(message).to_bytes(3, "big") + message)
        self.assertEqual(conn.written()[4:7], bytes.fromhex("048100"))
