"""The seed corpora: PROTOCOL.md's test vectors (``tests/protocol/test_vectors.py``), framed
for each target, plus a few frames and batches built with the project's own encoders.

``python -m fuzz.seeds DIR`` writes ``DIR/<target>/seed-NNN`` files; nothing binary is
committed. A target's first bytes choose its limit and chunking (see each target), so
each stream is seeded under several of those choices.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pomelo_twisted.protocol.wsframe import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONT,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    encode_frame,
)
from pomelo_twisted.rpc.payload import ERROR, HANDLER_ERROR, OK, pack_array, pack_plain
from tests.protocol import test_vectors as v

from . import TARGETS

__all__ = ["DICTIONARIES", "seeds", "write"]

PACKAGES = (v.V1, v.V2, v.V3, v.V4, v.V5, v.V7)
MESSAGES = (v.V6, v.V8, v.V9, v.V10, v.V11, v.V12, v.V13, v.V14, v.V15, v.V16)
CHUNKINGS = (b"\x00", b"\x00", b"\x11", b"\x3f")  # whole, whole, 1+2 bytes, 16+4 bytes
MASK = b"\x01\x02\x03\x04"


def _framed(streams: list[bytes], limits: range) -> list[bytes]:
    """Each stream behind each (limit byte, chunking byte) pair."""
    return [
        bytes((limit,)) + chunking + s
        for s in streams
        for limit in limits
        for chunking in CHUNKINGS
    ]


def _ws_streams() -> list[bytes]:
    def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
        return encode_frame(opcode, payload, fin=fin, mask=MASK)

    big = v.V7 * 8  # a 16-bit length
    return [
        frame(OPCODE_BINARY, v.V7),
        frame(OPCODE_TEXT, b'{"a":"\xc3\xa9"}'),
        frame(OPCODE_BINARY, big),
        frame(OPCODE_BINARY, v.V1, fin=False) + frame(OPCODE_PING, b"p") + frame(OPCODE_CONT, v.V7),
        frame(OPCODE_PONG, b"") + frame(OPCODE_BINARY, v.V3) + frame(OPCODE_BINARY, v.V4),
        frame(OPCODE_CLOSE, (1000).to_bytes(2, "big") + b"bye"),
        frame(OPCODE_CLOSE, b""),
    ]


def _batches() -> list[bytes]:
    calls = [
        pack_plain([1, "s", "chat", "send", ["r", {"content": "hi", "n": 1.5}]]),
        pack_plain([2, "t", "chat", "join", []]),
        pack_plain([3, "s", 1, None, {}]),
    ]
    answers = [
        pack_plain([1, OK, {"ok": True, "b": b"\x00\xff"}]),
        pack_plain([2, HANDLER_ERROR, 500, "boom"]),
        pack_plain([3, ERROR, "no such server"]),
    ]
    return [
        pack_array(calls),
        pack_array(answers),
        pack_array([]),
        pack_plain({"x": [1, -2, 2**63]}),
    ]


DICTIONARIES: dict[str, tuple[str, ...]] = {
    "handshake": (
        '"code"', '"sys"', '"user"', '"heartbeat"', '"dict"', '"dictVersion"', '"useDict"',
        '"routeToCode"', '"serializer"', '"msg"', '"reason"', "true", "null", "NaN",
        "Infinity", "-Infinity", "1e400", "1" + "0" * 320, "65536", '"\\ud800"',
        "{", "}", "[", "]", ":", ",",
    ),
}  # fmt: skip
"""libFuzzer dictionaries (tokens the mutator inserts), for the targets that parse text."""


def seeds() -> dict[str, list[bytes]]:
    """Each target's seeds."""
    return {
        "packet": _framed([b"".join(PACKAGES), *PACKAGES, v.V3 + b"\x09\x00\x00\x00"], range(5)),
        "message": list(MESSAGES),
        "handshake": [p[4:] for p in (v.V1, v.V2, v.V5)] + [b'{"code":501}', b"[]"],
        "wsframe": _framed(_ws_streams(), range(6)),
        "payload": _batches(),
    }


def _dict_entry(token: str) -> str:
    """``token`` as a line of a libFuzzer dictionary: quoted, backslashes and quotes escaped."""
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write(root: Path) -> dict[str, Path]:
    """Write every target's seeds under ``root``; the folder of each target."""
    folders = {}
    corpora = seeds()
    for target in TARGETS:
        folder = root / target
        folder.mkdir(parents=True, exist_ok=True)
        for n, seed in enumerate(corpora[target]):
            (folder / f"seed-{n:03d}").write_bytes(seed)
        folders[target] = folder
    for target, tokens in DICTIONARIES.items():
        lines = (_dict_entry(token) for token in tokens)
        (root / f"{target}.dict").write_text("\n".join(lines) + "\n")
    return folders


if __name__ == "__main__":
    for name, path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz/build/seeds")).items():
        print(f"{name}: {path}")
