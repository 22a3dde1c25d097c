"""bench/scaleout.py's cheapest acceptance cases on real processes (issue 13).

Runs ``python bench/scaleout.py --only a,e,f`` (three loopback hosts, a real etcd and
Redis, no master): a room spanning both connectors gets every message once and ``list``
shows every host; another login kicks the old session both ways and a killed connector's
uid is free within the binding TTL; the global channel "world" pushes once per member
with one RPC per frontend. The script exits 0 only when every row passes.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from pomelo_twisted.testing.etcdserver import etcd_binary
from pomelo_twisted.testing.gamecopy import child_env
from pomelo_twisted.testing.redisserver import redis_server_binary

from .game import REPO

SCRIPT = REPO / "bench" / "scaleout.py"


def _bindable(host: str) -> bool:
    try:
        with socket.socket() as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


class ScaleoutScriptTests(TestCase):
    """The script's cases a, e and f on a real three-host cluster."""

    timeout = 150

    @inlineCallbacks
    def test_serves_unique_login_and_global_channel(self) -> Any:
        """Cases a, e and f of bench/scaleout.py pass: every row PASS, exit 0."""
        if etcd_binary() is None or redis_server_binary() is None:
            self.skipTest("etcd or redis-server is not installed")
        if not all(_bindable(host) for host in ("127.0.0.2", "127.0.0.3")):
            self.skipTest("127.0.0.2/127.0.0.3 cannot be bound here")
        out = Path(tempfile.mkdtemp(prefix="pomelo-scaleout-test-"))
        self.addCleanup(shutil.rmtree, out, True)
        stdout, stderr, code = yield getProcessOutputAndValue(
            sys.executable,
            [str(SCRIPT), "--only", "a,e,f", "--bots", "4", "--out", str(out)],
            env=child_env(REPO),
            path=str(REPO),
            reactor=reactor,
        )
        text = stdout.decode("utf-8", "replace") + stderr.decode("utf-8", "replace")
        checks = json.loads((out / "scaleout.json").read_text())
        self.assertEqual([c["what"] for c in checks if not c["ok"]], [], text)
        self.assertEqual({c["case"] for c in checks}, {"a", "e", "f"}, text)
        self.assertEqual(code, 0, text)
