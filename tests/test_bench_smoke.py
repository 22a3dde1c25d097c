"""The benchmark's codec paths still produce correct output (no timing is checked here)."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from bench.codec import (
    BareCodec,
    ConnectionCodec,
    OursCodec,
    codec_cases,
    stdlib_dumps,
    time_codec,
)
from bench.common import BODY, ROUTE, BareSplitter, bare_frame, bare_payload, body_for
from pomelo_twisted.serializers import JsonSerializer


class CodecSmokeTests(SynchronousTestCase):
    """One round of each codec variant of ``bench/codec.py``."""

    def setUp(self) -> None:
        self.json = JsonSerializer()

    def test_body_size(self) -> None:
        """The benchmark body is about 100 bytes of JSON and the bare payload is its JSON."""
        encoded = self.json.encode(BODY)
        self.assertTrue(90 <= len(encoded) <= 110, len(encoded))
        self.assertEqual(bare_payload(7), self.json.encode(body_for(7)))

    def test_ours_request_path(self) -> None:
        """The server side decodes the id, the route and the body the client side encoded."""
        codec = OursCodec(BODY, self.json.encode, self.json.decode)
        data = codec.client_request(300, BODY)
        self.assertEqual(codec.server_receive(data), [(300, ROUTE, BODY)])

    def test_ours_round_trip(self) -> None:
        """A round trip with orjson, stdlib json or no JSON returns the id and the body."""
        body_bytes = self.json.encode(BODY)
        for codec, expected in [
            (OursCodec(BODY, self.json.encode, self.json.decode), BODY),
            (OursCodec(BODY, stdlib_dumps, json.loads), BODY),
            (OursCodec(body_bytes), body_bytes),
        ]:
            for msg_id in (1, 127, 128, 70000):
                self.assertEqual(codec.round_trip(msg_id), (msg_id, expected))

    def test_connection_round_trip(self) -> None:
        """The state-machine variant answers each request with its id and body."""
        codec = ConnectionCodec(BODY)
        self.assertEqual(
            [codec.round_trip(i) for i in (1, 2, 500)], [(i, BODY) for i in (1, 2, 500)]
        )

    def test_bare_round_trip(self) -> None:
        """The baseline returns the same bytes, framed as a 4-byte length and the payload."""
        payload = self.json.encode(BODY)
        frame = bare_frame(payload)
        self.assertEqual(frame[:4], len(payload).to_bytes(4, "big"))
        self.assertEqual(BareCodec(payload).round_trip(1), payload)

    def test_bare_splitter_chunks(self) -> None:
        """Frames split across and within chunks come out whole and in order."""
        stream = bare_frame(b"first") + bare_frame(b"") + bare_frame(b"third")
        splitter = BareSplitter()
        frames = [f for i in range(len(stream)) for f in splitter.feed(stream[i : i + 1])]
        self.assertEqual(frames, [b"first", b"", b"third"])

    def test_every_case_runs(self) -> None:
        """The timing loop runs every variant the benchmark reports (the values go unchecked)."""
        cases = codec_cases(BODY)
        self.assertIn("bare", cases)
        for key, (_description, make) in cases.items():
            rates = time_codec(make, messages=20, repeats=2)
            self.assertEqual([type(rate) for rate in rates], [float, float], key)
