"""A real, throwaway etcd for tests: free loopback ports, a temp data dir, outages on demand.

::

    server = EtcdServer()          # raises SkipTest(NOT_INSTALLED) when there is no etcd
    server.start()                 # returns once etcd serves clients
    store = EtcdKeyValueStore(reactor, server.url)
    server.pause(); server.resume()       # SIGSTOP / SIGCONT: an etcd that stops answering
    server.kill(); server.restart()       # SIGKILL, then the same data dir and ports again
    server.stop()                  # and the temp dir is gone

The calls are synchronous (a subprocess).  Trial has no ``setUpClass``, so
:func:`class_etcd` starts one etcd per test class lazily (from ``setUp``) and stops it when
the test process exits; on Linux the etcd also dies with the test process (with the thread
that started it, precisely: start it from the main thread).  Readiness is etcd's own
"serving client traffic" log line, awaited on its stderr with a bounded ``select``, never
a sleep; after that a thread copies the log to ``etcd.log`` in the temp dir (shown when a
start fails).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from twisted.trial.unittest import SkipTest

from .children import dying_with_parent

__all__ = ["NOT_INSTALLED", "EtcdServer", "class_etcd", "etcd_binary"]

NOT_INSTALLED = "etcd not installed (make test installs etcd-server)"
READY_MARKER = b"serving client traffic"  # etcd 3.4's log line once clients are served


def etcd_binary() -> str | None:
    """The etcd executable on PATH or in /usr/bin, or None."""
    found = shutil.which("etcd")
    if found is None and os.access("/usr/bin/etcd", os.X_OK):
        found = "/usr/bin/etcd"
    return found


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def class_etcd(case: type[Any], *, host: str = "127.0.0.1") -> EtcdServer:
    """The etcd shared by the tests of class ``case`` (on ``host``): started on first use,
    stopped at exit.  Raises SkipTest(NOT_INSTALLED) without an etcd binary."""
    server: EtcdServer | None = case.__dict__.get("_pomelo_etcd_server")
    if server is None:
        server = EtcdServer(host=host).start()
        atexit.register(server.stop)
        case._pomelo_etcd_server = server
    elif not server.running:
        server.restart()  # a test killed it and did not restart it
    return server


def _free_ports(host: str, count: int) -> list[int]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(family)) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]


def _supports(binary: str, flag: str) -> bool:
    probe = subprocess.run(
        [binary, flag, "--version"], capture_output=True, timeout=10, check=False
    )
    return probe.returncode == 0


class EtcdServer:
    """One single-member etcd on a loopback address, 127.0.0.1 unless ``host`` says
    otherwise (``"::1"`` for IPv6; see the module docstring).

    ``start_timeout``: how long a start may take before it fails with etcd's log.
    Fast raft timings (10 ms heartbeat, 100 ms election) make the minimum lease TTL 1 s.
    """

    def __init__(self, *, host: str = "127.0.0.1", start_timeout: float = 20.0) -> None:
        binary = etcd_binary()
        if binary is None:
            raise SkipTest(NOT_INSTALLED)
        self.binary = binary
        self.start_timeout = start_timeout
        self.host = host
        self.client_port, self.peer_port = _free_ports(host, 2)
        self._netloc = f"[{host}]" if ":" in host else host
        self.url = f"http://{self._netloc}:{self.client_port}"
        self.directory = Path(tempfile.mkdtemp(prefix="pomelo-etcd-"))
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "etcd.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        self._fast = _supports(binary, "--unsafe-no-fsync")

    def command(self) -> list[str]:
        """The etcd command line."""
        peer = f"http://{self._netloc}:{self.peer_port}"
        args = [
            self.binary,
            "--name=test",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=test={peer}",
            "--heartbeat-interval=10",
            "--election-timeout=100",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
        if self._fast:
            args.append("--unsafe-no-fsync")
        return args

    @property
    def running(self) -> bool:
        """Whether the process is alive (a paused one counts)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> EtcdServer:
        """Start etcd and return once it serves clients; RuntimeError with its log if not."""
        if self.running:
            raise RuntimeError(f"etcd on {self.url} is already running")
        log = self.log_path.open("ab")
        process = subprocess.Popen(
            dying_with_parent(self.command(), signal.SIGKILL),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.PIPE,
        )
        self._process = process
        assert process.stderr is not None
        try:
            self._wait_ready(process.stderr, log)
        except BaseException:
            self._halt(signal.SIGKILL)
            log.close()
            raise
        self._drain = threading.Thread(
            target=self._copy, args=(process.stderr, log), name="etcd-log", daemon=True
        )
        self._drain.start()
        return self

    def health(self, timeout: float = 5.0) -> bool:
        """Whether etcd answers ``/health`` with ``{"health": "true"}``."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as answer:
                return bool(json.loads(answer.read()).get("health") == "true")
        except OSError:
            return False

    def enable_auth(
        self, user: str, password: str, prefix: str, *, root_password: str = "root"
    ) -> None:
        """Turn etcd's authentication on with ``user`` allowed to read and write under
        ``prefix`` only (and a ``root`` user, as etcd requires)."""
        key = prefix.encode("utf-8")
        end = key[:-1] + bytes([key[-1] + 1])
        for path, body in (
            ("user/add", {"name": "root", "password": root_password}),
            ("user/grant", {"user": "root", "role": "root"}),
            ("role/add", {"name": user}),
            (
                "role/grant",
                {
                    "name": user,
                    "perm": {"permType": "READWRITE", "key": _b64(key), "range_end": _b64(end)},
                },
            ),
            ("user/add", {"name": user, "password": password}),
            ("user/grant", {"user": user, "role": user}),
            ("enable", {}),
        ):
            request = urllib.request.Request(
                f"{self.url}/v3/auth/{path}", data=json.dumps(body).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered. Returns once the
        kernel shows the process stopped (a signal is delivered asynchronously: a request
        sent right after ``kill`` could otherwise still be answered)."""
        self._signal(signal.SIGSTOP)
        self._await_state(stopped=True)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        self._signal(signal.SIGCONT)
        self._await_state(stopped=False)

    def _await_state(self, stopped: bool, within: float = 5.0) -> None:
        """Wait (bounded) until ``/proc/PID/stat`` says the process is (not) stopped."""
        if self._process is None:
            return
        path = f"/proc/{self._process.pid}/stat"
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                with open(path, encoding="ascii") as stat:
                    state = stat.read().rsplit(")", 1)[1].split()[0]
            except OSError:  # not Linux, or gone: nothing to wait for
                return
            if (state in ("T", "t")) == stopped:
                return
            os.sched_yield()
        raise RuntimeError(f"etcd on {self.url} did not {'stop' if stopped else 'continue'}")

    def kill(self) -> None:
        """SIGKILL and wait: the port refuses connections, the data dir stays."""
        self._halt(signal.SIGKILL)

    def restart(self) -> EtcdServer:
        """Start again on the same data dir and ports (after :meth:`kill` or :meth:`stop`)."""
        if self.running:
            self._halt(signal.SIGTERM)
        return self.start()

    def stop(self) -> None:
        """Stop etcd (SIGTERM, SIGKILL if it lingers) and remove the temp dir."""
        self._halt(signal.SIGTERM)
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- internals -------------------------------------------------------------------------

    def _signal(self, signum: int) -> None:
        if self._process is None or not self.running:
            raise RuntimeError(f"etcd on {self.url} is not running")
        self._process.send_signal(signum)

    def _halt(self, signum: int) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused etcd cannot handle SIGTERM
            process.send_signal(signum)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._drain is not None:
            self._drain.join(timeout=10)
            self._drain = None
        if process.stderr is not None:
            process.stderr.close()

    def _wait_ready(self, stderr: IO[bytes], log: IO[bytes]) -> None:
        deadline = time.monotonic() + self.start_timeout
        seen = b""
        fd = stderr.fileno()
        while READY_MARKER not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(self._failure(f"not serving after {self.start_timeout:g} s"))
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(self._failure("exited during start"))
            log.write(chunk)
            log.flush()
            seen = seen[-len(READY_MARKER) :] + chunk

    def _failure(self, what: str) -> str:
        tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        return f"etcd {self.url} ({self.binary}) {what}; its log ends:\n{tail}"

    @staticmethod
    def _copy(stderr: IO[bytes], log: IO[bytes]) -> None:
        fd = stderr.fileno()
        with log:
            while chunk := os.read(fd, 65536):
                log.write(chunk)
                log.flush()
