"""Every vector of tests/vectors through our codec, byte for byte, both directions."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.conformance import load_vectors
from pomelo_twisted.conformance.patterns import kind_names
from pomelo_twisted.conformance.transcript import MESSAGE_TYPES, PACKAGE_TYPES
from pomelo_twisted.protocol import (
    BadPackageType,
    HandshakeResponse,
    MessageDecodeError,
    Package,
    PackageDecoder,
    PackageTooLarge,
    RouteDictionary,
    decode_message,
    encode_message,
    encode_package,
)
from pomelo_twisted.protocol.handshake import (
    encode_handshake_response,
    parse_client_handshake,
    parse_handshake_response,
)
from pomelo_twisted.protocol.message import encode_varint
from pomelo_twisted.protocol.packet import MAX_BODY_LENGTH

VECTORS = load_vectors()
_ID_VALUE_MASK = (1 << 32) - 1
PACKAGE_ERRORS = {"bad-type": BadPackageType, "too-large": PackageTooLarge}


def _body(vector: dict[str, Any]) -> bytes:
    if "body_text" in vector:
        return str(vector["body_text"]).encode("utf-8")
    return bytes.fromhex(vector["body_hex"])


def _packages(vector: dict[str, Any]) -> list[Package]:
    parts = vector.get("packages", [vector])
    return [Package(PACKAGE_TYPES[part["type"]], _body(part)) for part in parts]


class PackageVectorTests(SynchronousTestCase):
    """packages.json."""

    def test_encode(self) -> None:
        """Every valid package encodes to exactly its bytes."""
        for vector in VECTORS.vectors("packages"):
            if "error" not in vector:
                encoded = b"".join(encode_package(p.type, p.body) for p in _packages(vector))
                self.assertEqual(encoded.hex(), vector["hex"], vector["name"])

    def test_decode_whole_and_split(self) -> None:
        """Every valid package decodes the same whole, byte by byte, and cut at any point."""
        for vector in VECTORS.vectors("packages"):
            if "error" in vector:
                continue
            data, expected = bytes.fromhex(vector["hex"]), _packages(vector)
            self.assertEqual(PackageDecoder(MAX_BODY_LENGTH).feed(data), expected, vector["name"])
            decoder = PackageDecoder(MAX_BODY_LENGTH)
            one_by_one = [p for i in range(len(data)) for p in decoder.feed(data[i : i + 1])]
            self.assertEqual(one_by_one, expected, vector["name"])
            for cut in range(len(data) + 1):
                decoder = PackageDecoder(MAX_BODY_LENGTH)
                got = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
                self.assertEqual(got, expected, f"{vector['name']} cut at {cut}")
                self.assertEqual(decoder.buffered, 0)

    def test_invalid(self) -> None:
        """Every invalid header raises its error as soon as its four bytes arrive."""
        for vector in VECTORS.vectors("packages"):
            if "error" not in vector:
                continue
            data = bytes.fromhex(vector["hex"])
            decoder = PackageDecoder(vector.get("max_body_size", MAX_BODY_LENGTH))
            with self.assertRaises(PACKAGE_ERRORS[vector["error"]], msg=vector["name"]):
                decoder.feed(data[:4])


class MessageVectorTests(SynchronousTestCase):
    """messages.json."""

    def test_decode(self) -> None:
        """Every valid message decodes to its type, id, route, route code, flags and body."""
        for vector in VECTORS.vectors("messages"):
            if "error" in vector:
                continue
            spec, data = vector["message"], bytes.fromhex(vector["hex"])
            message = decode_message(data)
            name = vector["name"]
            self.assertEqual(message.type, MESSAGE_TYPES[spec["type"]], name)
            # An id sent with trailing zero groups keeps its byte count (its answer echoes
            # those bytes): the value is the low bits.
            self.assertEqual(message.id & _ID_VALUE_MASK, spec.get("id", 0), name)
            self.assertEqual(message.route, spec.get("route", ""), name)
            self.assertEqual(message.route_code, spec.get("route_code", 0), name)
            self.assertEqual(message.gzip, spec.get("gzip", False), name)
            self.assertEqual(message.body, _body(spec), name)
            self.assertEqual(bool(data[0] & 0x20), spec.get("error", False), name)
            if "id_hex" in spec:
                self.assertEqual(data[1 : 1 + len(spec["id_hex"]) // 2].hex(), spec["id_hex"])
                self.assertEqual(encode_varint(message.id).hex(), spec["id_hex"], name)
            if "inflated_text" in spec:
                self.assertEqual(zlib.decompress(message.body).decode(), spec["inflated_text"])

    def test_encode(self) -> None:
        """Every message our encoder can write (not a client's own id bytes, not pitaya's
        error flag) encodes to exactly its bytes."""
        encoded = 0
        for vector in VECTORS.vectors("messages"):
            spec = vector.get("message", {})
            if "error" in vector or "id_hex" in spec or spec.get("error"):
                continue
            data = encode_message(
                MESSAGE_TYPES[spec["type"]],
                spec.get("id", 0),
                spec.get("route", ""),
                _body(spec),
                route_code=spec.get("route_code", 0),
                gzip=spec.get("gzip", False),
            )
            self.assertEqual(data.hex(), vector["hex"], vector["name"])
            encoded += 1
        self.assertGreater(encoded, 25)

    def test_invalid(self) -> None:
        """Every invalid message is refused with MessageDecodeError."""
        invalid = [v for v in VECTORS.vectors("messages") if "error" in v]
        self.assertEqual(len(invalid), 8)
        for vector in invalid:
            with self.assertRaises(MessageDecodeError, msg=vector["name"]):
                decode_message(bytes.fromhex(vector["hex"]))


class HandshakeVectorTests(SynchronousTestCase):
    """handshakes.json."""

    document = VECTORS.documents["handshakes"]

    def test_client_handshakes_parse(self) -> None:
        """Every client handshake parses, keeping sys, user and dictVersion."""
        for vector in self.document["client"]:
            parsed = parse_client_handshake(vector["text"].encode("utf-8"))
            self.assertEqual(parsed.sys, json.loads(vector["text"])["sys"], vector["name"])
            self.assertEqual(parsed.user, vector["parsed"]["user"], vector["name"])
            self.assertEqual(parsed.dict_version, vector["parsed"]["dict_version"], vector["name"])

    def test_invalid_client_handshakes(self) -> None:
        """Every invalid client handshake is refused (the server answers it 500)."""
        for vector in self.document["invalid_client"]:
            self.assertEqual(vector["reply"], {"code": 500})
            with self.assertRaises(MessageDecodeError, msg=vector["name"]):
                parse_client_handshake(vector["text"].encode("utf-8"))

    def test_server_replies_parse(self) -> None:
        """Every server reply parses to its code, heartbeat, dictionary and serializer."""
        for vector in self.document["server"]:
            parsed = parse_handshake_response(vector["text"].encode("utf-8"))
            want, name = vector["parsed"], vector["name"]
            self.assertEqual(parsed.code, want["code"], name)
            self.assertEqual(parsed.heartbeat, want["heartbeat"], name)
            self.assertEqual(parsed.use_dict, want["use_dict"], name)
            self.assertEqual(parsed.dict_version, want["dict_version"], name)
            routes = parsed.dictionary.route_to_code() if parsed.dictionary else None
            self.assertEqual(routes, want["dict"], name)
            self.assertEqual(parsed.serializer, want.get("serializer"), name)

    def test_our_replies_encode(self) -> None:
        """Every reply we send encodes to exactly its bytes (the dictionary version as pinus
        computes it)."""
        encoded = 0
        for vector in self.document["server"]:
            spec = vector.get("encode")
            if spec is None:
                continue
            dictionary = RouteDictionary(spec["dict"]) if "dict" in spec else None
            response = HandshakeResponse(
                code=spec.get("code", 200),
                heartbeat=spec.get("heartbeat"),
                dictionary=dictionary,
                use_dict=spec.get("use_dict", False),
                serializer=spec.get("serializer"),
                message=spec.get("message"),
            )
            self.assertEqual(
                encode_handshake_response(response).decode("utf-8"), vector["text"], vector["name"]
            )
            encoded += 1
        self.assertEqual(encoded, 3)

    def test_reference_dictionary_version(self) -> None:
        """The measured pinus reply's dictVersion is the one we compute for its dict."""
        measured = next(v for v in self.document["server"] if v["name"] == "pinus-measured")
        sys = json.loads(measured["text"])["sys"]
        self.assertEqual(RouteDictionary(sys["dict"]).version, sys["dictVersion"])


