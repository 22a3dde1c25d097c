"""Run ``twistd -n pomelo --app example_game --type all`` as a real process for the e2e tests.

:class:`GameProcess` starts a copy of the example game on free loopback ports with its output in
a log file of a temporary directory, waits (bounded) until the port completes a Pomelo
handshake, and stops it with SIGTERM (SIGKILL if it does not go). The log helpers tell
the deliberate failures of ``connector.entryHandler.fail`` from any other traceback.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater

from pomelo_twisted.client import connect
from pomelo_twisted.testing.children import dying_with_parent
from pomelo_twisted.testing.gamecopy import copy_game as copy_example

__all__ = ["DELIBERATE", "GameProcess", "log_problems", "traceback_entries"]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_game"
DELIBERATE = "builtins.RuntimeError: deliberate handler failure"
FAIL_ENTRY = "request connector.entryHandler.fail failed"
TRACEBACK = "Traceback (most recent call last)"
READY_TIMEOUT = 15.0
EXIT_TIMEOUT = 10.0
# A twistd log entry starts with its timestamp; its continuation lines start with a tab.
ENTRY_START = re.compile(r"^\d{4}-\d\d-\d\dT\S+ \[", re.MULTILINE)


def twistd_command() -> list[str]:
    """The twistd of this interpreter: the script next to it, else its ``run()`` via ``-c``."""
    script = Path(sys.executable).parent / "twistd"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def traceback_entries(log: str) -> list[str]:
    """The log entries (header + continuation lines) that contain a traceback."""
    starts = [m.start() for m in ENTRY_START.finditer(log)]
    bounds = [0, *starts, len(log)]
    entries = [log[a:b] for a, b in itertools.pairwise(bounds) if log[a:b].strip()]
    return [entry for entry in entries if TRACEBACK in entry]


def log_problems(log: str, deliberate: int) -> list[str]:
    """Why ``log`` is not clean: every traceback must be one of ``deliberate`` fail requests."""
    problems = []
    entries = traceback_entries(log)
    for entry in entries:
        if not (FAIL_ENTRY in entry and DELIBERATE in entry and entry.count(TRACEBACK) == 1):
            problems.append(f"unexpected traceback:\n{entry}")
    if len(entries) != deliberate or log.count(TRACEBACK) != deliberate:
        problems.append(
            f"{log.count(TRACEBACK)} tracebacks in {len(entries)} entries, "
            f"expected {deliberate} (one per fail request)"
        )
    return problems


def copy_game(dest: Path, env: str = "development") -> dict[str, Any]:
    """The example game copied to ``dest`` on free loopback ports (see ``copy_game``)."""
    return copy_example(EXAMPLE, dest, env)


class GameProcess:
    """One ``twistd pomelo --type all`` process of the example game on a loopback port."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="pomelo-e2e-"))
        self.game = self.workdir / "game"
        layout = copy_game(self.game)
        self.port = layout["servers"]["connector"][0]["clientPort"]
        self.log_path = self.workdir / "twistd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.fail_requests = 0  # fail requests sent: the tracebacks the log may hold
        self._log_file: IO[bytes] | None = None

    @property
    def tcp_target(self) -> str:
        """The client endpoint string for raw TCP."""
        return f"tcp:127.0.0.1:{self.port}"

    @property
    def ws_target(self) -> str:
        """The WebSocket URL (the hybrid acceptor serves WebSocket on the same port)."""
        return f"ws://127.0.0.1:{self.port}/"

    def start(self) -> None:
        """Start twistd in the foreground (``-n``), its stdout and stderr in the log file."""
        args = [
            *twistd_command(),
            "-n",
            "--pidfile=",
            "pomelo",
            "--app",
            str(self.game),
            "--type",
            "all",
        ]
        path = os.environ.get("PYTHONPATH")
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(REPO), path] if path else [str(REPO)]),
            PYTHONUNBUFFERED="1",
        )
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            dying_with_parent(args),
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def running(self) -> bool:
        """Whether the process is still alive."""
        return self.process is not None and self.process.poll() is None

    @inlineCallbacks
    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Any:
        """Fire once a client completes a handshake; fail with the log if it never does."""
        if self.ready:
            return
        deadline = reactor.seconds() + timeout
        last: Exception | None = None
        while reactor.seconds() < deadline:
            if not self.running():
                raise RuntimeError(f"twistd exited before it was ready:\n{self.log()}")
            try:
                client = yield connect(reactor, self.tcp_target, timeout=1.0)
            except Exception as exc:
                last = exc
                yield deferLater(reactor, 0.1, lambda: None)
            else:
                yield client.close()
                self.ready = True
                return
        raise RuntimeError(f"twistd not ready after {timeout:g} s ({last!r}):\n{self.log()}")

    def terminate(self) -> None:
        """Send SIGTERM (the graceful stop)."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    @inlineCallbacks
    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> Any:
        """Fire with the return code once the process has exited; fail after ``timeout``."""
        assert self.process is not None
        deadline = reactor.seconds() + timeout
        while self.process.poll() is None:
            if reactor.seconds() >= deadline:
                raise RuntimeError(f"twistd still running {timeout:g} s after SIGTERM")
            yield deferLater(reactor, 0.05, lambda: None)
        return self.process.returncode

    def stop(self) -> None:
        """Stop the process in any state (SIGTERM, SIGKILL after a while) and clean up."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        shutil.rmtree(self.workdir, ignore_errors=True)
