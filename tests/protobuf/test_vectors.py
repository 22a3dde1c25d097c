"""tests/vectors/protobuf.json: what npm pomelo-protobuf 0.4.0 wrote, replayed on ours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protobuf import Protos
from pomelo_twisted.protobuf.schema import js_json

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "protobuf.json"


def _numbers_as_floats(value: Any) -> Any:
    # JSON from node prints 1e20 as an integer; compare numbers by value.
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


class VectorTests(SynchronousTestCase):
    """Every npm-generated vector: same bytes encoding, same message decoding."""

    def setUp(self) -> None:
        self.vectors = json.loads(VECTORS.read_text())
        protos = self.vectors["protos"]
        self.protos = Protos(protos["server"], protos["client"])

    def test_parsed_form_and_version(self) -> None:
        """Our parsed protos serialize exactly as npm's, so the version hash is pomelo's."""
        parsed = self.vectors["parsed"]
        self.assertEqual(js_json(self.protos.parsed_server), js_json(parsed["server"]))
        self.assertEqual(js_json(self.protos.parsed_client), js_json(parsed["client"]))
        self.assertEqual(self.protos.version, self.vectors["version"])

    def test_encode_matches_npm_bytes(self) -> None:
        """Each case's message encodes to the npm bytes."""
        self.assertGreaterEqual(len(self.vectors["cases"]), 40)
        for case in self.vectors["cases"]:
            with self.subTest(case=case["name"]):
                got = self.protos.server.encode(case["route"], case["msg"])
                self.assertEqual(got.hex(), case["hex"])

    def test_decode_matches_npm_message(self) -> None:
        """Each case's bytes decode to what npm decoded."""
        for case in self.vectors["cases"]:
            with self.subTest(case=case["name"]):
                got = self.protos.server.decode(case["route"], bytes.fromhex(case["hex"]))
                self.assertEqual(_numbers_as_floats(got), _numbers_as_floats(case["decoded"]))
