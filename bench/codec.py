"""Codec and loopback benchmarks of pomelo_twisted, each against a bare baseline.

``python bench/codec.py [--quick] [--json FILE]`` (``make bench``) prints:

1. codec throughput, in process: one *message* is a full request/response round trip of
   a ~100-byte JSON body on route ``connector.entryHandler.echo`` (the route travels as
   a string): the client encodes the request, the server decodes it, encodes the
   response, the client decodes that; the baseline does the same with 4-byte-length
   frames of the same bytes (no message layer, no JSON);
2. loopback request/response rate: ``twistd pomelo --type echo`` driven by the
   pomelo_twisted client against ``bench/bare_echo.py`` driven by an
   ``Int32StringReceiver`` client, each server in its own process.

Timings are only measured here, never asserted in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import gc
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, Protocol

from bench.common import BODY, ROUTE, BareSplitter, bare_frame, summarize
from bench.loopback import KINDS, run_alternating, run_reactor, summarize_runs
from bench.report import (
    environment,
    format_codec,
    format_header,
    format_loopback,
    format_loopback_intro,
)
from bench.servers import (
    BENCH_CPU,
    ServerProcess,
    bare_argv,
    can_pin,
    free_port,
    pomelo_argv,
    start_server,
)
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    HandshakeResponse,
    MessageType,
    PackageDecoder,
    PackageType,
    Request,
    Response,
    ServerConnection,
    decode_message,
    encode_message,
    encode_package,
)
from pomelo_twisted.serializers import JsonSerializer

__all__ = [
    "BareCodec",
    "CodecCase",
    "ConnectionCodec",
    "OursCodec",
    "codec_cases",
    "stdlib_dumps",
    "time_codec",
]

Dumps = Callable[[Any], bytes]
Loads = Callable[[bytes], Any]

_DATA = PackageType.DATA
_REQUEST = MessageType.REQUEST
_RESPONSE = MessageType.RESPONSE


def stdlib_dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON with the standard library (what JsonSerializer does with orjson)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class CodecCase(Protocol):
    """One codec variant: ``round_trip(id)`` returns what the client ends up with."""

    def round_trip(self, msg_id: int) -> object:
        """Request out, response back."""
        ...


class OursCodec:
    """The Pomelo layers as free functions, with a pluggable body serializer.

    ``dumps``/``loads`` of ``None`` mean no JSON: ``body`` is then already bytes.
    """

    def __init__(self, body: Any, dumps: Dumps | None = None, loads: Loads | None = None) -> None:
        self.body = body
        self.dumps: Dumps = dumps or _identity
        self.loads: Loads = loads or _identity
        self.server_decoder = PackageDecoder()
        self.client_decoder = PackageDecoder()

    def client_request(self, msg_id: int, obj: Any) -> bytes:
        """Client: body → message → package."""
        return encode_package(_DATA, encode_message(_REQUEST, msg_id, ROUTE, self.dumps(obj)))

    def server_receive(self, data: bytes) -> list[tuple[int, str, Any]]:
        """Server: bytes → packages → messages → (id, route, body)."""
        out = []
        for package in self.server_decoder.feed(data):
            msg = decode_message(package.body)
            out.append((msg.id, msg.route, self.loads(msg.body)))
        return out

    def server_respond(self, msg_id: int, obj: Any) -> bytes:
        """Server: response body → message → package."""
        return encode_package(_DATA, encode_message(_RESPONSE, msg_id, "", self.dumps(obj)))

    def client_receive(self, data: bytes) -> list[tuple[int, Any]]:
        """Client: bytes → packages → messages → (id, body)."""
        out = []
        for package in self.client_decoder.feed(data):
            msg = decode_message(package.body)
            out.append((msg.id, self.loads(msg.body)))
        return out

    def round_trip(self, msg_id: int) -> tuple[int, Any]:
        """One request and its echoed response: (response id, response body)."""
        ((rid, _route, request),) = self.server_receive(self.client_request(msg_id, self.body))
        ((response_id, response),) = self.client_receive(self.server_respond(rid, request))
        return response_id, response


class ConnectionCodec:
    """The same round trip through the state machines the client and the agent drive."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.json = JsonSerializer()
        self.client = ClientConnection()
        self.server = ServerConnection()
        self.server.receive_data(self.client.send(ClientHandshake(sys={"type": "bench"})))
        self.client.receive_data(self.server.send(HandshakeResponse(code=200)))
        self.server.receive_data(self.client.send(HandshakeAck()))

    def round_trip(self, msg_id: int) -> tuple[int, Any]:
        """``send(Request)`` → ``receive_data`` → ``send(Response)`` → ``receive_data``."""
        encode, decode = self.json.encode, self.json.decode
        (request,) = self.server.receive_data(
            self.client.send(Request(msg_id, ROUTE, encode(self.body)))
        )
        assert isinstance(request, Request)
        reply = decode(request.body)
        (response,) = self.client.receive_data(
            self.server.send(Response(request.id, encode(reply)))
        )
        assert isinstance(response, Response)
        return response.id, decode(response.body)


