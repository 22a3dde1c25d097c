"""Run the example game as a real cluster (``pomelo-twisted start``) for the e2e tests.

:class:`ClusterProcess` copies the example game to a temporary folder with free
loopback ports, starts the master through the admin CLI in the foreground (the
CLI becomes the master: ``start`` execs twistd), waits (bounded) for
"cluster started", runs other CLI commands without blocking the reactor, and
on cleanup kills the whole process group so nothing outlives the test.
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
from pathlib import Path
from typing import IO, Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from pomelo_twisted.client import PomeloClient, connect
from pomelo_twisted.testing.children import dying_with_parent
from pomelo_twisted.testing.gamecopy import child_env

from .game import REPO, copy_game, traceback_entries

__all__ = ["ENTRY", "ClusterCase", "ClusterProcess"]

#: The example game's login route.
ENTRY = "connector.entryHandler.entry"
START_TIMEOUT = 30.0
STARTED = "cluster started:"


def _env() -> dict[str, str]:
    return child_env(REPO)


class ClusterProcess:
    """Master + 2 connectors + 2 chat servers of a copy of the example game."""

    def __init__(
        self,
        tls: bool = False,
        env: dict[str, str] | None = None,
        start_args: tuple[str, ...] = (),
    ) -> None:
        self.extra_env = dict(env or {})
        """More environment for the master (and so for the servers it spawns)."""
        #: More options of ``start`` (e.g. ``--log-format json``).
        self.start_args = start_args
        self.workdir = Path(tempfile.mkdtemp(prefix="pomelo-cluster-"))
        self.game = self.workdir / "game"
        self.layout = copy_game(self.game)
        if tls:  # every link over mutual TLS, certificates made by ``certs``
            self.layout["master"]["tls"] = {"dir": "certs"}
            master = self.game / "config" / "master.json"
            data = json.loads(master.read_text(encoding="utf-8"))
            data["development"]["tls"] = {"dir": "certs"}
            master.write_text(json.dumps(data, indent=1), encoding="utf-8")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pomelo_twisted.admin.cli",
                    "certs",
                    "--app",
                    str(self.game),
                ],
                env=_env(),
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=60,
            )
        self.master_log = self.workdir / "master.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def client_port(self, server_id: str) -> int:
        """The client port of a connector."""
        for entry in self.layout["servers"]["connector"]:
            if entry["id"] == server_id:
                return int(entry["clientPort"])
        raise KeyError(server_id)

    def start(self) -> None:
        """``pomelo-twisted start --app GAME`` in the foreground, output to master.log."""
        self._log_file = self.master_log.open("wb")
        self.process = subprocess.Popen(
            dying_with_parent(
                [
                    sys.executable,
                    "-m",
                    "pomelo_twisted.admin.cli",
                    "start",
                    "--app",
                    str(self.game),
                    *self.start_args,
                ]
            ),
            cwd=self.workdir,
            env={**_env(), **self.extra_env},
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str = "master") -> str:
        """The master's log, or a server's (``<game>/logs/<id>.log``)."""
        path = self.master_log if name == "master" else self.game / "logs" / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def server_ids(self) -> list[str]:
        """Every server id of the game's development section."""
        return [e["id"] for group in self.layout["servers"].values() for e in group]

    @inlineCallbacks
    def wait_for_log(self, pattern: str, timeout: float = START_TIMEOUT, name: str = "master"):  # type: ignore[no-untyped-def]
        """Fire once ``pattern`` (a regex) is in a log; fail after ``timeout`` seconds."""
        deadline = reactor.seconds() + timeout
        while reactor.seconds() < deadline:
            if re.search(pattern, self.log(name)):
                return
            if self.process is not None and self.process.poll() is not None and name == "master":
                break
            yield deferLater(reactor, 0.05, lambda: None)
        raise RuntimeError(
            f"{pattern!r} not in the {name} log after {timeout:g} s:\n{self.log(name)}"
        )

    def wait_started(self) -> Any:
        """Fire once the master logged that every server is up."""
        return self.wait_for_log(re.escape(STARTED))

    @inlineCallbacks
    def cli(self, *args: str):  # type: ignore[no-untyped-def]
        """Run ``pomelo-twisted ARGS --app GAME``; fires with (stdout, stderr, exit code)."""
        out, err, code = yield getProcessOutputAndValue(
            sys.executable,
            ["-m", "pomelo_twisted.admin.cli", *args, "--app", str(self.game)],
            env=_env(),
            path=str(self.workdir),
            reactor=reactor,
        )
        return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code

    @inlineCallbacks
    def wait_exit(self, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        """Fire with the master's exit code once it has exited."""
        assert self.process is not None
        deadline = reactor.seconds() + timeout
        while self.process.poll() is None:
            if reactor.seconds() >= deadline:
                raise RuntimeError(f"the master still runs after {timeout:g} s:\n{self.log()}")
            yield deferLater(reactor, 0.05, lambda: None)
        return self.process.returncode

    def tracebacks(self) -> dict[str, list[str]]:
        """Log entries holding a traceback, per log that has any."""
        found = {}
        for name in ["master", *self.server_ids()]:
            entries = traceback_entries(self.log(name))
            if entries:
                found[name] = entries
        return found

    def stop(self) -> None:
        """Kill whatever is left of the process group and remove the folder."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(15)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        shutil.rmtree(self.workdir, ignore_errors=True)


class ClusterCase(TestCase):
    """A trial TestCase whose tests start the example game's cluster (stopped at cleanup)."""

    timeout = 120

    @inlineCallbacks
    def started(self, **options: Any) -> Any:
        """A started :class:`ClusterProcess` (``options`` for its constructor)."""
        cluster = ClusterProcess(**options)
        self.addCleanup(cluster.stop)
        cluster.start()
        yield cluster.wait_started()
        return cluster

    @inlineCallbacks
    def client(self, cluster: ClusterProcess, connector: str, uid: str, rid: str) -> Any:
        """A client of ``connector`` logged in as ``uid`` in room ``rid`` (closed at cleanup)."""
        port = cluster.client_port(connector)
        client: PomeloClient = yield connect(reactor, f"tcp:127.0.0.1:{port}", timeout=5.0)
        self.addCleanup(client.close)
        reply = yield client.request(ENTRY, {"uid": uid, "rid": rid})
        self.assertEqual(reply, {"code": 200, "uid": uid})
        return client
