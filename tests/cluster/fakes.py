"""Fakes shared by the master and monitor tests.

- :class:`ProcessReactor`: a ``MemoryReactorClock`` (time, in-memory listening)
  with a recording ``spawnProcess`` whose processes the test ends itself;
- :class:`FakeMind`: a server's PB mind as the master sees it, recording
  ``callRemote`` calls and answering what the test decides;
- :func:`write_game`: a temporary game folder with two connectors and two chat
  servers (the chat servers have ``auto-restart``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.rpc.payload import unpack_plain

__all__ = [
    "MASTER_PORT",
    "SECRET",
    "SERVERS",
    "FakeMind",
    "FakeProcess",
    "ProcessReactor",
    "Spawned",
    "write_game",
]

#: The cluster secret of the temporary game.
SECRET = b"the-cluster-secret"

MASTER_PORT = 3005

SERVERS: dict[str, list[dict[str, Any]]] = {
    "connector": [
        {
            "id": "connector-1",
            "host": "127.0.0.1",
            "port": 4150,
            "clientPort": 3010,
            "frontend": True,
        },
        {
            "id": "connector-2",
            "host": "127.0.0.1",
            "port": 4151,
            "clientPort": 3011,
            "frontend": True,
        },
    ],
    "chat": [
        {"id": "chat-1", "host": "127.0.0.1", "port": 4250, "auto-restart": True},
        {"id": "chat-2", "host": "127.0.0.1", "port": 4251, "auto-restart": True},
    ],
}


def write_game(test: SynchronousTestCase) -> Path:
    """A game folder (config/servers.json, config/master.json) removed after ``test``."""
    base = Path(tempfile.mkdtemp(prefix="pomelo-cluster-"))
    test.addCleanup(shutil.rmtree, base, ignore_errors=True)
    config = base / "config"
    config.mkdir()
    master = {
        "id": "master-server-1",
        "host": "127.0.0.1",
        "port": MASTER_PORT,
        "secret": SECRET.decode(),
    }
    (config / "servers.json").write_text(json.dumps({"development": SERVERS}))
    (config / "master.json").write_text(json.dumps({"development": master}))
    return base


class FakeProcess:
    """The transport of a fake spawn: records signals, ends when the test says."""

    def __init__(self, protocol: ProcessProtocol, pid: int) -> None:
        self.protocol = protocol
        self.pid = pid
        self.signals: list[str] = []
        self.ended = False
        #: When set, signals fail as if the process had exited already (a race).
        self.refuse_signals = False

    def signalProcess(self, signal: str) -> None:  # noqa: N802 (Twisted's name)
        if self.ended or self.refuse_signals:
            raise ProcessExitedAlready()
        self.signals.append(signal)

    def exit(self, code: int = 0) -> None:
        """End the process with ``code`` (ProcessDone for 0)."""
        self._end(ProcessDone(0) if code == 0 else ProcessTerminated(exitCode=code))

    def die(self, signal: int) -> None:
        """End the process by ``signal``."""
        self._end(ProcessTerminated(signal=signal))

    def _end(self, reason: Exception) -> None:
        self.ended = True
        self.protocol.processEnded(Failure(reason))


@dataclass
class Spawned:
    """One recorded spawnProcess call."""

    executable: str
    args: list[str]
    path: str | None
    process: FakeProcess

    @property
    def server_id(self) -> str:
        """The value of ``--id`` in the argv."""
        return self.args[self.args.index("--id") + 1]


class ProcessReactor(MemoryReactorClock):
    """A MemoryReactorClock with a recording spawnProcess (IReactorProcess)."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[Spawned] = []
        self._next_pid = 100

    def spawnProcess(  # noqa: N802 (Twisted's name)
        self,
        processProtocol: ProcessProtocol,  # noqa: N803 (Twisted's name)
        executable: str,
        args: list[str],
        env: Mapping[str, str] | None = None,
        path: str | None = None,
        uid: int | None = None,
        gid: int | None = None,
        usePTY: bool = False,  # noqa: N803 (Twisted's name)
        childFDs: dict[int, Any] | None = None,  # noqa: N803 (Twisted's name)
    ) -> FakeProcess:
        self._next_pid += 1
        process = FakeProcess(processProtocol, self._next_pid)
        processProtocol.makeConnection(process)
        self.spawned.append(Spawned(executable, list(args), path, process))
        return process

    def spawned_ids(self) -> list[str]:
        """The ``--id`` of every spawn, in order."""
        return [spawn.server_id for spawn in self.spawned]

    def process(self, server_id: str) -> FakeProcess:
        """The latest process spawned for ``server_id``."""
        return [s.process for s in self.spawned if s.server_id == server_id][-1]

    def alive(self) -> list[str]:
        """The ids whose latest process has not ended, sorted."""
        latest = {spawn.server_id: spawn.process for spawn in self.spawned}
        return sorted(sid for sid, process in latest.items() if not process.ended)


class FakeMind:
    """A server's mind as the master holds it: ``callRemote`` is recorded.

    ``answers[method](*args)`` gives the result of a call (a Deferred); by
    default every call succeeds with None at once.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.answers: dict[str, Callable[..., Deferred[Any]]] = {}

    def callRemote(self, method: str, *args: Any) -> Deferred[Any]:  # noqa: N802 (PB's name)
        self.calls.append((method, args))
        answer = self.answers.get(method)
        return succeed(None) if answer is None else answer(*args)

    def methods(self) -> list[str]:
        """The names of the methods called, in order."""
        return [method for method, _ in self.calls]

    def events(self) -> list[tuple[str, str]]:
        """The membership events received: (event, server id), in order."""
        events = []
        for method, args in self.calls:
            if method == "membership":
                data = unpack_plain(args[0])
                events.append((data["event"], data["server"]["id"]))
        return events

    def payloads(self) -> list[dict[str, Any]]:
        """The decoded membership payloads, in order."""
        return [unpack_plain(args[0]) for method, args in self.calls if method == "membership"]