class BareCodec:
    """Baseline: 4-byte length + bytes each way, split by reading the length."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.server_splitter = BareSplitter()
        self.client_splitter = BareSplitter()

    def round_trip(self, msg_id: int) -> bytes:
        """One frame to the server and back (``msg_id`` is not carried)."""
        (request,) = self.server_splitter.feed(bare_frame(self.payload))
        (response,) = self.client_splitter.feed(bare_frame(request))
        return response


def _identity(value: Any) -> Any:
    return value


def codec_cases(body: dict[str, Any]) -> dict[str, tuple[str, Callable[[], CodecCase]]]:
    """The variants by key: (description, factory); ``bare`` is the baseline."""
    serializer = JsonSerializer()
    body_bytes = serializer.encode(body)
    return {
        "bare": (
            "bare: 4-byte length + bytes, no message layer, no JSON",
            lambda: BareCodec(body_bytes),
        ),
        "ours_nojson": (
            "ours, layers only: encode_message/encode_package, feed/decode_message",
            lambda: OursCodec(body_bytes),
        ),
        "ours_orjson": (
            "ours + orjson (JsonSerializer): the full path",
            lambda: OursCodec(body, serializer.encode, serializer.decode),
        ),
        "ours_stdlib_json": (
            "ours + stdlib json (dumps compact / loads)",
            lambda: OursCodec(body, stdlib_dumps, json.loads),
        ),
        "ours_connection": (
            "ours via ClientConnection/ServerConnection + orjson",
            lambda: ConnectionCodec(body),
        ),
    }


def time_codec(make: Callable[[], CodecCase], messages: int, repeats: int) -> list[float]:
    """Messages/s of each of ``repeats`` timed loops of ``messages`` round trips (GC off)."""
    case = make()
    round_trip = case.round_trip
    for msg_id in range(1, messages // 10 + 2):  # warm-up
        round_trip(msg_id)
    ids = range(1, messages + 1)
    rates: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            case = make()
            round_trip = case.round_trip
            gc.collect()
            start = time.perf_counter()
            for msg_id in ids:
                round_trip(msg_id)
            rates.append(messages / (time.perf_counter() - start))
    finally:
        if gc_was_enabled:
            gc.enable()
    return rates


# -- command line ----------------------------------------------------------------------

MESSAGE_DEFINITION = (
    "one message = one request/response round trip: client json-encode -> encode_message "
    "-> encode_package; server PackageDecoder.feed -> decode_message -> json-decode; "
    "server json-encode -> encode_message -> encode_package; client feed -> decode_message "
    f"-> json-decode (the route travels as a {len(ROUTE)}-byte string)"
)


def run_codec_section(messages: int, repeats: int) -> dict[str, Any]:
    """Time every codec variant; ratios are medians against ``bare``."""
    cases = codec_cases(BODY)
    results: dict[str, dict[str, Any]] = {}
    for key, (description, make) in cases.items():
        rates = time_codec(make, messages, repeats)
        results[key] = {"description": description, "rates": rates, **summarize(rates)}
    base = results["bare"]["median"]
    for result in results.values():
        result["ratio_vs_bare"] = result["median"] / base
    return {
        "message": MESSAGE_DEFINITION,
        "body_bytes": len(JsonSerializer().encode(BODY)),
        "messages_per_repeat": messages,
        "repeats": repeats,
        "cases": results,
    }


def run_loopback_section(args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    """Start both servers, run A B A B ..., stop them whatever happens."""
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="pomelo-bench-") as tmp:
        try:
            for kind, argv_for in (("ours", pomelo_argv), ("bare", bare_argv)):
                port = free_port()
                servers[kind] = start_server(kind, argv_for(port), port, Path(tmp), pin)
            ready = {kind: server.wait_ready() for kind, server in servers.items()}
            results = run_reactor(
                lambda reactor: run_alternating(
                    reactor,
                    servers,
                    args.connections,
                    args.inflight,
                    args.duration,
                    args.runs,
                    progress,
                )
            )
        except BaseException:
            for server in servers.values():
                if server.proc.poll() is not None:
                    progress(f"{server.name} server output:\n{server.log_tail()}")
            raise
        finally:
            codes = {kind: server.stop() for kind, server in servers.items()}
    summary = {kind: summarize_runs(runs) for kind, runs in results.items()}
    return {
        "connections": args.connections,
        "inflight": args.inflight,
        "duration_s": args.duration,
        "runs": args.runs,
        "ready_s": ready,
        "exit_codes": codes,
        "exit_codes_note": "twistd re-raises SIGTERM after its clean shutdown: -15 is normal",
        "ours": summary["ours"],
        "bare": summary["bare"],
        "ratio_ours_vs_bare": summary["ours"]["rate"]["median"] / summary["bare"]["rate"]["median"],
    }


def progress(text: str) -> None:
    """Print a progress line at once."""
    print(text, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shortens every default."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--messages", type=int, help="codec round trips per repetition")
    parser.add_argument("--repeats", type=int, help="codec repetitions")
    # 50 × 2 rather than 10 × 10: the echo server keeps AgentConfig's default rate limit
    # (1000 requests/s per connection, burst 2000; twistd has no option for it), so with
    # 10 connections about half of the answers of a 5 s run would be code 429.
    parser.add_argument("-c", "--connections", type=int, default=50)
    parser.add_argument("-k", "--inflight", type=int, default=2, help="in flight per connection")
    parser.add_argument("--duration", type=float, help="seconds per loopback run")
    parser.add_argument("--runs", type=int, help="loopback runs of each server")
    parser.add_argument("--no-loopback", action="store_true", help="codec section only")
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, short in (
        ("messages", 50_000, 10_000),
        ("repeats", 7, 3),
        ("duration", 5.0, 1.0),
        ("runs", 3, 1),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run both sections, print them, write ``--json``; 1 when a response mismatched."""
    args = parse_args(argv)
    pin = can_pin()
    if pin:
        os.sched_setaffinity(0, {BENCH_CPU})
    env = environment(pin)
    print(format_header(env), flush=True)
    figures: dict[str, Any] = {"environment": env, "arguments": vars(args)}
    figures["codec"] = run_codec_section(args.messages, args.repeats)
    print(format_codec(figures["codec"]), flush=True)
    if not args.no_loopback:
        print(format_loopback_intro(args), flush=True)
        figures["loopback"] = run_loopback_section(args, pin)
        print(format_loopback(figures["loopback"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    loopback = figures.get("loopback")
    if loopback is not None:
        bad = sum(loopback[kind][key] for kind in KINDS for key in ("mismatches", "errors"))
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
