"""WebSocket frame codec benchmark: pomelo_twisted.protocol.wsframe against autobahn.

``python bench/wsframe.py [--quick] [--json FILE]`` times one *message*: a masked
client binary frame with a 100-byte payload goes in, is decoded, and the payload goes
back out as an unmasked server binary frame. Cases, all in one process and one run:

1. ``ours``: ``WsFrameDecoder.feed`` + ``encode_binary``, the codec alone;
2. ``ours_transport``: the same, writing each frame to a ``StringTransport`` and
   collecting it, as the autobahn case does (the transport's own cost included);
3. ``autobahn``: autobahn's stock ``WebSocketServerProtocol`` after a real opening
   handshake, fed through ``dataReceived``, with an ``onMessage`` that echoes with
   ``sendMessage(payload, isBinary=True)`` into a ``StringTransport``.

Timings are only measured here, never asserted in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import base64
import gc
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import autobahn
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket import USES_NVX
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from bench.common import summarize
from bench.report import BUSY_WARNING, cpu_busy
from pomelo_twisted.protocol.wsframe import (
    OPCODE_BINARY,
    WsFrameDecoder,
    encode_binary,
    encode_frame,
)

__all__ = ["autobahn_case", "main", "ours_case", "ours_transport_case", "time_cases"]

PAYLOAD_SIZE = 100
MAX_MESSAGE_SIZE = 1 << 20

Run = Callable[[list[bytes]], bytes]
"""Processes each client frame as one message; returns the last frame written back."""


def client_frames(count: int = 16) -> list[bytes]:
    """Masked client binary frames of ``PAYLOAD_SIZE`` bytes, each with its own mask."""
    payload = bytes(range(PAYLOAD_SIZE))
    return [encode_frame(OPCODE_BINARY, payload, mask=os.urandom(4)) for _ in range(count)]


def ours_case() -> Run:
    """Our codec: feed each client frame, encode the echo of each message it yields."""
    feed = WsFrameDecoder(MAX_MESSAGE_SIZE).feed

    def run(frames: list[bytes]) -> bytes:
        out = b""
        for frame in frames:
            for event in feed(frame):
                if type(event) is bytes:  # a message, not a control frame: as a caller would
                    out = encode_binary(event)
        return out

    return run


def ours_transport_case() -> Run:
    """:func:`ours_case` writing into a ``StringTransport``, as the autobahn case does."""
    feed = WsFrameDecoder(MAX_MESSAGE_SIZE).feed
    transport = StringTransport()
    write, value, clear = transport.write, transport.value, transport.clear

    def run(frames: list[bytes]) -> bytes:
        out = b""
        for frame in frames:
            for event in feed(frame):
                if type(event) is bytes:
                    write(encode_binary(event))
            out = value()
            clear()
        return out

    return run


class EchoProtocol(WebSocketServerProtocol):
    """autobahn's stock server protocol, echoing every message as binary."""

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """Echo the message back."""
        self.sendMessage(payload, isBinary=True)


