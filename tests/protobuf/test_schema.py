"""Parsing and compiling protos: the npm parser's output, pomelo's version, strict errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError
from pomelo_twisted.protobuf import (
    Protos,
    ProtosError,
    compile_protos,
    load_protos,
    parse_protos,
    protos_version,
)
from pomelo_twisted.protobuf.schema import MESSAGE, SINT, encode_varint, js_key_order


class ParseTests(SynchronousTestCase):
    """``parse_protos`` builds pomelo-protobuf's parsed form or names what is wrong."""

    def test_parsed_form(self) -> None:
        """Fields keep option, type and tag; nested messages and tags are indexed."""
        parsed = parse_protos(
            {
                "r": {
                    "required string a": 2,
                    "message M": {"optional uInt32 x": 1},
                    "repeated M m": 1,
                }
            }
        )
        self.assertEqual(
            parsed,
            {
                "r": {
                    "a": {"option": "required", "type": "string", "tag": 2},
                    "m": {"option": "repeated", "type": "M", "tag": 1},
                    "__messages": {
                        "M": {
                            "x": {"option": "optional", "type": "uInt32", "tag": 1},
                            "__messages": {},
                            "__tags": {"1": "x"},
                        }
                    },
                    "__tags": {"1": "m", "2": "a"},
                }
            },
        )

    def test_malformed_keys_are_named(self) -> None:
        """A key pomelo-protobuf would silently skip is an error naming route and key."""
        cases = {
            "required  string a": "expected",
            "required string": "expected",
            "enum string a": "expected",
            "message A B": "expected .message Name.",
        }
        for key, reason in cases.items():
            with (
                self.subTest(key=key),
                self.assertRaisesRegex(ProtosError, f"r: {key!r}: {reason}"),
            ):
                parse_protos({"r": {key: 1}})

    def test_bad_tags(self) -> None:
        """Duplicate tags and tags that are not integers in 1..2**29-1 are refused."""
        with self.assertRaisesRegex(ProtosError, r"r\.b: tag 1 is already 'a''s"):
            parse_protos({"r": {"optional string a": 1, "optional string b": 1}})
        for tag in (0, -1, 1.0, "1", True, 1 << 29):
            with self.subTest(tag=tag), self.assertRaisesRegex(ProtosError, r"r\.a: tag"):
                parse_protos({"r": {"optional string a": tag}})

    def test_types_npm_cannot_encode_are_refused(self) -> None:
        """uInt64, sInt64 and bool (written as a bare tag by 0.4.0) are refused."""
        for name in ("uInt64", "sInt64", "bool"):
            with (
                self.subTest(type=name),
                self.assertRaisesRegex(ProtosError, f"r.a: type '{name}' is not supported"),
            ):
                parse_protos({"r": {f"optional {name} a": 1}})

    def test_not_an_object(self) -> None:
        """A protos file or message that is not an object is refused."""
        with self.assertRaisesRegex(ProtosError, "JSON object of routes"):
            parse_protos([])
        with self.assertRaisesRegex(ProtosError, "r: a message must be a JSON object"):
            parse_protos({"r": 3})


class CompileTests(SynchronousTestCase):
    """``compile_protos`` resolves message types as pomelo-protobuf does."""

    def test_nested_then_top_level(self) -> None:
        """A type resolves in the field's own message, else as a top-level message."""
        compiled = compile_protos(
            parse_protos(
                {
                    "message P": {"required sInt32 x": 1},
                    "r": {"optional P p": 1, "message Q": {"optional P p": 1}, "optional Q q": 2},
                }
            )
        )
        field = compiled["r"].by_name["q"]
        self.assertEqual(field.kind, MESSAGE)
        assert field.message is not None
        inner = field.message.by_name["p"].message
        assert inner is not None
        self.assertEqual(inner.by_name["x"].kind, SINT)
        self.assertIs(inner, compiled["message P"])

    def test_a_parent_scope_is_not_searched(self) -> None:
        """A nested message cannot use a sibling nested type (npm would not find it)."""
        protos = {"r": {"message A": {"optional B b": 1}, "message B": {}, "optional A a": 1}}
        with self.assertRaisesRegex(ProtosError, r"message A\.b: unknown type 'B'"):
            compile_protos(parse_protos(protos))

    def test_recursive_types(self) -> None:
        """A message may contain itself (through the top-level name)."""
        compiled = compile_protos(parse_protos({"message T": {"repeated T kids": 1}}))
        schema = compiled["message T"]
        self.assertIs(schema.by_name["kids"].message, schema)

    def test_packed_heads(self) -> None:
        """A repeated number is packed with its own wire type in the tag; strings are not."""
        compiled = compile_protos(
            parse_protos(
                {"r": {"repeated float f": 1, "repeated string s": 2, "optional double d": 3}}
            )
        )
        fields = compiled["r"].by_name
        self.assertEqual((fields["f"].packed, fields["f"].head), (True, b"\x0d"))
        self.assertEqual((fields["s"].packed, fields["s"].head), (False, b"\x12"))
        self.assertEqual(fields["d"].head, b"\x19")


