"""A real cluster of the example game for the fault and soak scripts (no reactor: subprocesses).

:class:`Cluster` copies ``example_game`` onto free loopback ports
(:func:`pomelo_twisted.testing.gamecopy.copy_game`), starts the master with
``pomelo-twisted start`` in its own session (output to ``master.log``), finds every
server's pid from ``/proc`` (the twistd command line names ``--app GAME --id ID``),
reads RSS from ``/proc/<pid>/status``, runs CLI commands, starts chat bots on a
connector, and greps the logs for tracebacks and lines above ``info``.
:meth:`Cluster.close` kills whatever is left (master session, servers, bots).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from pomelo_twisted.testing.gamecopy import child_env, copy_game

__all__ = ["BOT_SCENARIO", "REPO", "Cluster", "level_lines", "rss_kb"]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_game"
BOT_SCENARIO = REPO / "bench" / "chatbot.py"
STARTED = "cluster started:"
TRACEBACK = "Traceback (most recent call last)"
#: A line above info: a text line (``[ns#warn]``) or a JSON one (``--log-format json``).
ABOVE_INFO = re.compile(r'#(warn|error|critical)\]|"level":"(warn|error|critical)"')

Findings = tuple[list[str], list[str]]
"""(traceback lines, lines logged at warn/error/critical) of one log."""


def rss_kb(pid: int) -> int | None:
    """The resident set size of ``pid`` in KiB (``VmRSS``), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def level_lines(text: str) -> Findings:
    """(lines holding a traceback header, lines logged at warn/error/critical) of a log."""
    lines = text.splitlines()
    return [ln for ln in lines if TRACEBACK in ln], [ln for ln in lines if ABOVE_INFO.search(ln)]


def _env() -> dict[str, str]:
    return child_env(REPO)


