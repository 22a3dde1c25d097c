"""One worker process of a load test: ``python -m pomelo_twisted.bots.worker CONFIG_JSON``.

Runs its share of the bots (see :mod:`.workers`) and writes its figures as JSON
lines on stdout: ``{"progress": ...}`` every second, ``{"final": ...}`` at the end.
"""

from __future__ import annotations

import json
import sys
from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from ..interfaces import IServerReactor
from .scenario import load_scenario
from .stats import Stats
from .workers import RunConfig, make_runner

__all__ = ["main", "run_worker"]


def _emit(kind: str, stats: Stats) -> None:
    sys.stdout.write(json.dumps({kind: stats.to_dict()}) + "\n")
    sys.stdout.flush()


def run_worker(reactor: IServerReactor, config: RunConfig) -> Deferred[None]:
    """Run the worker's bots on ``reactor``; fires once its final line is written."""
    runner = make_runner(
        reactor,
        config,
        load_scenario(config.scenario),
        progress=lambda r: _emit("progress", r.stats),
    )
    d = runner.run()
    return d.addCallback(lambda stats: _emit("final", stats))


def main(argv: list[str] | None = None) -> None:
    """The worker's entry point."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m pomelo_twisted.bots.worker CONFIG_JSON")
    config = RunConfig.from_json(args[0])
    react(lambda reactor: run_worker(cast(IServerReactor, reactor), config))


if __name__ == "__main__":
    main()
