"""The Supervisor: spawning, backoff restarts and stopping of server processes.

Almost everything runs on a ``Clock`` with a fake ``spawnProcess``; the test
ends a fake process by delivering ``processEnded`` itself. One test spawns a
real Python child to prove the log-file plumbing.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.cluster.supervisor import ProcessSpec, Supervisor

from .fakes import FakeProcess


def temp_dir(test: SynchronousTestCase) -> Path:
    """A fresh folder removed after ``test`` (mktemp would write into the repo under pytest)."""
    path = Path(tempfile.mkdtemp(prefix="pomelo-supervisor-"))
    test.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


@dataclass
class SpawnCall:
    """One recorded spawnProcess call, with what its fds pointed at during the call."""

    protocol: ProcessProtocol
    executable: str
    args: list[str]
    env: Mapping[str, str] | None
    path: str | None
    child_fds: dict[int, Any]
    fd_stats: dict[int, os.stat_result]
    process: FakeProcess


class FakeReactor(Clock):
    """A Clock with a recording spawnProcess (IReactorTime + IReactorProcess)."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[SpawnCall] = []
        self.fail_next: Exception | None = None
        self.on_spawn_call: Any = None
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
        if self.on_spawn_call is not None:
            self.on_spawn_call()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        fds = dict(childFDs or {})
        stats = {child: os.fstat(fd) for child, fd in fds.items() if isinstance(fd, int)}
        self._next_pid += 1
        process = FakeProcess(processProtocol, self._next_pid)
        processProtocol.makeConnection(process)
        self.spawned.append(
            SpawnCall(processProtocol, executable, list(args), env, path, fds, stats, process)
        )
        return process

    @property
    def last(self) -> FakeProcess:
        """The most recently spawned process."""
        return self.spawned[-1].process

    def pending_delays(self) -> list[float]:
        """Seconds from now to each scheduled call."""
        return [call.getTime() - self.seconds() for call in self.getDelayedCalls()]


class SupervisorTestCase(SynchronousTestCase):
    """A fake reactor, a supervisor on it, and a temporary log folder."""

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.supervisor = Supervisor(self.reactor)
        self.logs = temp_dir(self) / "logs"
        self.spawns: list[tuple[str, int]] = []
        self.exits: list[tuple[str, int | None, int | None, bool]] = []
        self.supervisor.on_spawn = lambda sid, pid: self.spawns.append((sid, pid))
        self.supervisor.on_exit = lambda *args: self.exits.append(args)

    def make_spec(self, server_id: str = "s1", **kwargs: Any) -> ProcessSpec:
        """A spec for a pretend game server logging into the temp folder."""
        fields: dict[str, Any] = {
            "server_id": server_id,
            "executable": "/usr/bin/game",
            "args": ("game", "--id", server_id),
            "log_path": self.logs / f"{server_id}.log",
        }
        fields.update(kwargs)
        return ProcessSpec(**fields)

    def results(self, d: Deferred[Any]) -> list[Any]:
        """A list that receives the result of ``d`` when it fires."""
        box: list[Any] = []
        d.addCallback(box.append)
        return box


