"""The fuzz targets' contracts, replayed without atheris: the seeds and every finding.

``fuzz/<target>.py`` holds each decoder's contract as ``fuzz_one_input``; here it runs on
the seed corpus of :mod:`fuzz.seeds` (so a change to a decoder that breaks its contract
fails the suite, not only a fuzzing run) and on each input a fuzzing run or a review of
a target found, pinned next to the behaviour it must keep.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

from fuzz import TARGETS
from fuzz.harness import split
from fuzz.seeds import seeds
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    ConnectionState,
    PackageType,
    ServerConnection,
    encode_package,
)
from pomelo_twisted.protocol.events import HandshakeResponse
from pomelo_twisted.protocol.handshake import parse_handshake_response


def target(name: str) -> Callable[[bytes], None]:
    """The ``fuzz_one_input`` of target ``name``."""
    check: Callable[[bytes], None] = importlib.import_module(f"fuzz.{name}").fuzz_one_input
    return check


# Inputs the fuzzers (or the review that wrote their contracts) found, by target:
# each broke the contract before the fix named in the test that pins it.
FINDINGS: dict[str, list[bytes]] = {
    "handshake": [
        # parse_handshake_response: an integer heartbeat no float holds raised
        # OverflowError (math.isfinite) out of the client's receive_data.
        b'{"code":200,"sys":{"heartbeat":1' + b"0" * 400 + b"}}",
        # ServerConnection.send(HandshakeResponse): user data echoed back holding a lone
        # surrogate cannot be encoded, and the failed send had already cleared the pending
        # handshake, so the error reply raised LocalProtocolError out of the agent.
        b'{"sys":{},"user":{"name":"\\ud800"}}',
    ],
}


class SeedTests(SynchronousTestCase):
    """Every target's contract holds on its seeds."""

    def test_every_target_has_seeds(self) -> None:
        """Each target of ``make fuzz`` has a module and at least one seed."""
        corpora = seeds()
        for name in TARGETS:
            self.assertTrue(callable(target(name)), name)
            self.assertTrue(corpora[name], name)

    def test_seeds_hold_the_contracts(self) -> None:
        """Each seed, whole and cut into one-byte and odd chunks, passes its target."""
        for name, inputs in seeds().items():
            check = target(name)
            for data in inputs:
                check(data)
                if name in ("packet", "wsframe"):  # the chunking byte follows the limit byte
                    for chunking in (b"\x00", b"\x00", b"\xf3"):
                        check(data[:1] + chunking + data[2:])

    def test_split_covers_the_stream(self) -> None:
        """The chunking helper keeps every byte, in order, in the sizes its first byte picks."""
        self.assertEqual(split(b""), [])
        self.assertEqual(split(b"\x00abc"), [b"abc"])
        self.assertEqual(split(b"\x10abcdef"), [b"a", b"bc", b"d", b"ef"])


class FindingTests(SynchronousTestCase):
    """Each finding, replayed through its target and pinned where it was fixed."""

    def test_findings_hold_the_contracts(self) -> None:
        """Every recorded finding now passes its target."""
        for name, inputs in FINDINGS.items():
            for data in inputs:
                target(name)(data)

    def test_heartbeat_no_float_holds_is_no_heartbeat(self) -> None:
        """A reply's heartbeat that is NaN, infinite, not positive or beyond a float is ignored."""
        for text in ("1" + "0" * 400, "-1" + "0" * 400, "NaN", "Infinity", "-Infinity", "0", "-2"):
            body = b'{"code":200,"sys":{"heartbeat":' + text.encode() + b"}}"
            self.assertIsNone(parse_handshake_response(body).heartbeat, text)
        self.assertEqual(
            parse_handshake_response(b'{"code":200,"sys":{"heartbeat":2.5}}').heartbeat, 2.5
        )
        big = parse_handshake_response(b'{"code":200,"sys":{"heartbeat":1e300}}').heartbeat
        self.assertTrue(big is not None and math.isfinite(big))

    def test_client_survives_a_huge_heartbeat(self) -> None:
        """A client connection given a heartbeat no float holds carries on without one."""
        conn = ClientConnection()
        conn.send(ClientHandshake())
        body = b'{"code":200,"sys":{"heartbeat":1' + b"0" * 400 + b"}}"
        (reply,) = conn.receive_data(encode_package(PackageType.HANDSHAKE, body))
        self.assertIsInstance(reply, HandshakeResponse)
        assert isinstance(reply, HandshakeResponse)
        self.assertEqual((reply.code, reply.heartbeat), (200, None))

    def test_unencodable_reply_leaves_the_handshake_pending(self) -> None:
        """A reply that cannot be encoded raises ValueError and the error reply still goes."""
        conn = ServerConnection()
        body = b'{"sys":{},"user":{"name":"\\ud800"}}'
        (handshake,) = conn.receive_data(encode_package(PackageType.HANDSHAKE, body))
        assert isinstance(handshake, ClientHandshake)
        with self.assertRaises(ValueError):
            conn.send(HandshakeResponse(code=200, user=handshake.user))
        self.assertIs(conn.state, ConnectionState.INITIAL)
        reply = conn.send(HandshakeResponse(code=500, message="handshake hook failed"))
        self.assertEqual(reply[4:], b'{"code":500,"msg":"handshake hook failed"}')
        self.assertIs(conn.state, ConnectionState.CLOSED)
