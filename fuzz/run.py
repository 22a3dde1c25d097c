"""``make fuzz``: run every target (or those named) for ``--seconds`` each, in turn.

Seeds are written to ``fuzz/build/seeds/<target>`` (:mod:`fuzz.seeds`); libFuzzer keeps the
inputs it finds interesting in ``fuzz/build/corpus/<target>`` (reused by the next run) and
writes findings to ``fuzz/build/findings/<target>``; its output goes to
``fuzz/build/logs/<target>.log``. Prints executions and findings per target; exits 1 when
any target found something.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from . import TARGETS
from .seeds import write

BUILD = Path(__file__).resolve().parent / "build"


def run_target(target: str, seconds: int, seeds: Path) -> tuple[int, int, list[Path]]:
    """Fuzz ``target`` for ``seconds``: (executions, exec/s, new findings)."""
    corpus, findings = BUILD / "corpus" / target, BUILD / "findings" / target
    logs = BUILD / "logs"
    for folder in (corpus, findings, logs):
        folder.mkdir(parents=True, exist_ok=True)
    before = set(findings.iterdir())
    command = [
        sys.executable, "-m", f"fuzz.{target}", str(corpus), str(seeds),
        f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=10",
        "-rss_limit_mb=2048", f"-artifact_prefix={findings}/",
    ]  # fmt: skip
    dictionary = seeds.parent / f"{target}.dict"
    if dictionary.exists():
        command.append(f"-dict={dictionary}")
    log = logs / f"{target}.log"
    with log.open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    text = log.read_text(errors="replace")
    executions = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    speed = re.search(r"stat::average_exec_per_sec:\s*(\d+)", text)
    found = sorted(set(findings.iterdir()) - before)
    return (
        int(executions.group(1)) if executions else 0,
        int(speed.group(1)) if speed else 0,
        found,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the targets; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="per target (default 10)")
    parser.add_argument("targets", nargs="*", choices=[[], *TARGETS], default=[])
    args = parser.parse_args(argv)
    folders = write(BUILD / "seeds")
    failed = False
    print(f"{'target':<10} {'executions':>12} {'exec/s':>8} findings", flush=True)
    for target in args.targets or TARGETS:
        executions, speed, found = run_target(target, args.seconds, folders[target])
        failed |= bool(found)
        names = ", ".join(str(p.relative_to(BUILD.parent.parent)) for p in found) or "0"
        print(f"{target:<10} {executions:>12} {speed:>8} {names}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
