"""Child processes of a test run that die with it, without ``preexec_fn``.

A test that starts real servers asks Linux to signal them when the test process dies
(``PR_SET_PDEATHSIG``), so a killed run leaves nothing behind. Doing that in
``subprocess.Popen(preexec_fn=...)`` runs Python between ``fork`` and ``exec``, which
hangs for good when the test process has threads or at-fork hooks that start one (the
OpenTelemetry SDK's batch processors register such a hook). :func:`dying_with_parent`
instead runs the command through a fresh interpreter that sets the signal and then
``exec``\\ s it: the process keeps its pid, and the signal survives the ``exec``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

__all__ = ["dying_with_parent"]

_PRELUDE = (
    "import ctypes, os, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[1]))  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def dying_with_parent(argv: Sequence[str], sig: int = signal.SIGTERM) -> list[str]:
    """``argv`` run so that Linux sends ``sig`` to it when the process that starts it
    dies (elsewhere ``argv`` as it is)."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-c", _PRELUDE, str(int(sig)), *argv]
