"""The codec: pomelo-protobuf's bytes, and clear errors on bodies that do not fit."""

from __future__ import annotations

import contextlib
import math
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protobuf import ProtobufError, Protos

PROTOS = Protos(
    {
        "message P": {"required sInt32 x": 1, "optional sInt32 y": 2},
        "s": {
            "optional uInt32 u": 1,
            "optional sInt32 s": 2,
            "optional int32 i": 3,
            "optional float f": 4,
            "optional double d": 5,
            "optional string t": 6,
        },
        "r": {
            "repeated uInt32 us": 1,
            "repeated sInt32 ss": 2,
            "repeated float fs": 3,
            "repeated double ds": 4,
            "repeated string ts": 5,
            "repeated P ps": 6,
        },
        "n": {"required P p": 1, "message Q": {"repeated P ps": 1}, "optional Q q": 2},
        "req": {"required string a": 1, "optional string b": 2},
        "idx": {"optional uInt32 b": 1, "optional uInt32 10": 2, "optional uInt32 2": 3},
    },
    {},
)
CODEC = PROTOS.server


def hexed(route: str, msg: object) -> str:
    return CODEC.encode(route, msg).hex(" ")


class EncodeBytesTests(SynchronousTestCase):
    """Literal bytes of each field type, as npm pomelo-protobuf 0.4.0 writes them."""

    def test_scalars(self) -> None:
        """Varint, zigzag (sInt32 and int32), little-endian floats, length-prefixed UTF-8."""
        self.assertEqual(hexed("s", {"u": 300}), "08 ac 02")
        self.assertEqual(hexed("s", {"s": -1}), "10 01")
        self.assertEqual(hexed("s", {"i": -2}), "18 03")
        self.assertEqual(hexed("s", {"f": 1.5}), "25 00 00 c0 3f")
        self.assertEqual(hexed("s", {"d": 1.5}), "29 00 00 00 00 00 00 f8 3f")
        self.assertEqual(hexed("s", {"t": "hé"}), "32 03 68 c3 a9")

    def test_object_order_not_tag_order(self) -> None:
        """Fields are written in the object's key order."""
        self.assertEqual(hexed("s", {"t": "", "u": 1}), "32 00 08 01")

    def test_index_names_first_as_javascript_orders_them(self) -> None:
        """Array-index field names come first, ascending, as in a JavaScript object."""
        self.assertEqual(hexed("idx", {"b": 1, "10": 2, "2": 3}), "18 03 10 02 08 01")

    def test_repeated(self) -> None:
        """Numbers packed with a count and the element's wire type; strings and messages not."""
        self.assertEqual(hexed("r", {"us": [1, 300]}), "08 02 01 ac 02")
        self.assertEqual(hexed("r", {"fs": [1.5]}), "1d 01 00 00 c0 3f")
        self.assertEqual(hexed("r", {"ts": ["a", "b"]}), "2a 01 61 2a 01 62")
        self.assertEqual(hexed("r", {"ps": [{"x": 1}, {"x": -1}]}), "32 02 08 02 32 02 08 01")
        self.assertEqual(hexed("r", {"us": [], "ts": []}), "")

    def test_nested(self) -> None:
        """A message is its length then its fields; nested types resolve in scope."""
        self.assertEqual(
            hexed("n", {"p": {"x": 2}, "q": {"ps": [{"x": 0}]}}), "0a 02 08 04 12 04 0a 02 08 00"
        )

    def test_absent_and_none_and_unknown(self) -> None:
        """None and unknown keys write nothing; an empty message is empty bytes."""
        self.assertEqual(hexed("s", {"u": None, "zzz": 1, "__tags": 3}), "")
        self.assertEqual(CODEC.encode("s", None), b"")

    def test_float_overflow_rounds_to_infinity(self) -> None:
        """A float beyond float32 is written as an infinity, as Float32Array stores it."""
        self.assertEqual(hexed("s", {"f": 1e40}), "25 00 00 80 7f")
        self.assertEqual(hexed("s", {"f": -1e40}), "25 00 00 80 ff")

    def test_integral_float_is_an_integer(self) -> None:
        """3.0 is encoded as 3 (JavaScript has one number type)."""
        self.assertEqual(hexed("s", {"u": 3.0}), "08 03")

    def test_lone_surrogate_becomes_replacement_character(self) -> None:
        """A lone surrogate is written as U+FFFD, as Node's Buffer writes it."""
        self.assertEqual(hexed("s", {"t": "\ud800"}), "32 03 ef bf bd")


