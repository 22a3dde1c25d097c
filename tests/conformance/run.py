"""``make test-conformance``: the Autobahn TestSuite, through kosoku, against the echo server.

Starts :mod:`tests.conformance.echo_server` (the production WebSocket acceptor with an
echo hook) on a free 127.0.0.1 port, runs every Autobahn case against it with kosoku's
``run_fuzzingclient``, prints the cases by outcome (message exchange and closing
handshake), and exits 1 unless every case is acceptable:

- behaviour OK, NON-STRICT or INFORMATIONAL, or UNIMPLEMENTED for the permessage-deflate
  cases (12.* and 13.*: the extension is declined on purpose);
- and closing behaviour OK or INFORMATIONAL (not judged for those declined cases).

``python -m tests.conformance.run [-i CASE]... [-x CASE]... [-p N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kosoku import FailureError, run_fuzzingclient

__all__ = ["acceptable", "main", "summarize"]

DECLINED = ("12.*", "13.*")
"""permessage-deflate: declined by the server, so UNIMPLEMENTED is the right outcome."""
GOOD = {"OK", "NON-STRICT", "INFORMATIONAL"}
GOOD_CLOSE = {"OK", "INFORMATIONAL"}


def acceptable(case_id: str, behavior: str, behavior_close: str) -> bool:
    """Whether a case's outcome meets ``make test-conformance``'s bar."""
    declined = any(fnmatch.fnmatchcase(case_id, pattern) for pattern in DECLINED)
    if declined and behavior == "UNIMPLEMENTED":
        return True
    return behavior in GOOD and behavior_close in GOOD_CLOSE


def summarize(results: list[Any]) -> tuple[str, list[str]]:
    """The printed summary, and the ids of the unacceptable cases."""
    behaviors = Counter(result.behavior.value for result in results)
    closes = Counter(result.behavior_close.value for result in results)
    bad = [
        f"{r.case_id}: {r.behavior.value} / close {r.behavior_close.value}: {r.result} "
        f"{r.result_close}"
        for r in results
        if not acceptable(r.case_id, r.behavior.value, r.behavior_close.value)
    ]
    lines = [
        f"kosoku: {len(results)} Autobahn TestSuite cases",
        "  behaviour: " + ", ".join(f"{k} {v}" for k, v in sorted(behaviors.items())),
        "  closing:   " + ", ".join(f"{k} {v}" for k, v in sorted(closes.items())),
    ]
    by_group = Counter(
        (r.case_id.split(".")[0], r.behavior.value) for r in results if r.behavior.value != "OK"
    )
    if by_group:
        lines.append(
            "  not OK by chapter: "
            + ", ".join(f"{group}.* {what} {n}" for (group, what), n in sorted(by_group.items()))
        )
    lines.append(f"  unacceptable: {len(bad)}")
    lines += [f"    {line}" for line in bad]
    return "\n".join(lines), bad


def start_server() -> tuple[subprocess.Popen[str], int]:
    """The echo server in a child process, and the port it listens on."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance.echo_server", "--port", "0"],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("listening on "):
        server.kill()
        raise SystemExit(f"the echo server did not start: {line!r}")
    return server, int(line.split()[-1])


async def run_cases(url: str, include: list[str] | None, exclude: list[str], jobs: int) -> Any:
    """Every selected case's result (kosoku raises on a failed case; keep its results)."""
    try:
        return await run_fuzzingclient(url, include, exclude or None, concurrency=jobs)
    except FailureError as failure:
        return failure.results


def main(argv: list[str] | None = None) -> int:
    """Start the server, run the cases, print the summary; 0 only if all are acceptable."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-i", "--include", action="append", metavar="CASE")
    parser.add_argument("-x", "--exclude", action="append", metavar="CASE", default=[])
    parser.add_argument("-p", "--parallelism", type=int, default=2)
    parser.add_argument("--json", metavar="FILE", help="also write every case's outcome")
    args = parser.parse_args(argv)
    server, port = start_server()
    started = time.monotonic()
    try:
        results = asyncio.run(
            run_cases(f"ws://127.0.0.1:{port}", args.include, args.exclude, args.parallelism)
        )
    finally:
        server.terminate()
        server.wait(10)
    summary, bad = summarize(results)
    print(summary)
    print(f"  took {time.monotonic() - started:.1f} s against ws://127.0.0.1:{port}")
    if args.json:
        outcomes = {
            r.case_id: [r.behavior.value, r.behavior_close.value, r.duration] for r in results
        }
        Path(args.json).write_text(json.dumps(outcomes, indent=1) + "\n")
    if not results:
        print("no case ran")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
