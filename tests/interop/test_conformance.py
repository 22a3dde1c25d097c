"""``pomelo-twisted conformance --reference`` against the real pinus 1.7.4 chat server:
the vectors marked reference describe what pinus does, over TCP and WebSocket.

Run with ``make test-interop`` (``POMELO_INTEROP=1``); skipped otherwise.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import SkipTest, TestCase

from pomelo_twisted.admin.arguments import parse_args
from pomelo_twisted.conformance import run

from .pinus import skip_reason
from .test_pinus import shared_peer

pytestmark = pytest.mark.interop


class PinusConformanceTests(TestCase):
    """Every reference check passes against pinus; our stricter ones mostly do not."""

    timeout = 300

    def setUp(self) -> None:
        reason = skip_reason()
        if reason is not None:
            raise SkipTest(reason)
        self.peer = shared_peer()

    @inlineCallbacks
    def conformance(self, target: str, *extra: str) -> Any:
        out = io.StringIO()
        args = parse_args(["conformance", target, *extra])
        status = yield Deferred.fromCoroutine(run(reactor, args, out))  # type: ignore[arg-type]
        return status, out.getvalue()

    @inlineCallbacks
    def test_reference_checks_pass_on_tcp_and_ws(self) -> Any:
        """--reference: exit 0 and no FAIL line, over TCP and over WebSocket."""
        for target in (self.peer.tcp_target, self.peer.ws_target):
            status, out = yield self.conformance(target, "--reference")
            self.assertEqual(status, 0, out)
            self.assertNotIn("FAIL", out)
            self.assertIn("PASS  heartbeat [reference]", out)
            self.assertIn("PASS  unknown-route [reference]", out)

    @inlineCallbacks
    def test_stricter_checks_tell_pinus_apart(self) -> Any:
        """Without --reference, pinus fails our stricter choices (404, the id bytes)."""
        status, out = yield self.conformance(
            self.peer.tcp_target, "--only", "unknown-route-404", "--only", "id-bytes-echoed"
        )
        self.assertEqual(status, 1, out)
        self.assertIn(
            "FAIL  unknown-route-404 [ours]: step 5 (expect response): code: expected 404, got 500",
            out,
        )
        self.assertIn("FAIL  id-bytes-echoed [ours]", out)
