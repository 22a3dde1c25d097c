"""pomelo_twisted.testing.pitaya.PitayaCodec reads and writes what libpitaya does."""

from __future__ import annotations

import json
import zlib

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import PackageType, encode_package
from pomelo_twisted.testing.pitaya import (
    PitayaClientError,
    PitayaCodec,
    PitayaHandshake,
    PitayaKick,
    PitayaPush,
    PitayaResponse,
)


def _data(message: bytes) -> bytes:
    return encode_package(PackageType.DATA, message)


class WritingTests(SynchronousTestCase):
    """What the codec sends."""

    def test_handshake_bytes(self) -> None:
        """libpitaya 4.6.2's handshake with its default client info, user only when set."""
        self.assertEqual(
            PitayaCodec().handshake()[4:],
            b'{"sys":{"platform":"desktop","libVersion":"4.6.2-",'
            b'"clientBuildNumber":"1","clientVersion":"0.1"}}',
        )
        self.assertIn(b'"user":{"a":1}', PitayaCodec(user={"a": 1}).handshake())

    def test_request_compressed_only_when_smaller(self) -> None:
        """Bodies go zlib with 0x10 when smaller; ids least significant group first."""
        codec = PitayaCodec()
        self.assertEqual(codec.request(300, "a.b", b"{}"), _data(b"\x00\xac\x02\x03a.b{}"))
        big = b'{"t":"' + b"q" * 200 + b'"}'
        self.assertEqual(
            codec.request(1, "a.b", big), _data(b"\x10\x01\x03a.b" + zlib.compress(big))
        )
        self.assertEqual(
            PitayaCodec(compress=False).notify("a.b", big), _data(b"\x02\x03a.b" + big)
        )


class ReadingTests(SynchronousTestCase):
    """What the codec reads, and where it fails as libpitaya would."""

    def test_handshake_plain_or_compressed(self) -> None:
        """A reply is read plain or zlib-compressed; the heartbeat is a whole number."""
        reply = {"code": 200, "sys": {"heartbeat": 2.5, "serializer": "json"}}
        raw = json.dumps(reply).encode()
        for body in (raw, zlib.compress(raw)):
            codec = PitayaCodec()
            (event,) = codec.receive(encode_package(PackageType.HANDSHAKE, body))
            self.assertEqual(event, PitayaHandshake(reply))
            self.assertEqual(codec.heartbeat, 2)

    def test_use_dict_fails(self) -> None:
        """useDict in the reply fails (libpitaya asserts it holds route maps)."""
        body = b'{"code":200,"sys":{"useDict":true}}'
        self.assertRaises(
            PitayaClientError, PitayaCodec().receive, encode_package(PackageType.HANDSHAKE, body)
        )

    def test_responses_pushes_kicks(self) -> None:
        """0x20 marks an error, 0x10 bodies are inflated, kicks give their reason."""
        codec = PitayaCodec()
        events = codec.receive(
            _data(b"\x24\xac\x02{}")
            + _data(b"\x16\x06onChat" + zlib.compress(b'{"m":1}'))
            + encode_package(PackageType.KICK, b'{"reason":"bye"}')
        )
        self.assertEqual(
            events,
            [
                PitayaResponse(300, b"{}", error=True),
                PitayaPush("onChat", b'{"m":1}', compressed=True),
                PitayaKick("bye"),
            ],
        )

    def test_push_route_code_fails(self) -> None:
        """A push whose route is a code fails: libpitaya reads only its high byte."""
        exc = self.assertRaises(PitayaClientError, PitayaCodec().receive, _data(b"\x07\x00\x07{}"))
        self.assertIn("high byte", str(exc))
