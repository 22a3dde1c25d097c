"""TranscriptRunner step by step, against a scripted server on a Clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.conformance import Outcome, Session, TranscriptRunner, Wire
from pomelo_twisted.protocol import MessageType, PackageType, encode_message, encode_package

OK_REPLY = encode_package(
    PackageType.HANDSHAKE,
    b'{"code":200,"sys":{"heartbeat":3,"dict":{"onChat":7},"dictVersion":"v"}}',
)
HEARTBEAT = encode_package(PackageType.HEARTBEAT)


def data_package(msg_type: MessageType, body: Any, msg_id: int = 0, **kw: Any) -> bytes:
    raw = encode_message(msg_type, msg_id, body=json.dumps(body).encode(), **kw)
    return encode_package(PackageType.DATA, raw)


Script = Callable[[bytes], list[bytes]]


class ScriptedServer:
    """Answers each client write with the packages ``script(write)`` returns."""

    def __init__(self, clock: Clock, script: Script) -> None:
        self.clock = clock
        self.script = script
        self.written: list[bytes] = []

    def dial(self) -> Deferred[Wire]:
        wire = Wire(self.clock, "tcp")
        server = self

        class Link:
            def send(self, data: bytes) -> None:
                server.written.append(data)
                for package in server.script(data):
                    wire.received(package)

            def drop(self) -> None:
                wire.lost("closed by the client")

        wire.link = Link()
        return succeed(wire)


def session(*steps: dict[str, Any], requires: tuple[str, ...] = ()) -> Session:
    return Session("s", "reference", "", list(steps), requires=requires)


HANDSHAKE = {"send": {"package": "handshake", "json": {"sys": {}}}}
EXPECT_OK = {
    "expect": {
        "package": "handshake",
        "json": {"code": 200, "sys": {"?heartbeat": "$number:heartbeat", "?dict": "$object:dict"}},
    }
}
REQUEST = {
    "send": {
        "package": "data",
        "message": {"type": "request", "id": 1, "route": "${route}", "json": {}},
    }
}
RESPONSE = {
    "expect": {"package": "data", "message": {"type": "response", "id": 1, "json": {"code": 200}}}
}
PUSH = {"package": "data", "message": {"type": "push", "route": "onChat", "json": {"a": 1}}}


class TranscriptTests(SynchronousTestCase):
    """One session at a time."""

    def run_session(self, script: Script, *steps: dict[str, Any], **kw: Any) -> Outcome:
        clock = Clock()
        server = ScriptedServer(clock, script)
        runner = TranscriptRunner(clock, server.dial, {"route": "a.b.c"}, 2)
        d = Deferred.fromCoroutine(runner.run(session(*steps, **kw)))
        clock.advance(2)
        clock.advance(2)
        return self.successResultOf(d)

    def test_heartbeats_and_pushes_are_passed_over(self) -> None:
        """A heartbeat and a push before the response do not fail a response step."""

        def script(data: bytes) -> list[bytes]:
            if data[0] == PackageType.HANDSHAKE:
                return [OK_REPLY]
            return [HEARTBEAT, data_push(), data_package(MessageType.RESPONSE, {"code": 200}, 1)]

        outcome = self.run_session(script, HANDSHAKE, EXPECT_OK, REQUEST, RESPONSE)
        self.assertEqual(outcome, Outcome("PASS"))

    def test_all_takes_any_order_and_names_compressed_routes(self) -> None:
        """expect all: the response and a push with a route code (named via dict) either way."""

        def script(data: bytes) -> list[bytes]:
            if data[0] == PackageType.HANDSHAKE:
                return [OK_REPLY]
            return [data_package(MessageType.RESPONSE, {"code": 200}, 1), data_push()]

        both = {"expect": {"all": [PUSH, RESPONSE["expect"]]}}
        outcome = self.run_session(script, HANDSHAKE, EXPECT_OK, REQUEST, both)
        self.assertEqual(outcome, Outcome("PASS"))

    def test_mismatch_names_the_step_and_the_field(self) -> None:
        """A wrong body fails at its step with the field that differs."""

        def script(data: bytes) -> list[bytes]:
            if data[0] == PackageType.HANDSHAKE:
                return [OK_REPLY]
            return [data_package(MessageType.RESPONSE, {"code": 500}, 1)]

        outcome = self.run_session(script, HANDSHAKE, EXPECT_OK, REQUEST, RESPONSE)
        self.assertEqual(
            outcome, Outcome("FAIL", "step 4 (expect response): code: expected 200, got 500")
        )

    def test_timeout_mentions_a_passed_over_push(self) -> None:
        """A push that did not match an expected push is named when the step times out."""

        def script(data: bytes) -> list[bytes]:
            if data[0] == PackageType.HANDSHAKE:
                return [OK_REPLY]
            return [data_package(MessageType.PUSH, {"a": 2}, route="onChat")]

        outcome = self.run_session(script, HANDSHAKE, EXPECT_OK, REQUEST, {"expect": PUSH})
        self.assertEqual(outcome.status, "FAIL")
        self.assertEqual(
            outcome.reason,
            "step 4 (expect push): nothing arrived within 2s "
            "(a push was passed over: a: expected 1, got 2)",
        )

    def test_requires_skips_when_the_handshake_lacks_it(self) -> None:
        """A session requiring a sys field the reply lacks is skipped, naming it."""
        reply = encode_package(PackageType.HANDSHAKE, b'{"code":200,"sys":{}}')
        outcome = self.run_session(
            lambda data: [reply], HANDSHAKE, EXPECT_OK, REQUEST, RESPONSE, requires=("heartbeat",)
        )
        self.assertEqual(outcome, Outcome("SKIP", "the server's handshake has no sys.heartbeat"))

    def test_compress_needs_the_route_in_the_dictionary(self) -> None:
        """A compressed request whose route the dictionary lacks is skipped, not failed."""
        compressed = {
            "send": {
                "package": "data",
                "message": {"type": "request", "id": 1, "route": "x.y.z", "compress": True},
            }
        }
        outcome = self.run_session(lambda data: [OK_REPLY], HANDSHAKE, EXPECT_OK, compressed)
        self.assertEqual(outcome, Outcome("SKIP", "x.y.z is not in the server's route dictionary"))

    def test_close_expected_but_connection_stays(self) -> None:
        """expect close fails when the connection is still open after the timeout."""
        outcome = self.run_session(
            lambda data: [], {"send": {"hex": "09000000"}}, {"expect": {"close": True}}
        )
        self.assertEqual(
            outcome,
            Outcome("FAIL", "step 2 (expect the close): the connection is still open after 2s"),
        )

    def test_split_and_id_bytes(self) -> None:
        """split writes one byte at a time; id_hex puts those bytes in place of the varint."""
        clock = Clock()
        server = ScriptedServer(clock, lambda data: [])
        runner = TranscriptRunner(clock, server.dial, {}, 2)
        step = {
            "send": {
                "package": "data",
                "split": "bytes",
                "message": {"type": "request", "id": 1, "id_hex": "8100", "route": "a", "json": {}},
            }
        }
        d = Deferred.fromCoroutine(runner.run(session(step)))
        self.assertEqual(self.successResultOf(d), Outcome("PASS"))
        self.assertEqual(
            server.written, [bytes([b]) for b in bytes.fromhex("04000007008100016" + "17b7d")]
        )


def data_push() -> bytes:
    return data_package(MessageType.PUSH, {"a": 1}, route_code=7)
