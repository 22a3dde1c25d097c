"""run_workers with fake processes: JSON lines in, merged stats out."""

from __future__ import annotations

import json

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.bots import Stats
from pomelo_twisted.bots.workers import RunConfig, WorkerFailed, run_workers

from ..cluster.fakes import ProcessReactor

CONFIG = RunConfig("s.py", "tcp:127.0.0.1:1", 4, 0.0, 5.0, None, 1, 10.0, 10.0, 2.0)


def stats_with(route: str, *latencies: float) -> Stats:
    stats = Stats()
    for seconds in latencies:
        stats.record_response(route, seconds)
    return stats


def line(kind: str, stats: Stats) -> bytes:
    return json.dumps({kind: stats.to_dict()}).encode() + b"\n"


class RunWorkersTests(SynchronousTestCase):
    """The parent side of a multi-process run."""

    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.progress: list[Stats] = []
        self.done = run_workers(self.reactor, CONFIG, 2, self.progress.append)
        self.protocols = [spawn.process.protocol for spawn in self.reactor.spawned]

    def test_each_worker_gets_its_share(self) -> None:
        """Two worker processes are spawned, each with its index in the config argument."""
        configs = [RunConfig.from_json(spawn.args[-1]) for spawn in self.reactor.spawned]
        self.assertEqual([(c.worker, c.workers) for c in configs], [(0, 2), (1, 2)])
        self.assertEqual(self.reactor.spawned[0].args[1:3], ["-m", "pomelo_twisted.bots.worker"])

    def test_progress_merges_the_latest_snapshots_once_a_second(self) -> None:
        """Every second the latest snapshot of each worker is merged and reported once."""
        first, second = self.protocols
        first.outReceived(line("progress", stats_with("a", 0.001)))
        first.outReceived(line("progress", stats_with("a", 0.001, 0.002)))
        second.outReceived(line("progress", stats_with("a", 0.003))[:10])  # split line
        second.outReceived(line("progress", stats_with("a", 0.003))[10:])
        self.assertEqual(self.progress, [])
        self.reactor.advance(1.0)
        self.assertEqual([s.routes["a"].requests for s in self.progress], [3])

    def test_final_stats_merge_exactly(self) -> None:
        """The result is the merge of every worker's final stats (histograms added)."""
        first, second = self.protocols
        first.outReceived(line("final", stats_with("a", 0.001, 0.004)))
        second.outReceived(line("final", stats_with("a", 0.002, 0.003)))
        first.processEnded(Failure(ProcessDone(0)))
        self.assertNoResult(self.done)
        second.processEnded(Failure(ProcessDone(0)))
        merged = self.successResultOf(self.done)
        self.assertEqual(merged, stats_with("a", 0.001, 0.002, 0.003, 0.004))
        self.reactor.advance(5)
        self.assertEqual(self.progress, [])  # the ticker stopped

    def test_a_worker_without_final_figures_fails_the_run(self) -> None:
        """A worker that dies before its final line fails the run, naming it."""
        first, second = self.protocols
        first.outReceived(b"not json\n")
        first.processEnded(Failure(ProcessTerminated(exitCode=1)))
        second.outReceived(line("final", Stats()))
        second.processEnded(Failure(ProcessDone(0)))
        failure = self.failureResultOf(self.done)
        self.assertIsInstance(failure.value.subFailure.value, WorkerFailed)
        self.assertIn("worker 0 ended (exit 1)", str(failure.value.subFailure.value))