class Cluster:
    """Master + 2 connectors + 2 chat servers of a copy of the example game."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="pomelo-bench-"))
        self.game = self.workdir / "game"
        self.layout: dict[str, Any] = copy_game(EXAMPLE, self.game)
        self.master: subprocess.Popen[bytes] | None = None
        self.masters: list[subprocess.Popen[bytes]] = []  # every master started (one session each)
        self.bots: list[subprocess.Popen[bytes]] = []
        self._files: list[IO[bytes]] = []
        self._master_runs = 0

    # -- layout -------------------------------------------------------------------------
    def ids(self, server_type: str | None = None) -> list[str]:
        """Server ids of the game (of one type when given), in servers.json order."""
        return [
            entry["id"]
            for kind, group in self.layout["servers"].items()
            if server_type in (None, kind)
            for entry in group
        ]

    def target(self, connector_id: str) -> str:
        """The client endpoint of a connector."""
        for entry in self.layout["servers"]["connector"]:
            if entry["id"] == connector_id:
                return f"tcp:{entry['clientHost']}:{entry['clientPort']}"
        raise KeyError(connector_id)

    # -- processes ----------------------------------------------------------------------
    def master_log(self, run: int | None = None) -> Path:
        """The output file of the master's ``run``-th start (the latest by default)."""
        return self.workdir / f"master-{self._master_runs if run is None else run}.log"

    def start(self, timeout: float = 60.0) -> None:
        """``pomelo-twisted start --app GAME`` in its own session; wait for every server."""
        self._master_runs += 1
        out = self.master_log().open("wb")
        self._files.append(out)
        self.master = subprocess.Popen(
            [sys.executable, "-m", "pomelo_twisted.admin.cli", "start", "--app", str(self.game)],
            cwd=self.workdir,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.masters.append(self.master)
        self.wait_for(lambda: STARTED in self.master_log().read_text(errors="replace"), timeout)

    def wait_for(self, predicate: Any, timeout: float, what: str = "") -> float:
        """Poll ``predicate`` every 0.1 s; the seconds it took; RuntimeError after ``timeout``."""
        began = time.monotonic()
        while not predicate():
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"timed out after {timeout:g} s waiting for {what or predicate}")
            time.sleep(0.1)
        return time.monotonic() - began

    def pids(self) -> dict[str, int]:
        """Server id -> pid of every live server process of this game (from /proc)."""
        found: dict[str, int] = {}
        app = str(self.game)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state == "Z" or "pomelo" not in argv or "--id" not in argv or app not in argv:
                continue
            found[argv[argv.index("--id") + 1]] = int(entry)
        return found

    def cli(self, *args: str, timeout: float = 60.0) -> tuple[int, str]:
        """Run ``pomelo-twisted ARGS --app GAME``: (exit code, stdout + stderr)."""
        done = subprocess.run(
            [sys.executable, "-m", "pomelo_twisted.admin.cli", "--app", str(self.game), *args],
            cwd=self.workdir,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).decode(errors="replace")

    def listing(self) -> dict[str, str]:
        """Server id -> state, as ``pomelo-twisted list`` prints it ({} if it fails)."""
        code, out = self.cli("list", timeout=20.0)
        states: dict[str, str] = {}
        if code == 0:
            for line in out.splitlines():
                cells = line.split()
                if len(cells) >= 3 and cells[0] in self.ids():
                    states[cells[0]] = cells[2]
        return states

    def start_bots(
        self,
        connector_id: str,
        bots: int,
        duration: float,
        report: Path,
        prefix: str,
        ramp_up: float = 5.0,
        request_timeout: float = 10.0,
        scenario: str = "PrefixedChatBot",
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """``pomelo-twisted bot bench/chatbot.py:SCENARIO`` on one connector (uids and rooms
        ``prefix``-ed; ``env`` adds e.g. ``POMELO_BOT_ROOMS``). The bots run in the
        cluster's folder: a relative ``report`` is made absolute here."""
        report = report.resolve()
        out = report.with_suffix(".out").open("wb")
        self._files.append(out)
        args = [
            *(
                sys.executable,
                "-m",
                "pomelo_twisted.admin.cli",
                "bot",
                f"{BOT_SCENARIO}:{scenario}",
            ),
            *("--target", self.target(connector_id), "--bots", str(bots)),
            *("--ramp-up", f"{ramp_up:g}", "--duration", f"{duration:g}"),
            *("--request-timeout", f"{request_timeout:g}", "--report", str(report), "--quiet"),
        ]
        process = subprocess.Popen(
            args,
            cwd=self.workdir,
            env=dict(_env(), POMELO_BOT_PREFIX=prefix, **(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.bots.append(process)
        return process

    # -- logs ---------------------------------------------------------------------------
    #: The output files of the processes that run the servers (here: each master run).
    RUN_LOGS = "master-*.log"

    def logs(self) -> dict[str, str]:
        """Every log: the outputs of :attr:`RUN_LOGS` and ``logs/*.log``."""
        found = {
            path.name: path.read_text(errors="replace")
            for path in sorted(self.workdir.glob(self.RUN_LOGS))
        }
        for path in sorted((self.game / "logs").glob("*.log")):
            found[f"logs/{path.name}"] = path.read_text(errors="replace")
        return found

    def log_offsets(self) -> dict[str, int]:
        """The current length of every log (to grep only what comes after)."""
        return {name: len(text) for name, text in self.logs().items()}

    def problems(self, since: dict[str, int] | None = None) -> dict[str, Findings]:
        """Per log: (traceback lines, warn/error/critical lines) written after ``since``."""
        since = since or {}
        return {name: level_lines(text[since.get(name, 0) :]) for name, text in self.logs().items()}

    # -- teardown -----------------------------------------------------------------------
    def close(self, keep: bool = False) -> None:
        """Stop the bots and the cluster (SIGTERM, then SIGKILL); remove the folder unless
        ``keep``."""
        for process in self.bots:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.master is not None and self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.master.wait(20)
        for pid in self.pids().values():  # adopted or orphaned servers: not in our group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        for master in self.masters:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(master.pid, signal.SIGKILL)
            master.wait()
        for out in self._files:
            out.close()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def load_report(path: Path) -> dict[str, Any]:
    """The ``summary`` of a bots' JSON report ({} if the run wrote none)."""
    try:
        return dict(json.loads(path.read_text())["summary"])
    except (OSError, ValueError, KeyError):
        return {}
