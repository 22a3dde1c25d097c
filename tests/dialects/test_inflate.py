"""Compressed bodies (flag 0x10) inflated under a cap: a bomb is a protocol violation,
kicked with a reason naming the cap, and never inflated past it in memory."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.protocol import MessageDecodeError, PackageType, encode_package
from pomelo_twisted.protocol.message import deflate_body, inflate_body
from pomelo_twisted.protocol.packet import DEFAULT_MAX_PACKET_SIZE
from pomelo_twisted.testing.pitaya import PitayaKick

from .helpers import PitayaSession, dialect_agents

BOMB_INFLATED = 60 * 1024 * 1024


def bomb() -> bytes:
    """About 60 KiB of zlib inflating to 60 MiB of zeros (built without holding them)."""
    deflater = zlib.compressobj(9)
    chunk = bytes(1024 * 1024)
    parts = [deflater.compress(chunk) for _ in range(BOMB_INFLATED // len(chunk))]
    parts.append(deflater.flush())
    return b"".join(parts)


class InflateBodyTests(SynchronousTestCase):
    """inflate_body and deflate_body."""

    def test_zlib_and_gzip(self) -> None:
        """zlib and gzip bodies both inflate (the header is detected)."""
        self.assertEqual(inflate_body(zlib.compress(b'{"a":1}'), 100), b'{"a":1}')
        self.assertEqual(inflate_body(gzip.compress(b'{"a":1}'), 100), b'{"a":1}')

    def test_limit_is_inclusive(self) -> None:
        """A body inflating to exactly the limit passes; one byte more is refused by name."""
        body = zlib.compress(b"x" * 1000)
        self.assertEqual(len(inflate_body(body, 1000)), 1000)
        exc = self.assertRaises(MessageDecodeError, inflate_body, body, 999)
        self.assertIn("limit of 999 bytes (max_inflated_body)", str(exc))

    def test_broken_bodies_refused(self) -> None:
        """Not zlib, truncated, or with bytes after the end: each refused, saying which."""
        body = zlib.compress(b"hello hello hello")
        for bad, words in (
            (b"{}", "does not inflate"),
            (body[:-3], "truncated"),
            (body + b"xx", "after its end"),
        ):
            exc = self.assertRaises(MessageDecodeError, inflate_body, bad, 1000)
            self.assertIn(words, str(exc))

    def test_deflate_only_when_smaller(self) -> None:
        """deflate_body compresses when smaller, else None."""
        self.assertIsNone(deflate_body(b'{"a":1}'))
        big = b"y" * 500
        compressed = deflate_body(big)
        assert compressed is not None
        self.assertEqual(zlib.decompress(compressed), big)


class BombTests(SynchronousTestCase):
    """A compression bomb against a connection."""

    def test_bomb_kicked_without_memory_growth(self) -> None:
        """A 60 KiB body inflating past the cap is kicked naming the cap; < 10 MB allocated."""
        body = bomb()
        self.assertLess(len(body), DEFAULT_MAX_PACKET_SIZE - 100)
        session = PitayaSession(dialect_agents())
        route = b"connector.entryHandler.echo"
        message = b"\x10\x01" + bytes((len(route),)) + route + body
        package = encode_package(PackageType.DATA, message)
        tracemalloc.start()
        try:
            session.feed(package)
            session.clock.advance(0)  # a big read is decoded on the next turn
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 10 * 1024 * 1024)
        (kick,) = session.events()
        assert isinstance(kick, PitayaKick)
        self.assertIn(f"limit of {DEFAULT_MAX_PACKET_SIZE} bytes (max_inflated_body)", kick.reason)
        self.assertFalse(session.transport.connected)
        self.assertIn("max_inflated_body", session.agent.close_reason or "")

    def test_cap_is_the_setting(self) -> None:
        """max_inflated_body sets the cap: 2000 inflated bytes pass 2000 and fail 1999."""
        payload = b'{"t":"' + b"z" * 1992 + b'"}'
        self.assertEqual(len(payload), 2000)
        for cap, kicked in ((2000, False), (1999, True)):
            session = PitayaSession(dialect_agents(AgentConfig(max_inflated_body=cap)))
            session.request(1, "connector.entryHandler.echo", {"t": "z" * 1992})
            (event,) = session.events()
            self.assertEqual(isinstance(event, PitayaKick), kicked, cap)

    def test_setting_validated(self) -> None:
        """max_inflated_body below 1 is refused by name."""
        exc = self.assertRaises(ValueError, AgentConfig, max_inflated_body=0)
        self.assertIn("max_inflated_body", str(exc))