class KitTests(SynchronousTestCase):
    """The kit's files and their README."""

    def test_names_unique_and_origins_known(self) -> None:
        """Vector names are unique per file; every vector says reference or ours."""
        for kind in ("packages", "messages"):
            names = [v["name"] for v in VECTORS.vectors(kind)]
            self.assertEqual(len(names), len(set(names)), kind)
        self.assertEqual({s.origin for s in VECTORS.sessions}, {"reference", "ours"})

    def test_readme_describes_every_file(self) -> None:
        """tests/vectors/README.md names every vector file, step and placeholder kind."""
        readme = (Path(VECTORS.folder) / "README.md").read_text(encoding="utf-8")
        for name in sorted(p.name for p in Path(VECTORS.folder).glob("*.json")):
            self.assertIn(f"`{name}`", readme)
        for word in ('{"send"', '{"expect"', '{"reconnect"', '{"use"', "`requires`"):
            self.assertIn(word, readme)
        for kind in kind_names():
            self.assertIn(f"`${kind}`", readme)


class ProtocolDocTests(SynchronousTestCase):
    """docs/protocol.md."""

    def test_every_check_is_listed(self) -> None:
        """The doc's table of checks lists every session of sessions.json with its origin."""
        doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")
        for session in VECTORS.sessions:
            self.assertIn(f"| `{session.name}` | {session.origin} |", doc)
