"""``pomelo-twisted bot SCENARIO``: run a load test and report it.

Runs ``--bots`` bots of the scenario against ``--target`` for ``--duration``
seconds, starting them evenly over ``--ramp-up`` seconds, in this process or
across ``--workers`` processes (merged exactly), optionally paced to ``--rate``
requests/s in all. On a terminal a progress line is redrawn every second (quiet
otherwise). At the end: the text report, the JSON report (``--report FILE``),
and exit status 1 when a ``--fail-if`` threshold is crossed (2 for usage errors).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from twisted.internet.defer import Deferred, FirstError
from twisted.internet.interfaces import IReactorTime

from ..interfaces import IServerReactor
from .report import format_progress, format_report, summarize
from .scenario import ScenarioError, load_scenario
from .stats import Stats
from .thresholds import evaluate, parse_thresholds
from .workers import RunConfig, WorkerFailed, make_runner, run_workers

__all__ = ["add_parser", "config_from_args", "run"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bot`` command to the ``pomelo-twisted`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bot",
        help="run bots of a scenario against a server (a load test)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("scenario", metavar="SCENARIO", help="file.py[:name] or module[:name]")
    parser.add_argument(
        "--target", default="tcp:127.0.0.1:3010", help="client endpoint or ws:// URL"
    )
    parser.add_argument("--bots", type=_positive_int, default=10, help="number of bots (10)")
    parser.add_argument("--ramp-up", type=_seconds, default=0.0, help="seconds to start them all")
    parser.add_argument("--duration", type=_seconds, default=10.0, help="seconds the run lasts")
    parser.add_argument("--rate", type=float, default=None, help="requests/s over all bots")
    parser.add_argument("--workers", type=_positive_int, default=1, help="worker processes (1)")
    parser.add_argument("--report", metavar="FILE", help="write the JSON report here")
    parser.add_argument("--fail-if", metavar="SPEC", default="", help='e.g. "p99>50ms,errors>0"')
    parser.add_argument("--seed", type=int, default=0, help="seed of the bots' random generators")
    parser.add_argument("--request-timeout", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds (10)")
    parser.add_argument("--grace", type=_seconds, default=2.0, help="seconds to wind down (2)")
    parser.add_argument("--user", metavar="JSON", default=None, help="handshake user data")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's config; ``ValueError`` naming a bad value."""
    if not args.duration > 0:
        raise ValueError("--duration must be > 0")
    if args.rate is not None and not args.rate > 0:
        raise ValueError("--rate must be > 0")
    user = json.loads(args.user) if args.user else None
    return RunConfig(
        scenario=args.scenario,
        target=args.target,
        bots=args.bots,
        ramp_up=args.ramp_up,
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        request_timeout=args.request_timeout,
        connect_timeout=args.connect_timeout,
        grace=args.grace,
        user=user,
    )


class _Progress:
    """The live progress line, redrawn in place on a terminal."""

    def __init__(self, reactor: IReactorTime, out: TextIO, interval: float = 1.0) -> None:
        self.reactor = reactor
        self.out = out
        self.interval = interval
        self.started = reactor.seconds()
        self.previous: Stats | None = None
        self.shown = False

    def __call__(self, stats: Stats) -> None:
        elapsed = self.reactor.seconds() - self.started
        line = format_progress(elapsed, stats, self.previous, self.interval)
        self.out.write("\r\x1b[2K" + line)
        self.out.flush()
        self.previous = stats.copy()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            self.out.write("\n")


async def run(reactor: IServerReactor, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the load test ``args`` describes; the exit status."""
    try:
        config = config_from_args(args)
        thresholds = parse_thresholds(args.fail_if)
        scenario = load_scenario(config.scenario)
    except (ValueError, ScenarioError) as exc:
        err.write(f"pomelo-twisted bot: error: {exc}\n")
        return 2
    show = not args.quiet and out.isatty()
    progress = _Progress(reactor, out) if show else None
    try:
        stats = await _measure(reactor, config, scenario, args.workers, progress)
    except WorkerFailed as exc:
        err.write(f"pomelo-twisted bot: error: {exc}\n")
        return 1
    finally:
        if progress is not None:
            progress.end()
    summary = summarize(stats, config.duration)
    out.write(format_report(summary))
    crossed = evaluate(thresholds, summary)
    if args.report:
        report = {
            "config": asdict(config) | {"workers": args.workers},
            "summary": summary,
            "fail_if": {"spec": args.fail_if, "crossed": crossed},
            "stats": stats.to_dict(),
        }
        _write(Path(args.report), json.dumps(report, indent=1) + "\n")
    if crossed:
        err.write("pomelo-twisted bot: failed: " + "; ".join(crossed) + "\n")
        return 1
    return 0


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


async def _measure(
    reactor: IServerReactor,
    config: RunConfig,
    scenario: Any,
    workers: int,
    progress: _Progress | None,
) -> Stats:
    if workers == 1:
        each: Any = (lambda r: progress(r.stats)) if progress is not None else None
        runner = make_runner(reactor, config, scenario, progress=each)
        stats: Stats = await runner.run()
        return stats
    d: Deferred[Stats] = run_workers(reactor, config, workers, progress)
    try:
        merged: Stats = await d
    except FirstError as exc:
        exc.subFailure.raiseException()
    return merged
