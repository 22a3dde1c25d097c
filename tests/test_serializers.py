"""Tests of pomelo_twisted.serializers: pinned bytes, round trips, errors, lookup."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import PomeloError, SerializationError
from pomelo_twisted.interfaces import ISerializer
from pomelo_twisted.serializers import MAX_DEPTH, JsonSerializer, MsgpackSerializer, get_serializer

# Values both JSON and msgpack carry losslessly: 64-bit integers, finite floats,
# str-keyed maps and lists (tuples would come back as lists).
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)


class JsonSerializerTests(SynchronousTestCase):
    """JsonSerializer: orjson, compact UTF-8."""

    def setUp(self) -> None:
        self.serializer = JsonSerializer()

    def test_provides_interface(self) -> None:
        """JsonSerializer provides ISerializer and is named 'json'."""
        self.assertTrue(verifyObject(ISerializer, self.serializer))
        self.assertEqual(self.serializer.name, "json")

    def test_encode_compact_utf8(self) -> None:
        """Encoding is compact (no spaces) and writes non-ASCII as raw UTF-8."""
        self.assertEqual(
            self.serializer.encode({"code": 200, "uid": "é"}),
            b'{"code":200,"uid":"\xc3\xa9"}',
        )

    def test_encode_nested(self) -> None:
        """Nested lists, null, booleans and floats encode in key order given."""
        self.assertEqual(
            self.serializer.encode({"a": [1, 2.5, None, True, False], "b": {}}),
            b'{"a":[1,2.5,null,true,false],"b":{}}',
        )

    def test_encode_non_str_keys(self) -> None:
        """Non-str dict keys become strings as in the stdlib: {1: 2} -> {"1":2}."""
        self.assertEqual(self.serializer.encode({1: 2}), b'{"1":2}')

    def test_decode(self) -> None:
        """Decoding gives back dicts, lists and str from UTF-8 JSON bytes."""
        self.assertEqual(
            self.serializer.decode(b'{"rid":"r1","uid":"\xc3\xa9","n":[1,2]}'),
            {"rid": "r1", "uid": "é", "n": [1, 2]},
        )

    def test_decode_empty(self) -> None:
        """An empty body decodes to an empty dict."""
        self.assertEqual(self.serializer.decode(b""), {})

    def test_decode_invalid(self) -> None:
        """Invalid JSON raises SerializationError, a PomeloError."""
        for data in (b"{", b"not json", b'{"a":1}x', b"\xff\xfe", b"   "):
            exc = self.assertRaises(SerializationError, self.serializer.decode, data)
            self.assertIsInstance(exc, PomeloError)

    def test_encode_unsupported(self) -> None:
        """A value JSON cannot represent raises SerializationError."""
        self.assertRaises(SerializationError, self.serializer.encode, {"a": object()})
        self.assertRaises(SerializationError, self.serializer.encode, 2**64)

    @given(json_values)
    def test_round_trip(self, value: object) -> None:
        """Every JSON-compatible value survives encode then decode unchanged."""
        self.assertEqual(self.serializer.decode(self.serializer.encode(value)), value)


class MsgpackSerializerTests(SynchronousTestCase):
    """MsgpackSerializer: bin type for bytes, str keys not required."""

    def setUp(self) -> None:
        self.serializer = MsgpackSerializer()

    def test_provides_interface(self) -> None:
        """MsgpackSerializer provides ISerializer and is named 'msgpack'."""
        self.assertTrue(verifyObject(ISerializer, self.serializer))
        self.assertEqual(self.serializer.name, "msgpack")

    def test_encode_pinned(self) -> None:
        """A small map encodes to the exact msgpack bytes (fixmap, fixstr, uint8)."""
        self.assertEqual(
            self.serializer.encode({"code": 200, "uid": "é"}),
            b"\x82\xa4code\xcc\xc8\xa3uid\xa2\xc3\xa9",
        )

    def test_encode_bytes_as_bin(self) -> None:
        """bytes are packed with the bin type and decode back to bytes."""
        packed = self.serializer.encode(b"\x00\x01")
        self.assertEqual(packed, b"\xc4\x02\x00\x01")
        self.assertEqual(self.serializer.decode(packed), b"\x00\x01")

    def test_non_str_keys(self) -> None:
        """Maps with int keys round-trip (strict_map_key is off)."""
        self.assertEqual(self.serializer.decode(self.serializer.encode({1: "a"})), {1: "a"})

    def test_decode_empty(self) -> None:
        """An empty body decodes to an empty dict."""
        self.assertEqual(self.serializer.decode(b""), {})

    def test_decode_invalid(self) -> None:
        """Truncated, trailing-garbage or reserved-byte input raises SerializationError."""
        for data in (b"\x82\xa4code", b"\x80\x80", b"\xc1", b"\x81\x90\x01"):
            self.assertRaises(SerializationError, self.serializer.decode, data)

    def test_encode_unsupported(self) -> None:
        """A value msgpack cannot represent raises SerializationError."""
        self.assertRaises(SerializationError, self.serializer.encode, {"a": object()})
        self.assertRaises(SerializationError, self.serializer.encode, 2**64)

    @given(json_values)
    def test_round_trip(self, value: object) -> None:
        """Every JSON-compatible value survives encode then decode unchanged."""
        self.assertEqual(self.serializer.decode(self.serializer.encode(value)), value)


class GetSerializerTests(SynchronousTestCase):
    """get_serializer: lookup by handshake name."""

    def test_known_names(self) -> None:
        """'json' and 'msgpack' give the matching serializer classes."""
        self.assertIsInstance(get_serializer("json"), JsonSerializer)
        self.assertIsInstance(get_serializer("msgpack"), MsgpackSerializer)

    def test_name_matches(self) -> None:
        """The serializer returned for a name announces that same name."""
        for name in ("json", "msgpack"):
            self.assertEqual(get_serializer(name).name, name)

    def test_unknown_name(self) -> None:
        """An unknown name raises ValueError naming it and the known serializers."""
        exc = self.assertRaises(ValueError, get_serializer, "protobuf")
        self.assertEqual(
            str(exc), "unknown serializer 'protobuf'; known serializers: 'json', 'msgpack'"
        )


def nested(depth: int) -> object:
    """A value of ``depth`` nested lists and maps, alternating, innermost ``[]``."""
    value: object = []
    for level in range(depth - 1):
        value = {"a": value} if level % 2 else [value]
    return value


class DepthTests(SynchronousTestCase):
    """Nesting is capped at decode: deeper bodies are SerializationErrors."""

    def test_json_at_the_cap_decodes_deeper_refused(self) -> None:
        """64 levels decode, 65 are refused; a 100,000-deep body too (orjson's own cap)."""
        serializer = JsonSerializer()
        self.assertEqual(serializer.max_depth, MAX_DEPTH)
        self.assertEqual(MAX_DEPTH, 64)
        ok = serializer.encode(nested(64))
        self.assertEqual(serializer.decode(ok), nested(64))
        self.assertRaises(SerializationError, serializer.decode, serializer.encode(nested(65)))
        self.assertRaises(SerializationError, serializer.decode, b"[" * 100_000 + b"]" * 100_000)

    def test_json_brackets_in_strings_and_wide_bodies(self) -> None:
        """Brackets inside strings and many shallow containers are not depth."""
        serializer = JsonSerializer(max_depth=3)
        self.assertEqual(serializer.decode(b'{"a":"[[[[[[[["}'), {"a": "[[[[[[[["})
        wide = [[{"x": 1}] for _ in range(50)]
        self.assertEqual(serializer.decode(serializer.encode(wide)), wide)
        self.assertRaises(SerializationError, serializer.decode, b'[[[{"a":1}]]]')

    def test_everything_decoded_encodes(self) -> None:
        """A body at the cap echoes: orjson encodes it (its limit is 254)."""
        serializer = JsonSerializer()
        value = serializer.decode(serializer.encode(nested(MAX_DEPTH)))
        self.assertEqual(serializer.decode(serializer.encode(value)), value)

    def test_msgpack(self) -> None:
        """msgpack bodies are capped the same way."""
        serializer = MsgpackSerializer(max_depth=10)
        self.assertEqual(serializer.decode(serializer.encode(nested(10))), nested(10))
        self.assertRaises(SerializationError, serializer.decode, serializer.encode(nested(11)))
        self.assertRaises(SerializationError, serializer.decode, b"\x91" * 5000 + b"\x90")

    def test_bad_cap(self) -> None:
        """A cap below 1 is refused."""
        self.assertRaises(ValueError, JsonSerializer, 0)
        self.assertRaises(ValueError, MsgpackSerializer, 0)
