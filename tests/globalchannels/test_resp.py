"""The sans-I/O RESP2 codec: whole, byte by byte, random splits, limits, no Twisted."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.globalchannels.resp import (
    Reply,
    RespError,
    RespParser,
    RespProtocolError,
    encode_command,
)
from tests.test_layering import twisted_imports

STREAM = (
    b"+OK\r\n"
    b"-ERR wrong number of arguments\r\n"
    b":42\r\n"
    b":-7\r\n"
    b"$5\r\nhello\r\n"
    b"$0\r\n\r\n"
    b"$-1\r\n"
    b"*-1\r\n"
    b"*0\r\n"
    b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n$4\r\nb\r\nc\r\n$-1\r\n"
)
REPLIES: list[Reply] = [
    "OK",
    RespError("ERR wrong number of arguments"),
    42,
    -7,
    b"hello",
    b"",
    None,
    None,
    [],
    [b"a", [1, b"b\r\nc"], None],
]


def encode_reply(reply: Reply) -> bytes:
    """The RESP2 bytes of ``reply`` (the server side, for round trips)."""
    if reply is None:
        return b"$-1\r\n"
    if isinstance(reply, RespError):
        return b"-" + reply.message.encode() + b"\r\n"
    if isinstance(reply, str):
        return b"+" + reply.encode() + b"\r\n"
    if isinstance(reply, int):
        return b":%d\r\n" % reply
    if isinstance(reply, bytes):
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    return b"*%d\r\n" % len(reply) + b"".join(encode_reply(item) for item in reply)


line_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20
)
replies = st.recursive(
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.binary(max_size=40)
    | line_text
    | line_text.map(RespError),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=20,
)


class ParserTests(SynchronousTestCase):
    """Replies come out once complete, however the bytes are split."""

    def test_whole_stream(self) -> None:
        """A stream fed at once yields every reply in order."""
        self.assertEqual(RespParser().feed(STREAM), REPLIES)

    def test_byte_by_byte(self) -> None:
        """Fed one byte at a time, the same replies come out, each when complete."""
        parser = RespParser()
        out: list[Reply] = []
        for i in range(len(STREAM)):
            out.extend(parser.feed(STREAM[i : i + 1]))
        self.assertEqual(out, REPLIES)
        self.assertEqual(len(parser), 0)

    def test_incomplete_bulk_waits(self) -> None:
        """A bulk string whose bytes have not all arrived yields nothing yet."""
        parser = RespParser()
        self.assertEqual(parser.feed(b"$5\r\nhel"), [])
        self.assertEqual(parser.feed(b"lo\r\n"), [b"hello"])

    @given(st.lists(replies, max_size=6), st.data())
    @settings(max_examples=200, deadline=None)
    def test_random_replies_random_splits(self, values: list[Reply], data: st.DataObject) -> None:
        """Any replies, cut anywhere, decode to themselves."""
        stream = b"".join(encode_reply(value) for value in values)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
        parser = RespParser()
        out: list[Reply] = []
        start = 0
        for cut in [*cuts, len(stream)]:
            out.extend(parser.feed(stream[start:cut]))
            start = cut
        self.assertEqual(out, values)

    def test_unknown_type_refused(self) -> None:
        """A reply that starts with an unknown byte is a protocol error; the parser stops."""
        parser = RespParser()
        self.assertRaises(RespProtocolError, parser.feed, b"?what\r\n")
        self.assertRaises(RespProtocolError, parser.feed, b"+OK\r\n")

    def test_bad_numbers_refused(self) -> None:
        """Lengths and integers that are not integers are protocol errors."""
        for data in (b":x\r\n", b"$abc\r\n", b"*-2\r\n", b"$-5\r\n", b":\r\n"):
            self.assertRaises(RespProtocolError, RespParser().feed, data)

    def test_bulk_without_crlf_refused(self) -> None:
        """A bulk string not followed by CRLF is a protocol error."""
        self.assertRaises(RespProtocolError, RespParser().feed, b"$2\r\nabXY")

    def test_limits(self) -> None:
        """Bulk length, line length and nesting limits are enforced and configurable."""
        self.assertRaises(RespProtocolError, RespParser(max_bulk=3).feed, b"$4\r\n")
        self.assertEqual(RespParser(max_bulk=4).feed(b"$4\r\nabcd\r\n"), [b"abcd"])
        self.assertRaises(RespProtocolError, RespParser(max_line=4).feed, b"+12345")
        self.assertRaises(RespProtocolError, RespParser(max_depth=2).feed, b"*1\r\n*1\r\n*1\r\n")
        self.assertEqual(RespParser(max_depth=2).feed(b"*1\r\n*1\r\n:1\r\n"), [[[1]]])


class EncoderTests(SynchronousTestCase):
    """Commands are arrays of bulk strings."""

    def test_encode(self) -> None:
        """str (UTF-8), bytes and numbers become bulk strings."""
        self.assertEqual(
            encode_command("SET", "clé", b"\x00", 5),
            b"*4\r\n$3\r\nSET\r\n$4\r\ncl\xc3\xa9\r\n$1\r\n\x00\r\n$1\r\n5\r\n",
        )

    def test_refused_arguments(self) -> None:
        """No command name, booleans and other objects are refused."""
        self.assertRaises(ValueError, encode_command)
        self.assertRaises(TypeError, encode_command, "SET", True)
        self.assertRaises(TypeError, encode_command, "SET", None)  # type: ignore[arg-type]


class LayeringTests(SynchronousTestCase):
    """The codec stays sans-I/O."""

    def test_no_twisted_imports(self) -> None:
        """resp.py, keys.py and settings.py import nothing from Twisted."""
        package = Path(__file__).resolve().parents[2] / "pomelo_twisted" / "globalchannels"
        for name in ("resp.py", "keys.py", "settings.py"):
            path = package / name
            self.assertEqual(twisted_imports(path.read_text(encoding="utf-8"), str(path)), [])