class SpawnTests(SupervisorTestCase):
    """start() and what it hands spawnProcess."""

    def test_spawn_arguments(self) -> None:
        """start() passes executable, argv list, env, cwd and stdin/out/err fds, returns the pid."""
        spec = self.make_spec(env={"A": "1"}, path="/srv/game")
        pid = self.supervisor.start(spec)
        [call] = self.reactor.spawned
        self.assertEqual(call.executable, "/usr/bin/game")
        self.assertEqual(call.args, ["game", "--id", "s1"])
        self.assertEqual(call.env, {"A": "1"})
        self.assertEqual(call.path, "/srv/game")
        self.assertEqual(sorted(call.child_fds), [0, 1, 2])
        self.assertEqual(call.child_fds[1], call.child_fds[2])
        self.assertTrue(os.path.samestat(call.fd_stats[0], os.stat(os.devnull)))
        self.assertTrue(os.path.samestat(call.fd_stats[1], os.stat(spec.log_path)))
        self.assertIsInstance(call.protocol, ProcessProtocol)
        self.assertEqual(pid, call.process.pid)
        self.assertEqual(self.supervisor.pid("s1"), pid)
        self.assertEqual(self.supervisor.running(), ["s1"])
        self.assertEqual(self.supervisor.spec("s1"), spec)

    def test_fds_closed_in_parent(self) -> None:
        """The log and devnull fds are closed in the parent once spawnProcess returns."""
        self.supervisor.start(self.make_spec())
        for fd in set(self.reactor.spawned[0].child_fds.values()):
            self.assertRaises(OSError, os.fstat, fd)

    def test_log_line_before_spawn(self) -> None:
        """A 'starting' line is appended to the log (parents created) before the spawn."""
        seen: list[str] = []
        spec = self.make_spec()
        self.reactor.on_spawn_call = lambda: seen.append(spec.log_path.read_text())
        self.reactor.advance(5)
        self.supervisor.start(spec)
        expected = "--- 1970-01-01T00:00:05+00:00 supervisor: starting s1: game --id s1 ---\n"
        self.assertEqual(seen, [expected])
        self.assertEqual(self.supervisor.started_at("s1"), 5.0)

    def test_env_none_copies_environ(self) -> None:
        """env=None hands the child a copy of os.environ, not os.environ itself."""
        self.supervisor.start(self.make_spec())
        env = self.reactor.spawned[0].env
        self.assertEqual(env, dict(os.environ))
        self.assertIsNot(env, os.environ)

    def test_start_twice_raises(self) -> None:
        """start() of an id that is running or has a restart scheduled raises ValueError."""
        spec = self.make_spec(auto_restart=True)
        self.supervisor.start(spec)
        self.assertRaises(ValueError, self.supervisor.start, spec)
        self.reactor.last.exit(1)
        self.assertRaises(ValueError, self.supervisor.start, spec)
        self.assertEqual(len(self.reactor.spawned), 1)

    def test_on_spawn_callback(self) -> None:
        """on_spawn hears (server_id, pid) after each spawn, automatic ones included."""
        first = self.supervisor.start(self.make_spec(auto_restart=True))
        self.reactor.last.exit(1)
        self.reactor.advance(0.5)
        self.assertEqual(self.spawns, [("s1", first), ("s1", self.reactor.last.pid)])

    def test_spawn_error_propagates(self) -> None:
        """A failing spawnProcess raises from start() and leaves nothing running."""
        self.reactor.fail_next = OSError("no such file")
        self.assertRaises(OSError, self.supervisor.start, self.make_spec())
        self.assertEqual(self.supervisor.running(), [])
        self.assertEqual(self.spawns, [])

    def test_rejects_zero_min_delay(self) -> None:
        """A non-positive min_delay (a tight restart loop) is refused."""
        self.assertRaises(ValueError, Supervisor, self.reactor, min_delay=0)


class RestartPolicyTests(SupervisorTestCase):
    """Automatic restarts and their exponential backoff."""

    def test_backoff_sequence(self) -> None:
        """Quick deaths wait 0.5, 1, 2, 4... seconds, capped at max_delay."""
        self.supervisor = Supervisor(self.reactor, max_delay=5.0)
        self.supervisor.start(self.make_spec(auto_restart=True))
        delays = []
        for _ in range(6):
            self.reactor.advance(0.25)  # a quick death; binary-exact so delays compare exactly
            self.reactor.last.exit(1)
            [delay] = self.reactor.pending_delays()
            delays.append(delay)
            self.reactor.advance(delay)
        self.assertEqual(delays, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0])
        self.assertEqual(len(self.reactor.spawned), 7)
        self.assertEqual(self.supervisor.restarts("s1"), 6)
        self.assertEqual(self.supervisor.started_at("s1"), self.reactor.seconds())

    def test_restart_waits_for_delay(self) -> None:
        """Nothing is spawned before the backoff delay has passed."""
        self.supervisor.start(self.make_spec(auto_restart=True))
        self.reactor.last.exit(0)
        self.reactor.advance(0.49)
        self.assertEqual(len(self.reactor.spawned), 1)
        self.assertEqual(self.supervisor.running(), [])
        self.reactor.advance(0.01)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.assertEqual(self.supervisor.running(), ["s1"])

    def test_stable_run_resets_backoff(self) -> None:
        """A process that lived stable_after seconds is restarted after min_delay again."""
        self.supervisor.start(self.make_spec(auto_restart=True))
        for expected in (0.5, 1.0, 2.0):
            self.reactor.last.exit(1)
            self.assertEqual(self.reactor.pending_delays(), [expected])
            self.reactor.advance(expected)
        self.reactor.advance(10.0)
        self.reactor.last.exit(1)
        self.assertEqual(self.reactor.pending_delays(), [0.5])

    def test_no_restart_without_auto_restart(self) -> None:
        """A non-zero exit without auto_restart is logged as an error and not restarted."""
        self.supervisor.start(self.make_spec())
        with capturedLogs() as events:
            self.reactor.last.exit(3)
        self.reactor.advance(100)
        self.assertEqual(len(self.reactor.spawned), 1)
        self.assertEqual(self.exits, [("s1", 3, None, False)])
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual([(e["server"], e["code"]) for e in errors], [("s1", 3)])

    def test_no_restart_after_stop(self) -> None:
        """A process ended by stop() stays down."""
        self.supervisor.start(self.make_spec(auto_restart=True))
        self.supervisor.stop("s1")
        self.reactor.last.exit(0)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.supervisor.restarts("s1"), 0)

    def test_no_restart_after_kill(self) -> None:
        """kill() sends SIGKILL at once, fires with None, and nothing restarts."""
        self.supervisor.start(self.make_spec(auto_restart=True))
        result = self.results(self.supervisor.kill("s1"))
        self.assertEqual(self.reactor.last.signals, ["KILL"])
        self.reactor.last.die(9)
        self.assertEqual(result, [None])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.exits, [("s1", None, 9, True)])

    def test_no_restart_after_shutting_down(self) -> None:
        """shutting_down() cancels pending restarts and prevents new ones."""
        self.supervisor.start(self.make_spec("a", auto_restart=True))
        self.supervisor.start(self.make_spec("b", auto_restart=True))
        self.reactor.spawned[0].process.exit(1)
        self.supervisor.shutting_down()
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.reactor.spawned[1].process.exit(1)
        self.reactor.advance(100)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.assertEqual(self.supervisor.running(), [])

    def test_failed_restart_retries_with_backoff(self) -> None:
        """A restart whose spawn fails is retried later with a longer delay."""
        self.supervisor.start(self.make_spec(auto_restart=True))
        self.reactor.last.exit(1)
        self.reactor.fail_next = OSError("fork failed")
        self.reactor.advance(0.5)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(self.reactor.pending_delays(), [1.0])
        self.reactor.advance(1.0)
        self.assertEqual(self.supervisor.running(), ["s1"])
        self.assertEqual(self.supervisor.restarts("s1"), 1)


