"""The server's RSS around the memory-hungry bad inputs: the header flood and the deflate bomb.

``python bench/abuse_rss.py [--rounds 5]`` starts the probe server of ``tests/abuse``
(``python -m tests.abuse.server``: a hybrid echo listener under the probes' limits, its own
process), keeps a good client answered throughout, and runs each probe ``--rounds`` times,
reading the server's ``VmRSS`` before and after. Prints one row per probe: RSS before,
after, the growth (the issue's bound: < 5 MB), the probe's result and the good client's
answers. Exits 1 when a growth is 5 MB or more or the good client went unanswered.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import subprocess
import tempfile
from typing import Any

from bench.cluster import rss_kb

ROOT = Path(__file__).resolve().parent.parent
LIMIT_KB = 5 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each probe")
    args = parser.parse_args()

    from twisted.internet import defer, task

    from tests.abuse.probes import GoodClient, deflate_bomb, header_flood

    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.abuse.server", str(Path(folder) / "server.log")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        port = int(server.stdout.readline())
        rows: list[tuple[str, int, int, Any]] = []
        good = GoodClient()

        async def run(reactor: Any) -> None:
            await good.start("127.0.0.1", port)
            await good.answered_more(5)
            for name, probe in (("header flood", header_flood), ("deflate bomb", deflate_bomb)):
                before = rss_kb(server.pid) or 0
                result: Any = None
                for _ in range(args.rounds):
                    result = await probe("127.0.0.1", port)
                    await good.answered_more()
                after = rss_kb(server.pid) or 0
                rows.append((name, before, after, result))
            await good.stop()

        try:
            task.react(lambda reactor: defer.ensureDeferred(run(reactor)))
        except SystemExit as exit_:
            if exit_.code:
                raise
        finally:
            server.terminate()
            server.wait(10)
    worst = 0
    print(f"probe server RSS around {args.rounds} runs of each probe (bound: < 5 MB growth)")
    for name, before, after, result in rows:
        worst = max(worst, after - before)
        print(
            f"  {name:13} {before / 1024:6.1f} MiB -> {after / 1024:6.1f} MiB "
            f"({(after - before) / 1024:+.2f} MiB)  last result: {result}"
        )
    print(f"good client: {good.answers} answers, slowest {good.slowest * 1000:.0f} ms")
    return 0 if worst < LIMIT_KB and good.answers > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
