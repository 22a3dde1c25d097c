"""npm ``pomelo-protobuf`` 0.4.0 and ``pinus-protocol`` against our codec and connector.

- :class:`NpmCodecTests`: node encodes and decodes messages of every field type (packed and
  unpacked repeated fields, nested messages, optional fields absent) and our codec must
  agree byte for byte both ways;
- :class:`NodeClientTests`: a node client built from ``pinus-protocol`` + ``pomelo-protobuf``
  takes the protos from our handshake and completes entry / join / send / ``onChat`` with
  protobuf bodies on a copy of the example game, over TCP and WebSocket.

Run with ``make test-interop`` (``POMELO_INTEROP=1``); skipped otherwise, or when node or
npm is missing. ``npm ci`` installs ``tests/interop/protobuf/node_modules`` on first run.
"""

from __future__ import annotations

import json
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from pomelo_twisted.protobuf import Protos, load_protos
from pomelo_twisted.protobuf.schema import js_json

from ..e2e.cluster import ClusterCase
from .pinus import interop_enabled

pytestmark = pytest.mark.interop

NODE_DIR = Path(__file__).resolve().parent / "protobuf"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "protobuf.json"


def node_ready() -> None:
    """Skip unless interop tests are on and node/npm exist; ``npm ci`` when needed."""
    if not interop_enabled():
        raise SkipTest("interop tests run with POMELO_INTEROP=1 (make test-interop)")
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise SkipTest(f"{tool} is not installed")
    if not (NODE_DIR / "node_modules" / "pomelo-protobuf").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )


