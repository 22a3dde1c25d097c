"""Child processes that die with the test run, started without preexec_fn."""

from __future__ import annotations

import signal
import subprocess
import sys

from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.testing.children import dying_with_parent

PDEATHSIG = (
    "import ctypes; value = ctypes.c_int(); "
    "ctypes.CDLL(None).prctl(2, ctypes.byref(value)); print(value.value)"  # PR_GET_PDEATHSIG
)


class DyingWithParentTests(SynchronousTestCase):
    """dying_with_parent wraps a command so Linux signals it when its parent dies."""

    def setUp(self) -> None:
        if not sys.platform.startswith("linux"):
            raise self.skipTest("PR_SET_PDEATHSIG is Linux only")

    def test_the_command_runs_with_the_parent_death_signal(self) -> None:
        """The exec'd command has the requested signal as its parent-death signal."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            out = subprocess.run(
                dying_with_parent([sys.executable, "-c", PDEATHSIG], sig),
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            self.assertEqual(out.stdout.strip(), str(int(sig)))

    def test_starts_while_a_batch_span_processor_lives(self) -> None:
        """With an OpenTelemetry batch processor alive (its at-fork hook starts a thread),
        a child still starts: no Python runs between fork and exec."""
        processor = BatchSpanProcessor(InMemorySpanExporter())
        self.addCleanup(processor.shutdown)
        out = subprocess.run(
            dying_with_parent([sys.executable, "-c", "print('started')"]),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.assertEqual(out.stdout.strip(), "started")