class EncodeErrorTests(SynchronousTestCase):
    """Values that do not fit name the route, the field path and the reason."""

    def check(self, route: str, msg: object, pattern: str) -> None:
        with self.assertRaisesRegex(ProtobufError, pattern):
            CODEC.encode(route, msg)

    def test_errors(self) -> None:
        """Missing required, wrong types and ranges are refused."""
        self.check("req", {"b": "x"}, r"route 'req', field 'a': is required")
        self.check("req", {"a": None}, r"field 'a': is required")
        self.check("s", {"u": -1}, r"field 'u': -1 is out of uInt32's range")
        self.check("s", {"u": 2**64}, r"field 'u': .* out of uInt32's range")
        self.check("s", {"s": 2**63}, r"field 's': .* out of sInt32's range")
        self.check("s", {"u": 1.5}, r"field 'u': expects an integer, not 1.5")
        self.check("s", {"u": True}, r"field 'u': expects an integer")
        self.check("s", {"u": "3"}, r"field 'u': expects an integer")
        self.check("s", {"f": "x"}, r"field 'f': expects a number")
        self.check("s", {"d": 10**400}, r"field 'd': is too large for a double")
        self.check("s", {"t": 3}, r"field 't': expects a string, not 3")
        self.check("r", {"us": 3}, r"field 'us': is repeated: expects a list")
        self.check("n", {"p": {"x": 1}, "q": {"ps": [{"y": 1}]}}, r"field 'q\.ps\.x': is required")
        self.check("n", {"p": 3}, r"field 'p': expects an object")
        self.check("s", [], r"route 's': expects an object")

    def test_unknown_route(self) -> None:
        """A route without a proto is a KeyError."""
        self.assertRaises(KeyError, CODEC.encode, "nope", {})


class DecodeTests(SynchronousTestCase):
    """Decoding by declared types; malformed bodies are errors, never crashes."""

    def check(self, route: str, data: str, pattern: str) -> None:
        with self.assertRaisesRegex(ProtobufError, pattern):
            CODEC.decode(route, bytes.fromhex(data))

    def test_literal(self) -> None:
        """Each type decodes back; repeated fields append; a repeated tag keeps the last."""
        self.assertEqual(
            CODEC.decode("s", bytes.fromhex("08ac02 1001 1803 250000c03f 32 03 68c3a9 0801")),
            {"u": 1, "s": -1, "i": -2, "f": 1.5, "t": "hé"},
        )
        self.assertEqual(
            CODEC.decode("r", bytes.fromhex("08 01 05 2a 01 61 08 01 06 2a 00")),
            {"us": [5, 6], "ts": ["a", ""]},
        )

    def test_wire_type_is_not_checked(self) -> None:
        """As in pomelo-protobuf, the declared type decides, not the tag's wire type."""
        self.assertEqual(CODEC.decode("s", bytes.fromhex("0e 05")), {"u": 5})
        # The browser build tags integers with wire type 2 (its TYPES[type] || 2).
        self.assertEqual(CODEC.decode("s", bytes.fromhex("0a ac 02 12 03")), {"u": 300, "s": -2})

    def test_cesu8_pairs_are_joined(self) -> None:
        """An astral character sent as two 3-byte surrogates (the browser build) is one
        character; other invalid UTF-8 becomes U+FFFD."""
        self.assertEqual(
            CODEC.decode("s", bytes.fromhex("32 06 eda0bd edb880")), {"t": "\U0001f600"}
        )
        self.assertEqual(CODEC.decode("s", bytes.fromhex("32 02 61 ff")), {"t": "a\ufffd"})

    def test_errors(self) -> None:
        """Unknown tags, truncation, overruns, long varints and missing required fields."""
        self.check("s", "08 01 78 01", r"route 's': unknown tag 15 at byte 2")
        self.check("s", "08 80", r"field 'u': truncated: a varint")
        self.check("s", "32 05 61", r"field 't': truncated: a string of 5 bytes has 1")
        self.check("s", "25 00 00", r"field 'f': truncated: a float needs 4 bytes")
        self.check("s", "29 00", r"field 'd': truncated: a double needs 8 bytes")
        self.check("s", "08" + "ff" * 10 + "01", r"longer than 10 bytes")
        self.check("s", "08" + "ff" * 9 + "7f", r"exceeds 64 bits")
        self.check("r", "08 05 01", r"field 'us': truncated: 5 values in 1 bytes")
        self.check("n", "0a 05 08 02", r"field 'p': truncated: a message of 5 bytes has 2")
        self.check("n", "0a 01 08 02", r"field 'p\.x': truncated: a varint")
        self.check("n", "12 00", r"route 'n', field 'p': is required")
        self.check("n", "0a 00", r"field 'p\.x': is required")

    def test_every_truncation_and_garbage(self) -> None:
        """Each prefix and each trailing byte either decodes or is a ProtobufError."""
        whole = CODEC.encode(
            "n", {"p": {"x": -300, "y": 7}, "q": {"ps": [{"x": 1}, {"x": 2, "y": -2}]}}
        )
        for end in range(len(whole)):
            with contextlib.suppress(ProtobufError):
                CODEC.decode("n", whole[:end])
        for extra in range(256):
            try:
                CODEC.decode("n", whole + bytes([extra]))
            except ProtobufError:
                pass
            else:
                self.fail(f"trailing byte {extra:#x} was accepted")