def run_codec(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers of ``codec.js`` (npm pomelo-protobuf) to ``requests``, one per request."""
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run(
        ["node", "codec.js"],
        cwd=NODE_DIR,
        input=lines.encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    answers = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(answers) == len(requests), done.stderr.decode()
    return answers


def _as_floats(value: Any) -> Any:
    # Numbers compared by value; empty lists are not written, so not decoded either.
    if isinstance(value, dict):
        return {k: _as_floats(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [_as_floats(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


class Messages:
    """Random messages of the vector protos' routes (JavaScript-safe numbers; values
    with long JSON texts, since npm's encoder sizes its buffer from the JSON length)."""

    TEXT = "abcxyz09 é€ß中文😀"

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def uint(self) -> int:
        rnd = self.rnd
        return rnd.choice([0, 1, 127, 128, 300, rnd.randrange(2**32), rnd.randrange(2**53)])

    def sint(self) -> int:
        rnd = self.rnd
        return rnd.choice([0, -1, 1, -64, 64, rnd.randrange(-(2**31), 2**31)])

    def float32(self) -> float:
        value = self.rnd.uniform(-1e6, 1e6)
        rounded: float = struct.unpack("<f", struct.pack("<f", value))[0]
        return rounded

    def double(self) -> float:
        return self.rnd.choice([self.rnd.uniform(-1e6, 1e6), self.rnd.uniform(-1e300, 1e300)])

    def text(self) -> str:
        return "".join(self.rnd.choice(self.TEXT) for _ in range(self.rnd.randrange(12)))

    def some(self, fields: dict[str, Any]) -> dict[str, Any]:
        keys = [k for k in fields if self.rnd.random() < 0.7]
        self.rnd.shuffle(keys)  # npm writes fields in the object's key order
        return {k: fields[k]() for k in keys}

    def many(self, make: Any, least: int = 0) -> list[Any]:
        return [make() for _ in range(self.rnd.randrange(least, 5))]

    def scalars(self) -> dict[str, Any]:
        msg = self.some(
            {
                "s": self.sint,
                "i": self.sint,
                "f": self.float32,
                "d": self.double,
                "text": self.text,
            }
        )
        return {"u": self.uint(), **msg}

    def point(self) -> dict[str, Any]:
        return {"x": self.sint(), "y": self.sint()}

    def repeated(self) -> dict[str, Any]:
        return self.some(
            {
                "us": lambda: self.many(self.uint, 1),
                "ss": lambda: self.many(self.sint, 1),
                "is": lambda: self.many(self.sint, 1),
                "fs": lambda: self.many(self.float32, 1),
                "ds": lambda: self.many(self.double, 1),
                "texts": lambda: self.many(self.text),
                "points": lambda: self.many(self.point),
            }
        )

    def leaf(self) -> dict[str, Any]:
        return {"id": self.uint(), **self.some({"tag": self.text})}

    def inner(self) -> dict[str, Any]:
        return self.some({"name": self.text, "leaves": lambda: self.many(self.leaf)})

    def nested(self) -> dict[str, Any]:
        more = self.some({"at": self.point, "more": lambda: self.many(self.inner)})
        return {"inner": self.inner(), **more}


class NpmCodecTests(SynchronousTestCase):
    """Our codec and npm pomelo-protobuf 0.4.0 agree byte for byte, both ways."""

    def setUp(self) -> None:
        node_ready()
        self.raw = json.loads(VECTORS.read_text())["protos"]["server"]
        self.protos = Protos(self.raw, {})

    def test_parse_and_version(self) -> None:
        """npm parses our example game's and the vectors' protos as we do."""
        example = load_protos(Path(__file__).resolve().parents[2] / "example_game")
        assert example is not None
        for name, raw, ours in [
            ("vectors", self.raw, self.protos.parsed_server),
            ("example client", _example_raw("clientProtos"), example.parsed_client),
            ("example server", _example_raw("serverProtos"), example.parsed_server),
        ]:
            with self.subTest(protos=name):
                (answer,) = run_codec([{"op": "init", "protos": raw}])
                self.assertEqual(js_json(answer["parsed"]), js_json(ours))

    def both_ways(self, messages: Messages, build: str = "node") -> None:
        """Each side decodes the other's bytes to the message; the Node build's bytes
        are ours exactly (the browser build writes other wire types in its tags)."""
        makers = {
            "area.scalars": messages.scalars,
            "area.repeated": messages.repeated,
            "area.nested": messages.nested,
        }
        cases = [(route, make()) for _ in range(200) for route, make in makers.items()]
        requests: list[dict[str, Any]] = [{"op": "init", "protos": self.raw}]
        for route, msg in cases:
            ours = self.protos.server.encode(route, msg).hex()
            requests.append({"op": "encode", "route": route, "msg": msg, "build": build})
            requests.append({"op": "decode", "route": route, "hex": ours, "build": build})
        answers = run_codec(requests)[1:]
        for index, (route, msg) in enumerate(cases):
            theirs_hex, decoded = answers[2 * index], answers[2 * index + 1]
            ours = self.protos.server.encode(route, msg)
            with self.subTest(route=route, msg=msg):
                if build == "node":
                    self.assertEqual(ours.hex(), theirs_hex["hex"] or "")
                self.assertEqual(_as_floats(decoded["msg"]), _as_floats(msg))
                theirs = bytes.fromhex(theirs_hex["hex"] or "")
                self.assertEqual(
                    _as_floats(self.protos.server.decode(route, theirs)), _as_floats(msg)
                )

    def test_random_messages_both_ways(self) -> None:
        """600 random messages: same bytes from both encoders; each decodes the other's."""
        self.both_ways(Messages(seed=15))

    def test_browser_build_both_ways(self) -> None:
        """The browser build (what pomelo's web client bundles) and we decode each
        other's messages, on characters of the Basic Multilingual Plane."""
        messages = Messages(seed=16)
        messages.TEXT = "abcxyz09 é€ß中文"
        self.both_ways(messages, build="browser")

    def test_browser_build_integer_tags(self) -> None:
        """The browser build tags integer fields with wire type 2 (``TYPES[type] || 2``);
        we read them by their declared type, as pomelo does."""
        msg = {"u": 300, "s": -2}
        _, encoded = run_codec(
            [
                {"op": "init", "protos": self.raw},
                {"op": "encode", "route": "area.scalars", "msg": msg, "build": "browser"},
            ]
        )
        self.assertEqual(encoded["hex"], "0aac021203")
        self.assertEqual(
            self.protos.server.decode("area.scalars", bytes.fromhex("0aac021203")), msg
        )

    def test_browser_build_astral_characters(self) -> None:
        """The browser build writes an emoji as two 3-byte surrogates; we read it as one
        character (it cannot read the 4-byte UTF-8 Node and we write)."""
        msg = {"u": 1, "text": "a\U0001f600b"}
        _, encoded = run_codec(
            [
                {"op": "init", "protos": self.raw},
                {"op": "encode", "route": "area.scalars", "msg": msg, "build": "browser"},
            ]
        )
        data = bytes.fromhex(encoded["hex"])
        self.assertIn(bytes.fromhex("eda0bdedb880"), data)
        self.assertEqual(self.protos.server.decode("area.scalars", data), msg)


def _example_raw(name: str) -> Any:
    path = Path(__file__).resolve().parents[2] / "example_game" / "config" / f"{name}.json"
    return json.loads(path.read_text())


class NodeClientTests(ClusterCase):
    """A pinus-protocol + pomelo-protobuf node client plays a chat session with us."""

    def setUp(self) -> None:
        node_ready()

    @inlineCallbacks
    def test_chat_session_over_tcp_and_websocket(self) -> Any:
        """Protos from our handshake; entry, join, a protobuf send, a protobuf onChat push."""
        cluster = yield self.started()
        port = cluster.client_port("connector-server-1")
        protos = load_protos(cluster.game)
        assert protos is not None
        for kind in ("tcp", "ws"):
            uid, rid = f"node-{kind}", f"proto-room-{kind}"
            out, err, code = yield getProcessOutputAndValue(
                "node",
                ["client.js", kind, "127.0.0.1", str(port), uid, rid],
                path=str(NODE_DIR),
                reactor=reactor,
            )
            text = out.decode("utf-8", "replace")
            self.assertEqual(code, 0, f"{kind}: {text}\n{err.decode('utf-8', 'replace')}")
            seen = json.loads(text)
            self.assertEqual(
                seen["handshake"], {"code": 200, "useProto": True, "version": protos.version}
            )
            self.assertEqual(seen["entry"], {"code": 200, "uid": uid})
            self.assertEqual(seen["join"]["code"], 200)
            self.assertEqual(seen["send"], {"code": 200})
            expected = {"rid": rid, "from": uid, "content": f"héllo {kind}"}
            self.assertEqual(seen["push"], expected)
            self.assertEqual(seen["pushHex"], protos.server.encode("onChat", expected).hex())
            sent = protos.client.encode(
                "chat.chatHandler.send", {"rid": rid, "content": f"héllo {kind}"}
            )
            self.assertEqual(seen["sendBodyHex"], sent.hex())
        self.assertEqual(cluster.tracebacks(), {})
