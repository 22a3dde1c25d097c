"""``pomelo-twisted conformance`` as a process against a real cluster of a copy of the
example game, over TCP and over WebSocket."""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue

from pomelo_twisted.testing.gamecopy import child_env
from tests.e2e.cluster import ClusterCase
from tests.e2e.game import REPO


class ConformanceE2ETests(ClusterCase):
    """The example game's connector passes every check that applies to it."""

    @inlineCallbacks
    def test_example_game_passes(self) -> Any:
        """Exit 0 on TCP and on WebSocket, with no FAIL line; every check is listed."""
        cluster = yield self.started()
        port = cluster.client_port("connector-server-1")
        for target in (f"tcp:127.0.0.1:{port}", f"ws://127.0.0.1:{port}/"):
            out, err, code = yield getProcessOutputAndValue(
                sys.executable,
                ["-m", "pomelo_twisted.admin.cli", "conformance", target],
                env=child_env(REPO),
                reactor=reactor,
            )
            out, err = out.decode("utf-8"), err.decode("utf-8")
            self.assertEqual((code, err), (0, ""), out)
            self.assertNotIn("FAIL", out)
            self.assertIn(f"conformance of {target}", out)
            self.assertRegex(out, r"\n26 checks: \d+ passed, 0 failed, \d+ skipped\n$")