class HelpersTests(SynchronousTestCase):
    """Varints, JavaScript key order and the version hash."""

    def test_varint(self) -> None:
        """Base-128, least significant group first."""
        self.assertEqual(encode_varint(0), b"\x00")
        self.assertEqual(encode_varint(300), b"\xac\x02")
        self.assertEqual(encode_varint(2**64 - 1), b"\xff" * 9 + b"\x01")

    def test_js_key_order(self) -> None:
        """Array-index keys first, ascending; the rest in insertion order."""
        self.assertEqual(js_key_order(["b", "10", "a", "2", "01"]), ["2", "10", "b", "a", "01"])
        self.assertEqual(js_key_order(["b", "a"]), ["b", "a"])

    def test_version_is_pomelo_hash(self) -> None:
        """base64(md5(JSON(client) + JSON(server))), stable for equal protos."""
        # node -e "crypto.createHash('md5').update('{}{}').digest('base64')"
        self.assertEqual(protos_version({}, {}), "xT9OvpsqULwrUv2IpdUD4Q==")
        first = Protos({"r": {"optional string a": 1}}, {})
        second = Protos({"r": {"optional string a": 1}}, {})
        self.assertEqual(first.version, second.version)
        self.assertNotEqual(first.version, Protos({}, {"r": {"optional string a": 1}}).version)


class LoadTests(SynchronousTestCase):
    """``load_protos`` reads a game's two files."""

    def _game(self, **files: str) -> Path:
        # Not self.mktemp(): under pytest it would create folders in the repository.
        base = Path(tempfile.mkdtemp(prefix="pomelo-protos-"))
        self.addCleanup(shutil.rmtree, base, True)
        (base / "config").mkdir()
        for name, text in files.items():
            (base / "config" / f"{name}.json").write_text(text)
        return base

    def test_absent_means_none(self) -> None:
        """A game without either file has no protos."""
        self.assertIsNone(load_protos(self._game()))

    def test_one_file_counts_the_other_as_empty(self) -> None:
        """With serverProtos only, the client codec has no routes."""
        protos = load_protos(self._game(serverProtos='{"onX": {"optional string a": 1}}'))
        assert protos is not None
        self.assertEqual(protos.server.routes, {"onX"})
        self.assertEqual(protos.client.routes, frozenset())
        self.assertEqual(protos.version, protos_version({}, protos.parsed_server))

    def test_errors_name_the_file(self) -> None:
        """Invalid JSON or a bad key is a ConfigError naming the file or key."""
        with self.assertRaisesRegex(ConfigError, "clientProtos.json"):
            load_protos(self._game(clientProtos="{"))
        with self.assertRaisesRegex(ConfigError, r"serverProtos: onX\.a: unknown type 'Nope'"):
            load_protos(self._game(serverProtos='{"onX": {"optional Nope a": 1}}'))

    def test_example_game(self) -> None:
        """The example game declares chat.chatHandler.send (client) and onChat (server)."""
        base = Path(__file__).resolve().parents[2] / "example_game"
        protos = load_protos(base)
        assert protos is not None
        self.assertEqual(protos.client.routes, {"chat.chatHandler.send"})
        self.assertEqual(protos.server.routes, {"onChat"})
        body = protos.server.encode("onChat", {"rid": "r", "from": "u", "content": "hi"})
        self.assertEqual(body, b"\x0a\x01r\x12\x01u\x1a\x02hi")


class SansIOTests(SynchronousTestCase):
    """The codec modules never load Twisted."""

    def test_no_twisted(self) -> None:
        """Importing the package, schema, codec and protos in a fresh interpreter loads
        no twisted module (the negotiator module is the only one that may)."""
        code = (
            "import sys, pomelo_twisted.protobuf.codec, pomelo_twisted.protobuf.schema, "
            "pomelo_twisted.protobuf.protos; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'twisted'))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, check=True, text=True
        ).stdout
        self.assertEqual(out.strip(), "[]")