class StopTests(SupervisorTestCase):
    """stop(), kill(), restart() and stop_all()."""

    def test_stop_sends_term_and_fires_with_code(self) -> None:
        """stop() sends SIGTERM and fires with the exit code when the process ends."""
        self.supervisor.start(self.make_spec())
        result = self.results(self.supervisor.stop("s1"))
        self.assertEqual(self.reactor.last.signals, ["TERM"])
        self.assertEqual(result, [])
        self.reactor.last.exit(0)
        self.assertEqual(result, [0])
        self.assertEqual(self.supervisor.running(), [])
        self.assertIsNone(self.supervisor.pid("s1"))

    def test_stop_escalates_to_kill(self) -> None:
        """stop() sends SIGKILL once the timeout passes with the process still alive."""
        self.supervisor.start(self.make_spec())
        result = self.results(self.supervisor.stop("s1", timeout=3))
        self.reactor.advance(2.9)
        self.assertEqual(self.reactor.last.signals, ["TERM"])
        self.reactor.advance(0.1)
        self.assertEqual(self.reactor.last.signals, ["TERM", "KILL"])
        self.reactor.last.die(9)
        self.assertEqual(result, [None])

    def test_stop_default_timeout(self) -> None:
        """Without a timeout argument stop() waits stop_timeout before SIGKILL."""
        self.supervisor = Supervisor(self.reactor, stop_timeout=7)
        self.supervisor.start(self.make_spec())
        self.supervisor.stop("s1")
        self.assertEqual(self.reactor.pending_delays(), [7])

    def test_timely_exit_cancels_kill(self) -> None:
        """A process that ends after SIGTERM leaves no SIGKILL timer behind."""
        self.supervisor.start(self.make_spec())
        self.supervisor.stop("s1")
        self.reactor.last.exit(0)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_stop_waits_when_exit_is_in_flight(self) -> None:
        """stop() on a process already exiting (signal refused) still fires on its end."""
        self.supervisor.start(self.make_spec())
        self.reactor.last.refuse_signals = True
        result = self.results(self.supervisor.stop("s1"))
        self.assertEqual(result, [])
        self.reactor.last.exit(2)
        self.assertEqual(result, [2])

    def test_stop_cancels_pending_restart(self) -> None:
        """stop() during the backoff cancels the restart and fires at once with None."""
        self.supervisor.start(self.make_spec(auto_restart=True))
        self.reactor.last.exit(1)
        result = self.results(self.supervisor.stop("s1"))
        self.assertEqual(result, [None])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.reactor.advance(100)
        self.assertEqual(len(self.reactor.spawned), 1)

    def test_stop_of_ended_process(self) -> None:
        """stop() of a process that is already gone fires with its last exit code."""
        self.supervisor.start(self.make_spec())
        self.reactor.last.exit(4)
        self.assertEqual(self.results(self.supervisor.stop("s1")), [4])
        self.assertEqual(self.reactor.last.signals, [])

    def test_unknown_id_raises(self) -> None:
        """stop(), kill() and restart() of an unknown id raise KeyError synchronously."""
        self.assertRaises(KeyError, self.supervisor.stop, "nope")
        self.assertRaises(KeyError, self.supervisor.kill, "nope")
        self.assertRaises(KeyError, self.supervisor.restart, "nope")

    def test_restart_gives_new_pid(self) -> None:
        """restart() stops, spawns the same spec again and fires with the new pid."""
        spec = self.make_spec()
        old = self.supervisor.start(spec)
        result = self.results(self.supervisor.restart("s1"))
        self.assertEqual(self.reactor.last.signals, ["TERM"])
        self.reactor.last.exit(0)
        [new] = result
        self.assertNotEqual(new, old)
        self.assertEqual(self.supervisor.pid("s1"), new)
        self.assertEqual(self.reactor.spawned[1].args, list(spec.args))
        self.assertEqual(self.supervisor.restarts("s1"), 0)

    def test_stop_all_waits_for_all(self) -> None:
        """stop_all() signals every live server and fires only when all have ended."""
        self.supervisor.start(self.make_spec("a"))
        self.supervisor.start(self.make_spec("b"))
        result = self.results(self.supervisor.stop_all())
        a, b = (call.process for call in self.reactor.spawned)
        self.assertEqual((a.signals, b.signals), (["TERM"], ["TERM"]))
        a.exit(0)
        self.assertEqual(result, [])
        b.exit(0)
        self.assertEqual(result, [None])

    def test_stop_all_selected_ids(self) -> None:
        """stop_all(ids) stops only the named servers."""
        self.supervisor.start(self.make_spec("a"))
        self.supervisor.start(self.make_spec("b"))
        self.supervisor.stop_all(["b"], timeout=1)
        a, b = (call.process for call in self.reactor.spawned)
        self.assertEqual((a.signals, b.signals), ([], ["TERM"]))
        self.assertEqual(self.reactor.pending_delays(), [1])

    def test_on_exit_expected_flag(self) -> None:
        """on_exit reports expected=False for a crash and True for a stop."""
        self.supervisor.start(self.make_spec("a"))
        self.supervisor.start(self.make_spec("b"))
        self.reactor.spawned[0].process.die(11)
        self.supervisor.stop("b")
        self.reactor.spawned[1].process.exit(0)
        self.assertEqual(self.exits, [("a", None, 11, False), ("b", 0, None, True)])

    def test_forget(self) -> None:
        """forget() drops a stopped server's spec and counters, but refuses a live one."""
        self.supervisor.start(self.make_spec())
        self.assertRaises(ValueError, self.supervisor.forget, "s1")
        self.reactor.last.exit(0)
        self.supervisor.forget("s1")
        self.assertIsNone(self.supervisor.spec("s1"))
        self.assertIsNone(self.supervisor.started_at("s1"))
        self.assertRaises(KeyError, self.supervisor.stop, "s1")


class RealProcessTests(TestCase):
    """One real child process, spawned by the real reactor."""

    def test_output_goes_to_log(self) -> Deferred[None]:
        """A real child's stdout and stderr land in its log after the supervisor's line."""
        from twisted.internet import reactor

        log_path = temp_dir(self) / "nested" / "hello.log"
        code = "import sys; print('hello'); sys.stderr.write('oops\\n')"
        spec = ProcessSpec("hello-1", sys.executable, (sys.executable, "-c", code), log_path)
        supervisor = Supervisor(reactor)
        ended: Deferred[tuple[str, int | None, int | None, bool]] = Deferred()
        supervisor.on_exit = lambda *args: ended.callback(args)
        supervisor.start(spec)

        def check(args: tuple[str, int | None, int | None, bool]) -> None:
            self.assertEqual(args, ("hello-1", 0, None, False))
            text = log_path.read_text()
            self.assertIn("supervisor: starting hello-1:", text)
            self.assertIn("hello\n", text)
            self.assertIn("oops\n", text)

        ended.addTimeout(30, reactor)
        return ended.addCallback(check)