def _finite(width: int) -> st.SearchStrategy[float]:
    return st.floats(allow_nan=False, allow_infinity=False, width=width)


SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "u": st.integers(0, 2**64 - 1),
    "s": st.integers(-(2**63), 2**63 - 1),
    "i": st.integers(-(2**31), 2**31 - 1),
    "f": _finite(32),
    "d": _finite(64),
    "t": st.text(),
}
POINT = st.fixed_dictionaries(
    {"x": st.integers(-(2**40), 2**40)}, optional={"y": st.integers(-5, 5)}
)


class RoundTripTests(SynchronousTestCase):
    """decode(encode(msg)) == msg for every field type (hypothesis)."""

    @settings(max_examples=200, deadline=None)
    @given(st.fixed_dictionaries({}, optional=SCALARS))
    def test_scalars(self, msg: dict[str, Any]) -> None:
        """Every scalar type round-trips (floats at their width)."""
        self.assertEqual(CODEC.decode("s", CODEC.encode("s", msg)), msg)

    @settings(max_examples=200, deadline=None)
    @given(
        st.fixed_dictionaries(
            {},
            optional={
                "us": st.lists(SCALARS["u"], min_size=1),
                "ss": st.lists(SCALARS["s"], min_size=1),
                "fs": st.lists(_finite(32), min_size=1),
                "ds": st.lists(_finite(64), min_size=1),
                "ts": st.lists(st.text(), min_size=1),
                "ps": st.lists(POINT, min_size=1),
            },
        )
    )
    def test_repeated(self, msg: dict[str, Any]) -> None:
        """Packed and unpacked repeated fields round-trip."""
        self.assertEqual(CODEC.decode("r", CODEC.encode("r", msg)), msg)

    @settings(max_examples=100, deadline=None)
    @given(POINT, st.lists(POINT))
    def test_nested(self, point: dict[str, Any], points: list[dict[str, Any]]) -> None:
        """Nested messages round-trip."""
        msg = {"p": point, "q": {"ps": points} if points else {}}
        self.assertEqual(CODEC.decode("n", CODEC.encode("n", msg)), msg)

    def test_special_floats(self) -> None:
        """NaN and infinities keep their IEEE bytes."""
        out = CODEC.decode("s", CODEC.encode("s", {"f": math.inf, "d": math.nan}))
        self.assertEqual(out["f"], math.inf)
        self.assertTrue(math.isnan(out["d"]))
        self.assertEqual(struct.pack("<d", math.nan), CODEC.encode("s", {"d": math.nan})[1:])

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=40))
    def test_arbitrary_bytes_never_crash(self, data: bytes) -> None:
        """Any bytes decode or raise ProtobufError, on every route."""
        for route in ("s", "r", "n", "req"):
            with contextlib.suppress(ProtobufError):
                CODEC.decode(route, data)


class DepthTests(SynchronousTestCase):
    """A recursive proto cannot make a body nest past ``max_depth``."""

    PROTOS = {"message T": {"optional T t": 1, "optional uInt32 n": 2}, "r": {"optional T t": 1}}

    def test_decode_limit(self) -> None:
        """max_depth messages decode; one more is an error naming the limit."""
        codec = Protos(self.PROTOS, {}, max_depth=4).server
        ok = {"t": {"t": {"t": {"n": 1}}}}
        self.assertEqual(codec.decode("r", codec.encode("r", ok)), ok)
        deep = Protos(self.PROTOS, {}).server.encode("r", {"t": {"t": {"t": {"t": {}}}}})
        with self.assertRaisesRegex(
            ProtobufError, r"field 't\.t\.t\.t': messages nest deeper than 4"
        ):
            codec.decode("r", deep)

    def test_encode_limit(self) -> None:
        """Encoding a value nested past the limit is an error, not a RecursionError."""
        codec = Protos(self.PROTOS, {}, max_depth=3).server
        with self.assertRaisesRegex(ProtobufError, "messages nest deeper than 3"):
            codec.encode("r", {"t": {"t": {"t": {}}}})
        value: dict[str, Any] = {}
        for _ in range(5000):
            value = {"t": value}
        with self.assertRaisesRegex(ProtobufError, "messages nest deeper than 64"):
            Protos(self.PROTOS, {}).server.encode("r", value)

    def test_hostile_body(self) -> None:
        """A 3,000-level body is refused at the default depth, without a crash."""
        body = b""
        for _ in range(3000):
            body = b"\x0a" + _varint(len(body)) + body
        with self.assertRaisesRegex(ProtobufError, "messages nest deeper than 64"):
            Protos(self.PROTOS, {}).server.decode("r", body)

    def test_bad_limit(self) -> None:
        """max_depth must be a positive integer."""
        for bad in (0, "3", True):
            with self.subTest(bad=bad), self.assertRaisesRegex(ValueError, "max_depth"):
                Protos(self.PROTOS, {}, max_depth=bad)  # type: ignore[arg-type]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
