"""What the benchmarks share: the route, the ~100-byte body, bare framing, statistics."""

from __future__ import annotations

import math
import os
import statistics
import struct
from collections.abc import Sequence
from typing import Any

import orjson

__all__ = [
    "BODY",
    "ROUTE",
    "BareSplitter",
    "bare_frame",
    "bare_payload",
    "body_for",
    "cpu_ticks",
    "percentile",
    "summarize",
]

ROUTE = "connector.entryHandler.echo"

BODY: dict[str, Any] = {
    "uid": 10042,
    "rid": "lobby-7",
    "act": "move",
    "pos": {"x": 128.5, "y": -31.25},
    "seq": 12345,
    "ts": 1732201234567,
}
"""A realistic request body: compact JSON of about 100 bytes."""

_LENGTH = struct.Struct(">I")
_BARE_TEMPLATE = orjson.dumps({**BODY, "seq": 0}).replace(b'"seq":0', b'"seq":%d')


def body_for(seq: int) -> dict[str, Any]:
    """:data:`BODY` with its ``seq`` set: each loopback request is told apart by it."""
    return {**BODY, "seq": seq}


def bare_payload(seq: int) -> bytes:
    """The JSON bytes of ``body_for(seq)``, built by formatting, without a JSON encoder."""
    return _BARE_TEMPLATE % seq


def bare_frame(payload: bytes) -> bytes:
    """The baseline framing: a 4-byte big-endian length, then the payload."""
    return _LENGTH.pack(len(payload)) + payload


class BareSplitter:
    """Splits a stream of :func:`bare_frame` frames, buffering an incomplete one."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the payload of every frame it completes."""
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        offset = 0
        end = len(buf)
        unpack_from = _LENGTH.unpack_from
        while end - offset >= 4:
            (length,) = unpack_from(buf, offset)
            stop = offset + 4 + length
            if stop > end:
                break
            frames.append(bytes(buf[offset + 4 : stop]))
            offset = stop
        if offset:
            del buf[:offset]
        return frames


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted ``ordered`` (``fraction`` in 0..1)."""
    if not ordered:
        return float("nan")
    rank = min(max(1, math.ceil(fraction * len(ordered))), len(ordered))
    return ordered[rank - 1]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def cpu_ticks() -> dict[str, tuple[float, float]]:
    """Seconds since boot each CPU spent (total, busy), from ``/proc/stat`` (empty elsewhere).

    Busy is everything but idle and iowait; the benchmark subtracts its own processes'
    CPU time from the busy time of a run to see what other processes took.
    """
    per_second = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    times: dict[str, tuple[float, float]] = {}
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                name, *fields = line.split()
                if name.startswith("cpu") and name != "cpu":
                    ticks = [int(f) for f in fields[:8]]
                    total = sum(ticks)
                    times[name] = (total / per_second, (total - ticks[3] - ticks[4]) / per_second)
    except OSError:
        pass
    return times
