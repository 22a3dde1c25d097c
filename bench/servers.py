"""Server processes for the loopback benchmark: start, pin, wait until ready, measure, stop."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "BENCH_CPU",
    "REPO_ROOT",
    "SERVER_CPU",
    "ServerProcess",
    "bare_argv",
    "can_pin",
    "free_port",
    "game_argv",
    "pomelo_argv",
    "profiled_argv",
    "start_server",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_CPU = 0
SERVER_CPU = 1


def can_pin() -> bool:
    """Whether the bench can go on CPU 0 and servers on CPU 1 (``taskset`` and ≥ 2 CPUs)."""
    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        return False
    return {BENCH_CPU, SERVER_CPU} <= os.sched_getaffinity(0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _twistd() -> str:
    beside = Path(sys.executable).parent / "twistd"
    if beside.exists():
        return str(beside)
    found = shutil.which("twistd")
    if found is None:
        raise RuntimeError(f"no twistd next to {sys.executable} nor on PATH")
    return found


def pomelo_argv(port: int) -> list[str]:
    """``twistd pomelo``: the hybrid echo server, heartbeats off."""
    return [
        _twistd(),
        "-n",
        "--pidfile=",
        "pomelo",
        "--type",
        "echo",
        "--listen",
        f"tcp:{port}:interface=127.0.0.1",
        "--heartbeat",
        "0",
    ]


def game_argv(port: int, app: Path = REPO_ROOT / "example_game") -> list[str]:
    """``twistd pomelo --app APP --env production --type all``: every server of a game in
    one process (the production section: one connector, so ``--listen`` names its port).

    Heartbeats and the per-connection request rate limit are off; RPC is in process.
    """
    return [
        _twistd(),
        "-n",
        "--pidfile=",
        "pomelo",
        "--app",
        str(app),
        "--env",
        "production",
        "--type",
        "all",
        "--listen",
        f"tcp:{port}:interface=127.0.0.1",
        "--heartbeat",
        "0",
        "--request-rate",
        "0",
    ]


def profiled_argv(argv: list[str], output: Path) -> list[str]:
    """``argv`` (a Python script and its arguments) under cProfile, stats to ``output``.

    The stats are written when the process exits normally (``twistd pomelo`` does on
    SIGTERM).
    """
    return [sys.executable, "-m", "cProfile", "-o", str(output), *argv]


def bare_argv(port: int) -> list[str]:
    """The baseline server, :mod:`bench.bare_echo`."""
    return [sys.executable, str(REPO_ROOT / "bench" / "bare_echo.py"), "--port", str(port)]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` from ``/proc`` (``None`` when unavailable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProcess:
    """One server process; ``stop()`` it in a ``finally``."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: BinaryIO | None = field(repr=False, default=None)

    def cpu_seconds(self) -> float | None:
        """CPU time the server has used so far."""
        return _cpu_seconds(self.proc.pid)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Connect in a retry loop until the port accepts; return the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with {self.proc.returncode} before listening:\n"
                    + self.log_tail()
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return time.monotonic() - start
            except OSError:
                if time.monotonic() >= deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{self.name} server not listening on port {self.port} "
                        f"after {timeout} s:\n" + self.log_tail()
                    ) from None
                time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; return the exit status."""
        proc = self.proc
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        finally:
            if self.log is not None:
                self.log.close()
        return proc.returncode


def start_server(name: str, argv: list[str], port: int, log_dir: Path, pin: bool) -> ServerProcess:
    """Start ``argv`` (on CPU 1 under ``taskset`` when ``pin``), output to a log file.

    The repository root goes first on ``PYTHONPATH`` so that ``twistd`` finds the
    ``pomelo`` plugin and this checkout even where the package is not installed.
    """
    if pin:
        argv = ["taskset", "-c", str(SERVER_CPU), *argv]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    except BaseException:
        log.close()
        raise
    return ServerProcess(name, port, proc, log_path, log)
