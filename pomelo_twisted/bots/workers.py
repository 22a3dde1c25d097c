"""Running a load test in W worker processes and merging what they measured.

Each worker (``python -m pomelo_twisted.bots.worker CONFIG``) runs the bots whose
index ``i`` has ``i % W == w`` on the run's common timetable, and writes JSON
lines on its stdout: ``{"progress": STATS}`` every second and ``{"final": STATS}``
at the end. The parent merges the latest snapshot of each worker for the live
progress line and the final ones for the report: histograms add, so the merged
percentiles are those of every sample.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..interfaces import IServerReactor
from .runner import Runner
from .scenario import Scenario
from .stats import Stats

__all__ = ["RunConfig", "WorkerFailed", "make_runner", "run_workers", "worker_indices"]

log = Logger()


@dataclass(frozen=True)
class RunConfig:
    """Everything a worker needs to run its share of the bots."""

    scenario: str
    target: str
    bots: int
    ramp_up: float
    duration: float
    rate: float | None
    seed: int
    request_timeout: float
    connect_timeout: float
    grace: float
    user: Any = None
    worker: int = 0
    workers: int = 1

    def to_json(self) -> str:
        """The config as one JSON argument."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        """Read :meth:`to_json`'s output."""
        return cls(**json.loads(text))

    def share(self, worker: int, workers: int) -> RunConfig:
        """This config for worker ``worker`` of ``workers`` (the rate split evenly)."""
        rate = None if self.rate is None else self.rate / workers
        data = asdict(self) | {"worker": worker, "workers": workers, "rate": rate}
        return RunConfig(**data)


def make_runner(
    reactor: IServerReactor,
    config: RunConfig,
    scenario: Scenario,
    progress: Callable[[Runner], object] | None = None,
) -> Runner:
    """The Runner of ``config``'s bots (this worker's share) on ``reactor``."""
    return Runner(
        reactor,
        scenario,
        config.target,
        bots=config.bots,
        indices=worker_indices(config.bots, config.worker, config.workers),
        ramp_up=config.ramp_up,
        duration=config.duration,
        rate=config.rate,
        seed=config.seed,
        request_timeout=config.request_timeout,
        connect_timeout=config.connect_timeout,
        grace=config.grace,
        user=config.user,
        progress=progress,
    )


def worker_indices(bots: int, worker: int, workers: int) -> list[int]:
    """The bot indices worker ``worker`` of ``workers`` runs."""
    return list(range(worker, bots, workers))


class WorkerFailed(Exception):
    """A worker process ended without its final figures."""


class _WorkerProtocol(ProcessProtocol):
    """Reads one worker's JSON lines; relays its stderr."""

    def __init__(self, worker: int, on_progress: Callable[[int, Stats], None]) -> None:
        self.worker = worker
        self.on_progress = on_progress
        self.buffer = b""
        self.final: Stats | None = None
        self.ended: Deferred[Stats] = Deferred()
        self.errors: list[str] = []

    def outReceived(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self._line(line)

    def _line(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            if "final" in message:
                self.final = Stats.from_dict(message["final"])
            elif "progress" in message:
                self.on_progress(self.worker, Stats.from_dict(message["progress"]))
        except (ValueError, TypeError) as exc:
            log.warn("worker {w}: unreadable line ({error})", w=self.worker, error=exc)

    def errReceived(self, data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        self.errors.append(text)
        sys.stderr.write(text)

    def processEnded(self, reason: Failure) -> None:
        if self.final is not None:
            self.ended.callback(self.final)
        else:
            code = getattr(reason.value, "exitCode", None)
            self.ended.errback(
                WorkerFailed(f"worker {self.worker} ended (exit {code}) without its figures")
            )


def run_workers(
    reactor: IServerReactor,
    config: RunConfig,
    workers: int,
    on_progress: Callable[[Stats], object] | None = None,
    interval: float = 1.0,
) -> Deferred[Stats]:
    """Run ``config`` in ``workers`` processes; the merged final stats.

    ``on_progress(merged)`` is called every ``interval`` seconds with the merge of
    each worker's latest snapshot (workers report at their own pace).
    """
    latest: dict[int, Stats] = {}

    def progressed(worker: int, stats: Stats) -> None:
        latest[worker] = stats

    def tick() -> None:
        if on_progress is not None and latest:
            merged = Stats()
            for each in latest.values():
                merged.merge(each)
            on_progress(merged)

    ticker = LoopingCall(tick)
    ticker.clock = reactor
    ticker.start(interval, now=False)

    ends = []
    for worker in range(workers):
        protocol = _WorkerProtocol(worker, progressed)
        argv = [
            sys.executable,
            "-m",
            "pomelo_twisted.bots.worker",
            config.share(worker, workers).to_json(),
        ]
        reactor.spawnProcess(protocol, sys.executable, argv, env=dict(os.environ))
        ends.append(protocol.ended)

    def merge(finals: list[Stats]) -> Stats:
        if ticker.running:
            ticker.stop()
        merged = Stats()
        for stats in finals:
            merged.merge(stats)
        return merged

    def failed(failure: Failure) -> Failure:
        if ticker.running:
            ticker.stop()
        return failure

    d: Deferred[list[Stats]] = gatherResults(ends, consumeErrors=True)
    return d.addCallbacks(merge, failed)