def autobahn_case() -> Run:
    """autobahn after its opening handshake on a ``StringTransport``: feed, echo, collect."""
    factory = WebSocketServerFactory("ws://127.0.0.1:9000")
    factory.protocol = EchoProtocol
    factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0, autoPingInterval=0)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    assert proto is not None
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 9000),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
    )
    proto.makeConnection(transport)
    key = base64.b64encode(os.urandom(16)).decode()
    proto.dataReceived(
        (
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = transport.value()
    if not answer.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"autobahn refused the handshake: {answer[:200]!r}")
    transport.clear()
    data_received, value, clear = proto.dataReceived, transport.value, transport.clear

    def run(frames: list[bytes]) -> bytes:
        out = b""
        for frame in frames:
            data_received(frame)
            out = value()
            clear()
        return out

    return run


CASES: dict[str, tuple[str, Callable[[], Run]]] = {
    "ours": ("ours: WsFrameDecoder.feed + encode_binary", ours_case),
    "ours_transport": ("ours + StringTransport write/value/clear", ours_transport_case),
    "autobahn": ("autobahn WebSocketServerProtocol, onMessage -> sendMessage", autobahn_case),
}


def time_cases(
    makers: dict[str, Callable[[], Run]], messages: int, repeats: int
) -> dict[str, list[float]]:
    """Messages/s of ``repeats`` timed runs of ``messages`` frames per case (GC off).

    The cases take turns within each repetition (A B C A B C ...), so that other load
    on the machine spreads over all of them.
    """
    distinct = client_frames()
    frames = [distinct[i % len(distinct)] for i in range(messages)]
    runs: dict[str, Run] = {}
    for key, make in makers.items():
        run = runs[key] = make()
        if run(distinct) != encode_binary(bytes(range(PAYLOAD_SIZE))):
            raise RuntimeError(f"{key} did not echo the expected frame")
        run(frames[: messages // 10])  # warm-up
    rates: dict[str, list[float]] = {key: [] for key in runs}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for key, run in runs.items():
                gc.collect()
                start = time.perf_counter()
                run(frames)
                rates[key].append(messages / (time.perf_counter() - start))
    finally:
        if gc_was_enabled:
            gc.enable()
    return rates


def run_cases(messages: int, repeats: int) -> dict[str, Any]:
    """Time every case; the per-case figures plus the time relative to autobahn."""
    rates = time_cases({key: make for key, (_, make) in CASES.items()}, messages, repeats)
    results: dict[str, dict[str, Any]] = {
        key: {"description": description, "rates": rates[key], **summarize(rates[key])}
        for key, (description, _) in CASES.items()
    }
    base = results["autobahn"]["median"]
    for result in results.values():
        result["us_per_msg"] = 1e6 / result["median"]
        result["time_vs_autobahn"] = base / result["median"]
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "message": (
            f"{PAYLOAD_SIZE}-byte masked binary client frame in, "
            f"{PAYLOAD_SIZE}-byte unmasked binary server frame out"
        ),
        "messages_per_repeat": messages,
        "repeats": repeats,
        "autobahn": autobahn.__version__,
        "autobahn_nvx": bool(USES_NVX),
        "cases": results,
    }


def format_report(figures: dict[str, Any]) -> str:
    """One line per case: msgs/s median (min–max), µs/msg, time relative to autobahn."""
    busy = figures["cpu_busy_before"]
    lines = [
        f"pomelo_twisted WebSocket frame codec benchmark: {figures['python']}",
        "CPU busy before starting: "
        + (", ".join(f"{name} {value:.0%}" for name, value in busy.items()) or "unknown"),
    ]
    if any(value > BUSY_WARNING for value in busy.values()):
        lines.append("WARNING: other processes are using the CPUs: the figures will be noisy")
    lines += [
        f"One message = {figures['message']}.",
        f"autobahn {figures['autobahn']} (NVX C accelerators "
        f"{'on' if figures['autobahn_nvx'] else 'off'}); {figures['messages_per_repeat']:,} "
        f"messages × {figures['repeats']} repetitions, GC off; median (min–max); "
        "time/ab = our time per message over autobahn's.",
        "",
        f"{'case':<60} {'messages/s median (min–max)':>36} {'µs/msg':>7} {'time/ab':>8}",
    ]
    for result in figures["cases"].values():
        spread = f"{result['median']:,.0f} ({result['min']:,.0f}–{result['max']:,.0f})"
        lines.append(
            f"{result['description']:<60} {spread:>36} "
            f"{result['us_per_msg']:7.2f} {result['time_vs_autobahn']:8.3f}"
        )
    cases = figures["cases"]
    ours, with_transport, ab = cases["ours"], cases["ours_transport"], cases["autobahn"]
    lines.append(
        f"=> ours/autobahn: {ours['time_vs_autobahn']:.3f} of the time "
        f"({ours['us_per_msg']:.2f} vs {ab['us_per_msg']:.2f} µs per message, "
        f"{1 / ours['time_vs_autobahn']:.1f}× faster); with the same StringTransport: "
        f"{with_transport['time_vs_autobahn']:.3f} ({1 / with_transport['time_vs_autobahn']:.1f}×)"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shortens every default."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--messages", type=int, help="messages per repetition")
    parser.add_argument("--repeats", type=int, help="repetitions per case")
    args = parser.parse_args(argv)
    if args.messages is None:
        args.messages = 5_000 if args.quick else 40_000
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the cases, print them, write ``--json``."""
    args = parse_args(argv)
    busy = cpu_busy()
    figures = {"cpu_busy_before": busy, **run_cases(args.messages, args.repeats)}
    print(format_report(figures), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
