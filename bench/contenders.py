"""The servers a benchmark suite run compares, each started once and pinned to one core.

- :class:`OursCluster` — the example game as a real cluster, ``twistd pomelo --type
  master`` on a copy of ``example_game`` with free ports (the ``production`` section:
  master + one connector + one chat server, like pinus's three processes; or the
  ``development`` section for the 2-connector run). Heartbeat 30 s as pinus's, the
  per-connection request-rate limit off (a load generator is not an abusive client).
- :class:`PinusCluster` — ``../shared/peers/pinus-chat`` (pinus 1.7.4) copied and started
  with its ``start.sh`` (``PEER_CPUS`` pins the three processes).
- :class:`Floor` — ``bench/bare_pomelo.py``, the bare Twisted Pomelo echo (no framework).
- :class:`NodeFloor` — ``bench/loadgen/bare_echo_server.js``, the bare Node echo: the
  load generator must be able to saturate it.

Every contender has ``name``, ``port`` (the client port), ``pids()`` (every process that
serves), ``frontend_pid()`` (the process holding client connections) and ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from pomelo_twisted.testing.gamecopy import copy_game, free_ports

__all__ = ["SERVER_CPU", "Floor", "NodeFloor", "OursCluster", "PinusCluster", "cpu_seconds"]

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_game"
PEER = REPO.parent / "shared" / "peers" / "pinus-chat"
LOADGEN = REPO / "bench" / "loadgen"
SERVER_CPU = 1
TWISTD = (sys.executable, "-c", "from twisted.scripts.twistd import run; run()")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) if match else 0


def wait_port(port: int, timeout: float, alive: Any = None) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; RuntimeError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"the server of port {port} exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s")


def _pinned(argv: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", str(SERVER_CPU), *argv] if pin else argv


class _Process:
    """A child process with its output in a log file, in its own process group."""

    def __init__(self, argv: list[str], log_path: Path, cwd: Path | None = None) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait()
        self._log.close()
        return self.proc.returncode


class OursCluster:
    """The example game as a cluster of ours, on free ports, pinned to the server core."""

    def __init__(
        self, workdir: Path, env: str = "production", pin: bool = True, metrics: bool = False
    ) -> None:
        self.name = "ours" if env == "production" else "ours-2conn"
        self.game = workdir / f"game-{env}"
        copy_game(EXAMPLE, self.game, env)
        layout = self._metrics_ports(env, metrics)
        app = self.game / "app.py"
        app.write_text(
            app.read_text().replace(
                '{"heartbeat": 3.0, "use_dict": True}',
                '{"heartbeat": 30.0, "use_dict": True, "request_rate": None}',
            )
        )
        self._own_secrets(env)
        self.frontends = list(layout["servers"]["connector"])
        self.port = int(self.frontends[0]["clientPort"])
        argv = [*TWISTD, "-n", "--pidfile=", "pomelo", "--app", str(self.game), "--env", env]
        self.master = _Process(_pinned(argv, pin), workdir / f"{self.name}-master.log")
        self._started = self._wait_started()

    def _metrics_ports(self, env: str, metrics: bool) -> dict[str, Any]:
        """Every server of the copy gets a free ``metricsPort`` (``--metrics``: Prometheus
        metrics on) or none (off, whatever the example declares); the servers section."""
        path = self.game / "config" / "servers.json"
        config = json.loads(path.read_text())
        entries = [entry for group in config[env].values() for entry in group]
        ports = iter(free_ports(len(entries)) if metrics else [])
        for entry in entries:
            entry.pop("metricsPort", None)
            if metrics:
                entry["metricsPort"] = next(ports)
        path.write_text(json.dumps(config, indent=1))
        return {"servers": config[env]}

    def _own_secrets(self, env: str) -> None:
        """The copy's master.json gets secrets of its own (a production start refuses the
        published example values) and plaintext links: the suite compares the default
        transport; ``bench/rpc.py --tls`` measures what TLS between servers costs."""
        path = self.game / "config" / "master.json"
        config = json.loads(path.read_text())
        section = config[env]
        section["secret"] = secrets.token_hex(16)
        section["adminSecret"] = secrets.token_hex(16)
        section.pop("tls", None)
        path.write_text(json.dumps(config, indent=2))

    def _wait_started(self, timeout: float = 60.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.master.log()
            if "cluster started:" in text:
                return {
                    m[0]: int(m[1]) for m in re.findall(r"started (\S+) \(\w+\) as pid (\d+)", text)
                }
            if not self.master.alive():
                break
            time.sleep(0.1)
        self.master.stop()
        raise RuntimeError(f"our cluster did not start:\n{self.master.log()[-3000:]}")

    def pids(self) -> list[int]:
        return [self.master.proc.pid, *self._started.values()]

    def frontend_pid(self) -> int:
        return self._started[str(self.frontends[0]["id"])]

    def stop(self) -> int | None:
        return self.master.stop()


class PinusCluster:
    """pinus 1.7.4 running the same chat game, pinned by its own start.sh."""

    name = "pinus"

    def __init__(self, workdir: Path, pin: bool = True) -> None:
        self.peer = workdir / "pinus-chat"
        shutil.copytree(PEER, self.peer, ignore=shutil.ignore_patterns("logs", "run"))
        client, master, connector, chat = free_ports(4)
        self.port = client
        env = dict(
            os.environ,
            PEER_CLIENT_PORT=str(client),
            PEER_MASTER_PORT=str(master),
            PEER_CONNECTOR_RPC=str(connector),
            PEER_CHAT_RPC=str(chat),
            PEER_LOG_LEVEL="warn",
        )
        if pin:
            env["PEER_CPUS"] = str(SERVER_CPU)
        result = subprocess.run(
            ["./start.sh"], cwd=self.peer, env=env, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(f"pinus did not start:\n{result.stdout}\n{result.stderr}")

    def pids(self) -> list[int]:
        pids = {int(p.read_text()) for p in (self.peer / "run").glob("*.pid")}
        return sorted(pids)

    def frontend_pid(self) -> int:
        return int((self.peer / "run" / "connector-server-1.pid").read_text())

    def stop(self) -> int | None:
        return subprocess.run(["./stop.sh"], cwd=self.peer, capture_output=True).returncode


class _OneProcess:
    """A contender that is one pinned process listening on a free port."""

    name = ""

    def _start(self, argv: list[str], workdir: Path, pin: bool) -> None:
        self.process = _Process(_pinned(argv, pin), workdir / f"{self.name}.log")
        wait_port(self.port, 20, self.process.alive)

    def pids(self) -> list[int]:
        return [self.process.proc.pid]

    def frontend_pid(self) -> int:
        return self.process.proc.pid

    def stop(self) -> int | None:
        return self.process.stop()


class Floor(_OneProcess):
    """The bare Twisted Pomelo echo (``bench/bare_pomelo.py``)."""

    name = "floor"

    def __init__(self, workdir: Path, pin: bool = True) -> None:
        self.port = free_ports(1)[0]
        argv = [sys.executable, str(REPO / "bench" / "bare_pomelo.py"), "--port", str(self.port)]
        self._start(argv, workdir, pin)


class NodeFloor(_OneProcess):
    """The bare Node echo (``bench/loadgen/bare_echo_server.js``)."""

    name = "node-floor"

    def __init__(self, workdir: Path, pin: bool = True, ws: bool = False) -> None:
        self.port = free_ports(1)[0]
        argv = ["node", str(LOADGEN / "bare_echo_server.js"), "--port", str(self.port)]
        if ws:
            argv.append("--ws")
            self.name = "node-floor-ws"
        self._start(argv, workdir, pin)


def new_workdir() -> Path:
    """A scratch folder for one suite run."""
    return Path(tempfile.mkdtemp(prefix="pomelo-suite-"))


def describe(contender: Any) -> dict[str, Any]:
    """What the JSON record says about a contender."""
    return {"name": contender.name, "port": contender.port, "pids": contender.pids()}


if __name__ == "__main__":  # a smoke check: start and stop each contender
    folder = new_workdir()
    for make in (Floor, OursCluster, PinusCluster):
        contender = make(folder)
        print(json.dumps(describe(contender)))
        print("stopped:", contender.stop())
    shutil.rmtree(folder, ignore_errors=True)
