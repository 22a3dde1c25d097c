"""Supervisor: the master's manager of the game-server OS processes.

The master runs one operating-system process per game server. A
:class:`ProcessSpec` says how to spawn one (argv, environment, working
directory, log file, whether to bring it back when it dies); the
:class:`Supervisor` spawns it through the reactor's ``IReactorProcess``, appends
its stdout and stderr to the log file (stdin is ``/dev/null``), and watches it
end.

When a process dies on its own and its spec has ``auto_restart``, it is spawned
again after a delay that doubles with each consecutive quick death (one that
lived less than ``stable_after`` seconds), from ``min_delay`` up to
``max_delay``: a crash loop is slowed down, never spun. A run that lasted at
least ``stable_after`` resets the backoff. Exits the supervisor caused
(:meth:`Supervisor.stop`, :meth:`Supervisor.kill`) are *expected* and never
lead to a restart, and after :meth:`Supervisor.shutting_down` nothing restarts
automatically any more.

``stop`` is polite first (SIGTERM) and firm later (SIGKILL after a timeout).
All timing goes through the reactor passed in (``IReactorTime``), so tests
drive it with a ``Clock`` and a fake ``spawnProcess``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.error import ProcessExitedAlready
from twisted.internet.interfaces import IDelayedCall, IProcessTransport
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..interfaces import IServerReactor
from ..logs.jsonlog import json_line

__all__ = ["ProcessSpec", "Supervisor"]

log = Logger()

# Exponent cap for the backoff: far past any sane max_delay, and 2.0**62 cannot overflow.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one server process.

    ``args`` is the full argv, ``argv[0]`` included, as ``spawnProcess`` wants
    it. The child's stdout and stderr are appended to ``log_path`` (its parent
    directories are created), after a line saying so (a JSON line when ``log_format``
    is ``json``, as the server's own). ``env=None`` gives the child a copy of
    ``os.environ`` taken at spawn time; ``path`` is its working directory.
    """

    server_id: str
    executable: str
    args: tuple[str, ...]
    log_path: Path
    env: Mapping[str, str] | None = None
    path: str | None = None
    auto_restart: bool = False
    log_format: str = "text"


class _ChildProtocol(ProcessProtocol):
    """Reports the end of one spawned process to its supervisor."""

    def __init__(self, ended: Callable[[_ChildProtocol, int | None, int | None], None]) -> None:
        self._ended = ended

    def processEnded(self, reason: Failure) -> None:
        """Pass on the exit code and signal (ProcessDone or ProcessTerminated)."""
        value = reason.value
        self._ended(self, getattr(value, "exitCode", None), getattr(value, "signal", None))


@dataclass
class _Entry:
    """Everything the supervisor knows about one server id."""

    spec: ProcessSpec
    protocol: _ChildProtocol | None = None
    transport: IProcessTransport | None = None
    pid: int | None = None
    started_at: float | None = None
    restarts: int = 0
    quick_deaths: int = 0
    last_exit: int | None = None
    stopping: bool = False
    pending: IDelayedCall | None = None
    kill_timer: IDelayedCall | None = None
    waiters: list[Deferred[int | None]] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.transport is not None


