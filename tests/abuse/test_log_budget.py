"""The log budget of issue 12: every bad-input probe class of ``tests/abuse`` (this wave's
and the first wave's) runs against one server process logging at info to a file, while
a well-behaved client keeps getting answers; the log grows by less than 1 MB in all."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from .probes import PROBES, GoodClient

HOST = "127.0.0.1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUDGET = 1 << 20


class LogBudgetTests(TestCase):
    """All the bad inputs together cost the server's log less than 1 MB."""

    timeout = 180

    def start_server(self, log_path: str) -> int:
        """The probe server in its own process; its port."""
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.abuse.server", log_path],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )

        def stop() -> None:
            server.terminate()
            server.wait(10)
            assert server.stdout is not None
            server.stdout.close()

        self.addCleanup(stop)
        assert server.stdout is not None
        line = server.stdout.readline()
        self.assertTrue(line.strip().isdigit(), line)
        return int(line)

    @inlineCallbacks
    def test_all_probes_log_under_1_mb(self) -> Any:
        """Every probe class against one server: the log grows < 1 MB; the good client
        is answered throughout."""
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        log_path = os.path.join(directory.name, "server.log")
        port = self.start_server(log_path)
        good = GoodClient()
        yield good.start(HOST, port)
        yield good.answered_more(1)
        before = os.path.getsize(log_path)
        print()
        for name, probe in PROBES.items():
            result = yield probe(HOST, port)
            print(f"  {name}: {result}")
            yield good.answered_more()
        yield deferLater(reactor, 0.5)  # the last closes logged, if they log
        grown = os.path.getsize(log_path) - before
        yield good.stop()
        print(
            f"log budget: {len(PROBES)} probe classes, the server log grew {grown} bytes "
            f"(budget {BUDGET}); good client: {good.answers} answers, "
            f"slowest {good.slowest * 1000:.0f} ms"
        )
        with open(log_path, "rb") as log:
            log.seek(before)
            print("its lines:\n" + log.read(2000).decode("utf-8", "replace"))
        self.assertLess(grown, BUDGET)
