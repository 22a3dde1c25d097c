"""Fuzz target: the WebSocket frame decoder (``protocol/wsframe.py``), fed in random chunks.

Contract: only :class:`WsProtocolError` escapes ``feed``; the events (with those an error
carries) and the error do not depend on how the stream is chunked; a data message is
within ``max_message_size`` and survives a masked re-encoding; control payloads are at
most 125 bytes; a close is the last event and carries a code allowed on the wire.
"""

from __future__ import annotations

from typing import Any

from .harness import fuzz_main, instrumented, split

with instrumented(__name__):
    from pomelo_twisted.protocol.wsframe import (
        MAX_CONTROL_PAYLOAD,
        OPCODE_BINARY,
        WsClose,
        WsFrameDecoder,
        WsPing,
        WsPong,
        WsProtocolError,
        encode_frame,
    )

__all__ = ["fuzz_one_input"]

LIMITS = (0, 1, 125, 126, 1000, 65536)
MASK = b"\x37\xfa\x21\x3d"


def decode(pieces: list[bytes], limit: int) -> tuple[list[Any], tuple[int, str] | None]:
    """Every event of ``pieces`` fed one by one, and the error (code, reason) if any."""
    decoder = WsFrameDecoder(limit)
    events: list[Any] = []
    for piece in pieces:
        try:
            events += decoder.feed(piece)
        except WsProtocolError as exc:
            events += exc.events
            assert decoder.feed(b"\x81\x80" + MASK) == []  # finished: the rest is ignored
            return events, (exc.code, exc.reason)
    return events, None


def fuzz_one_input(data: bytes) -> None:
    """Check the frame decoder's contract on ``data`` (limit byte, chunk byte, stream)."""
    if len(data) < 2:
        return
    limit = LIMITS[data[0] % len(LIMITS)]
    pieces = split(data[1:])
    chunked = decode(pieces, limit)
    whole = decode([b"".join(pieces)], limit)
    assert chunked == whole, (chunked, whole)
    events, _error = chunked
    for index, event in enumerate(events):
        if isinstance(event, (WsPing, WsPong)):
            assert len(event.payload) <= MAX_CONTROL_PAYLOAD
        elif isinstance(event, WsClose):
            assert index == len(events) - 1, events
            assert event.code is None or 1000 <= event.code <= 4999
        elif isinstance(event, bytes):
            assert len(event) <= limit
            frame = encode_frame(OPCODE_BINARY, event, mask=MASK)
            assert WsFrameDecoder(limit).feed(frame) == [event]


if __name__ == "__main__":
    fuzz_main(fuzz_one_input)