class Supervisor:
    """Spawns, watches, restarts and stops the server processes of one master.

    ``reactor`` must provide ``IReactorProcess`` and ``IReactorTime``. Set
    ``on_spawn`` to be told ``(server_id, pid)`` after each spawn, and
    ``on_exit`` to be told ``(server_id, exit_code, signal, expected)`` when a
    process ends (``expected`` is true when the supervisor stopped or killed it).
    """

    def __init__(
        self,
        reactor: IServerReactor,
        *,
        min_delay: float = 0.5,
        max_delay: float = 30.0,
        stable_after: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        if min_delay <= 0:
            raise ValueError("min_delay must be positive (no tight restart loops)")
        if max_delay < min_delay:
            raise ValueError("max_delay must be at least min_delay")
        self._reactor = reactor
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._stable_after = stable_after
        self._stop_timeout = stop_timeout
        self._entries: dict[str, _Entry] = {}
        self._shutting_down = False
        self.on_spawn: Callable[[str, int], None] | None = None
        self.on_exit: Callable[[str, int | None, int | None, bool], None] | None = None

    @property
    def min_delay(self) -> float:
        """The shortest wait before an automatic restart, in seconds."""
        return self._min_delay

    # -- control ---------------------------------------------------------------

    def start(self, spec: ProcessSpec) -> int:
        """Spawn ``spec`` now and return its pid; ValueError if that id is already live."""
        entry = self._entries.get(spec.server_id)
        if entry is not None and (entry.alive or entry.pending is not None):
            raise ValueError(f"server {spec.server_id!r} is already running or scheduled")
        if entry is None:
            entry = self._entries[spec.server_id] = _Entry(spec)
        else:
            entry.spec = spec
        entry.quick_deaths = 0
        return self._spawn(entry)

    def stop(self, server_id: str, timeout: float | None = None) -> Deferred[int | None]:
        """SIGTERM, then SIGKILL after ``timeout``; fires with the exit code once ended.

        The server is not restarted afterwards. A pending restart is cancelled
        and the result fires at once with None; a process already gone gives its
        last exit code. Unknown ids raise KeyError.
        """
        entry, waiter = self._await_end(server_id)
        if entry is None:
            return waiter
        if not entry.stopping:
            entry.stopping = True
            log.info("stopping server {server} (pid {pid})", server=server_id, pid=entry.pid)
            self._signal(entry, "TERM")
        if entry.kill_timer is None and entry.alive:
            delay = self._stop_timeout if timeout is None else timeout
            entry.kill_timer = self._reactor.callLater(delay, self._stop_timed_out, entry)
        return waiter

    def _await_end(self, server_id: str) -> tuple[_Entry | None, Deferred[int | None]]:
        """A Deferred of the exit code of ``server_id``, with its entry while its process
        still has to end (None: the Deferred has fired, as a pending restart was
        cancelled or the process is gone). Unknown ids raise KeyError."""
        entry = self._entries[server_id]
        if self._cancel_pending(entry):
            return None, succeed(None)
        if not entry.alive:
            return None, succeed(entry.last_exit)
        waiter: Deferred[int | None] = Deferred()
        entry.waiters.append(waiter)
        return entry, waiter

    def expect_exit(self, server_id: str, timeout: float | None = None) -> Deferred[int | None]:
        """The server was told to exit by itself (a ``stop`` command it reads from etcd):
        its exit is expected (no restart); if it is still alive after ``timeout`` it gets
        :meth:`stop`. Fires like :meth:`stop`. Unknown ids raise KeyError."""
        entry, waiter = self._await_end(server_id)
        if entry is None:
            return waiter
        if not entry.stopping:
            entry.stopping = True
            log.info("server {server} (pid {pid}) is to exit", server=server_id, pid=entry.pid)
            delay = self._stop_timeout if timeout is None else timeout
            entry.kill_timer = self._reactor.callLater(delay, self._exit_overdue, entry, delay)
        return waiter

    def _exit_overdue(self, entry: _Entry, delay: float) -> None:
        entry.kill_timer = None
        if entry.alive:
            log.warn(
                "server {server} (pid {pid}) did not exit within {delay}s; stopping it",
                server=entry.spec.server_id,
                pid=entry.pid,
                delay=delay,
            )
            entry.stopping = False
            self.stop(entry.spec.server_id)

    def kill(self, server_id: str) -> Deferred[int | None]:
        """SIGKILL at once; fires like :meth:`stop`, and no restart follows."""
        entry, waiter = self._await_end(server_id)
        if entry is None:
            return waiter
        entry.stopping = True
        self._cancel_kill_timer(entry)
        log.info("killing server {server} (pid {pid})", server=server_id, pid=entry.pid)
        self._signal(entry, "KILL")
        return waiter

    def restart(self, server_id: str) -> Deferred[int]:
        """Stop the server as :meth:`stop` does, then spawn its spec again; fires with the pid."""
        stopped = self.stop(server_id)

        def spawn_again(_: int | None) -> int:
            entry = self._entries.get(server_id)
            if entry is None:
                raise KeyError(server_id)
            if entry.alive or entry.pending is not None:
                raise ValueError(f"server {server_id!r} was started again meanwhile")
            entry.quick_deaths = 0
            return self._spawn(entry)

        return stopped.addCallback(spawn_again)

    def stop_all(
        self, server_ids: Iterable[str] | None = None, timeout: float | None = None
    ) -> Deferred[None]:
        """Stop several servers (all live or scheduled ones by default) in parallel."""
        if server_ids is None:
            server_ids = [
                sid for sid, e in sorted(self._entries.items()) if e.alive or e.pending is not None
            ]
        stops = [self.stop(sid, timeout) for sid in server_ids]
        done: Deferred[Any] = DeferredList(stops, consumeErrors=True)
        return done.addCallback(lambda _: None)

    def shutting_down(self) -> None:
        """From now on nothing restarts automatically; pending restarts are cancelled."""
        self._shutting_down = True
        for entry in self._entries.values():
            self._cancel_pending(entry)

    def forget(self, server_id: str) -> None:
        """Drop a stopped server's spec and counters (unknown ids are ignored)."""
        entry = self._entries.get(server_id)
        if entry is None:
            return
        if entry.alive or entry.pending is not None:
            raise ValueError(f"server {server_id!r} is still running or scheduled")
        del self._entries[server_id]

    # -- queries ---------------------------------------------------------------

    def pid(self, server_id: str) -> int | None:
        """The pid of the live process of ``server_id``, if any."""
        entry = self._entries.get(server_id)
        return entry.pid if entry is not None else None

    def running(self) -> list[str]:
        """The ids with a live process, sorted."""
        return sorted(sid for sid, entry in self._entries.items() if entry.alive)

    def started_at(self, server_id: str) -> float | None:
        """``reactor.seconds()`` at the last spawn of ``server_id``."""
        entry = self._entries.get(server_id)
        return entry.started_at if entry is not None else None

    def restarts(self, server_id: str) -> int:
        """How many automatic restarts ``server_id`` has had."""
        entry = self._entries.get(server_id)
        return entry.restarts if entry is not None else 0

    def spec(self, server_id: str) -> ProcessSpec | None:
        """The spec ``server_id`` was last started with."""
        entry = self._entries.get(server_id)
        return entry.spec if entry is not None else None

    # -- internals -------------------------------------------------------------

    def _spawn(self, entry: _Entry) -> int:
        spec = entry.spec
        env = dict(os.environ) if spec.env is None else dict(spec.env)
        now = self._reactor.seconds()
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        text = f"supervisor: starting {spec.server_id}: {shlex.join(spec.args)}"
        line = f"--- {stamp} {text} ---\n"
        if spec.log_format == "json":  # {text}: the command line may hold braces
            event = {"log_time": now, "log_level": LogLevel.info, "log_namespace": __name__}
            line = json_line(
                {**event, "log_format": "{text}", "text": text}, spec.server_id, "supervisor"
            )
        protocol = _ChildProtocol(self._ended)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log_file:
            log_file.write(line.encode("utf-8"))
            log_file.flush()
            devnull = os.open(os.devnull, os.O_RDONLY)
            try:
                transport = self._reactor.spawnProcess(
                    protocol,
                    spec.executable,
                    list(spec.args),
                    env,
                    spec.path,
                    childFDs={0: devnull, 1: log_file.fileno(), 2: log_file.fileno()},
                )
            finally:
                os.close(devnull)
        pid = int(transport.pid)
        entry.protocol = protocol
        entry.transport = transport
        entry.pid = pid
        entry.started_at = now
        entry.stopping = False
        log.info("started server {server} (pid {pid})", server=spec.server_id, pid=pid)
        if self.on_spawn is not None:
            try:
                self.on_spawn(spec.server_id, pid)
            except Exception:
                log.failure("on_spawn callback failed for {server}", server=spec.server_id)
        return pid

    def _ended(self, protocol: _ChildProtocol, code: int | None, signal: int | None) -> None:
        entry = next((e for e in self._entries.values() if e.protocol is protocol), None)
        if entry is None:
            return
        server_id = entry.spec.server_id
        lived = self._reactor.seconds() - (entry.started_at or 0.0)
        expected = entry.stopping
        entry.protocol = entry.transport = entry.pid = None
        entry.last_exit = code
        entry.stopping = False
        self._cancel_kill_timer(entry)
        if expected:
            log.info(
                "server {server} stopped (code {code}, signal {signal})",
                server=server_id,
                code=code,
                signal=signal,
            )
        elif entry.spec.auto_restart and not self._shutting_down:
            self._schedule_restart(entry, lived, code, signal)
        elif code != 0 or signal is not None:
            log.error(
                "server {server} died with code {code} (signal {signal}); not restarting",
                server=server_id,
                code=code,
                signal=signal,
            )
        else:
            log.info("server {server} exited with code 0", server=server_id)
        if self.on_exit is not None:
            try:
                self.on_exit(server_id, code, signal, expected)
            except Exception:
                log.failure("on_exit callback failed for {server}", server=server_id)
        waiters, entry.waiters = entry.waiters, []
        for waiter in waiters:
            waiter.callback(code)

    def _schedule_restart(
        self, entry: _Entry, lived: float, code: int | None, signal: int | None
    ) -> None:
        if lived >= self._stable_after:
            entry.quick_deaths = 0
            delay = self._min_delay
        else:
            exponent = min(entry.quick_deaths, _MAX_EXPONENT)
            delay = min(self._max_delay, self._min_delay * 2.0**exponent)
            entry.quick_deaths += 1
        log.warn(
            "server {server} exited with code {code} (signal {signal}); restarting in {delay:.1f}s",
            server=entry.spec.server_id,
            code=code,
            signal=signal,
            delay=delay,
        )
        entry.pending = self._reactor.callLater(delay, self._auto_restart, entry)

    def _auto_restart(self, entry: _Entry) -> None:
        entry.pending = None
        if self._shutting_down or self._entries.get(entry.spec.server_id) is not entry:
            return
        entry.restarts += 1
        try:
            self._spawn(entry)
        except Exception:
            entry.restarts -= 1
            log.failure("could not restart server {server}", server=entry.spec.server_id)
            self._schedule_restart(entry, 0.0, None, None)

    def _stop_timed_out(self, entry: _Entry) -> None:
        entry.kill_timer = None
        if entry.alive:
            log.warn(
                "server {server} (pid {pid}) ignored SIGTERM; sending SIGKILL",
                server=entry.spec.server_id,
                pid=entry.pid,
            )
            self._signal(entry, "KILL")

    def _signal(self, entry: _Entry, name: str) -> None:
        if entry.transport is None:
            return
        # ProcessExitedAlready: processEnded is on its way and will fire the waiters.
        with suppress(ProcessExitedAlready):
            entry.transport.signalProcess(name)

    def _cancel_pending(self, entry: _Entry) -> bool:
        if entry.pending is None:
            return False
        if entry.pending.active():
            entry.pending.cancel()
        entry.pending = None
        log.info("cancelled the pending restart of {server}", server=entry.spec.server_id)
        return True

    def _cancel_kill_timer(self, entry: _Entry) -> None:
        if entry.kill_timer is not None:
            if entry.kill_timer.active():
                entry.kill_timer.cancel()
            entry.kill_timer = None
