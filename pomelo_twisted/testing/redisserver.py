"""A real ``redis-server`` for tests: a free loopback port, a temp dir, no persistence.

::

    server = RedisServer.start_or_skip()   # SkipTest when redis-server is missing
    ...  # server.url == "redis://127.0.0.1:PORT/0"
    server.stop()

:meth:`RedisServer.start` returns once the server answers ``PING``: it waits on the
server's own "Ready to accept connections" line (a bounded ``select`` on its output,
no sleeps). :meth:`kill` and :meth:`restart` play an outage; a restarted server has
lost every key (nothing is saved).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .gamecopy import free_ports

__all__ = ["REDIS_MISSING", "RedisServer", "RedisServerError"]

REDIS_MISSING = "redis-server not installed (make test installs redis-server)"
"""The reason tests skip with when there is no ``redis-server``."""

START_TIMEOUT = 20.0
"""Seconds a start may take before it fails."""


class RedisServerError(RuntimeError):
    """redis-server did not start (its output says why)."""


def redis_server_binary() -> str | None:
    """The path of ``redis-server``, or None."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )


class RedisServer:
    """One ``redis-server`` process on ``host``, in ``directory``."""

    def __init__(
        self, directory: Path | str | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError(REDIS_MISSING)
        self.binary = binary
        #: Made here (and removed by :meth:`stop`) when no directory is given.
        self._own_directory = directory is None
        self.directory = Path(
            tempfile.mkdtemp(prefix="redis-test-") if directory is None else directory
        )
        self.host = host
        self.port = port or free_ports(1)[0]
        self.process: subprocess.Popen[bytes] | None = None
        self.output: list[str] = []

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {self.host}:{self.port} {state}>"

    @classmethod
    def start_or_skip(
        cls, directory: Path | str | None = None, host: str = "127.0.0.1"
    ) -> RedisServer:
        """A started server; ``unittest.SkipTest`` when redis-server is not installed."""
        from unittest import SkipTest

        if redis_server_binary() is None:
            raise SkipTest(REDIS_MISSING)
        server = cls(directory, host)
        server.start()
        return server

    @property
    def url(self) -> str:
        """``redis://HOST:PORT/0``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and return once it answers ``PING``."""
        if self.running:
            raise RedisServerError(f"{self!r} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.output = []
        process = self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", self.host,
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--logfile", "",
                "--loglevel", "notice",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,  # unbuffered: select() sees every byte not yet read
        )  # fmt: skip
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.kill()
                    raise RedisServerError(self._failure(f"not ready within {timeout:g}s"))
                line = process.stdout.readline()
                if not line:
                    process.wait()
                    raise RedisServerError(self._failure(f"exited with {process.returncode}"))
                self.output.append(line.decode("utf-8", "replace").rstrip())
                if b"Ready to accept connections" in line:
                    break
        # Quiet from now on: nothing reads the pipe any more, it must not fill up.
        self.command("CONFIG", "SET", "loglevel", "warning")
        if self.command("PING") != b"+PONG\r\n":
            self.kill()
            raise RedisServerError(self._failure("does not answer PING"))

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.output[-20:])
        return f"redis-server on {self.host}:{self.port} {what}:\n{tail}"

    def command(self, *args: str) -> bytes:
        """Send one command on a new connection; the first reply line, raw."""
        payload = b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        with socket.create_connection((self.host, self.port), timeout=START_TIMEOUT) as sock:
            sock.sendall(b"*%d\r\n" % len(args) + payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply

    def stop(self) -> None:
        """Stop the server (SIGTERM, then wait) and remove the temp dir it made."""
        process = self.process
        if process is None:
            self._remove_directory()
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.process = None
        self._remove_directory()

    def _remove_directory(self) -> None:
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): an outage."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port (empty)."""
        self.kill()
        self.start()
