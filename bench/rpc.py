"""Forwarding over Perspective Broker in a real cluster, against a bare PB round trip.

``python bench/rpc.py [--quick] [--json FILE]`` runs two scenarios in alternation
(baseline, ours, baseline, ours, ...), each C connections × K requests in flight for a
fixed time after a short warm-up, every response checked against its request:

- ours: a copy of the example game on free loopback ports, started as a cluster with
  ``twistd pomelo --type master`` (the master spawns 2 connectors and 2 chat servers,
  each its own process). Each client binds its session on connector-server-1
  (``connector.entryHandler.entry``), then sends ``chat.chatHandler.echo`` with a
  ~100-byte JSON body: client -> connector -(PB)-> chat -(PB)-> connector -> client.
- baseline: ``bench/pb_echo.py``, a bare ``pb.Root`` echo, driven by PB clients calling
  ``echo`` with the very msgpack bytes the connector forwards for such a request: one
  PB round trip between two processes, the floor of any forwarding over PB.

Servers run on CPU 1 and this process (the load) on CPU 0 when ``taskset`` allows. The
report gives each scenario's median rate (min–max), the ratio ours / baseline, p50 / p99
latency, mismatches, and the CPU share of the load generator and of every server
process. Timings are only measured here, never asserted in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.spread import pb

from bench.codec import progress
from bench.common import bare_payload
from bench.loopback import (
    RUNNERS,
    LoadCase,
    RunResult,
    Tally,
    _ours_chain,
    run_alternating,
    run_reactor,
    summarize_runs,
)
from bench.report import BUSY_WARNING, environment, format_header, format_rate_table
from bench.runtime import BENCH_CPU_WARNING, FORWARD_ROUTE, round_ratios
from bench.servers import (
    BENCH_CPU,
    REPO_ROOT,
    SERVER_CPU,
    ServerProcess,
    _cpu_seconds,
    _twistd,
    can_pin,
    free_port,
    start_server,
)
from pomelo_twisted.client import PomeloClient, connect
from pomelo_twisted.cluster.certs import create_certs
from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.rpc.payload import pack_plain
from pomelo_twisted.testing.children import dying_with_parent
from pomelo_twisted.testing.gamecopy import copy_game as copy_game_on_free_ports

__all__ = ["Cluster", "ClusterError", "copy_game", "forward_payload", "main", "parse_args"]

EXAMPLE = REPO_ROOT / "example_game"
ENV = "development"
FRONTEND = "connector-server-1"
ENTRY_ROUTE = "connector.entryHandler.entry"
READY_LINE = "cluster started:"
EXIT_TIMEOUT = 40.0
"""The master stops the frontends, then the backends, each given 10 s before SIGKILL."""

TYPICAL_SEQ = 10_000
"""A sequence number of the size most requests of a run carry (for the sizes printed)."""

SESSION = (FRONTEND, 1, "bench-1-1", 0, None)
"""The session delta the connector sends with a request of this bench once the chat
server holds its settings: frontend id, sid, uid, settings version, no settings."""


def forward_payload(seq: int) -> bytes:
    """The msgpack bytes connector-server-1 sends to chat for ``chat.chatHandler.echo``
    with ``body_for(seq)``: the session delta, the route, the serializer, the client's
    JSON bytes, notify (``pomelo_twisted.app.forward``)."""
    return pack_plain([*SESSION, FORWARD_ROUTE, "json", bare_payload(seq), False])


# -- the cluster ----------------------------------------------------------------------


def copy_game(dest: Path, env: str = ENV) -> dict[str, Any]:
    """The example game copied to ``dest`` with every port of ``env`` free."""
    return copy_game_on_free_ports(EXAMPLE, dest, env)


def process_group(pgid: int) -> dict[int, list[str]]:
    """The live (not zombie) processes of group ``pgid``: pid -> argv, from ``/proc``."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found[int(entry.name)] = [arg.decode(errors="replace") for arg in argv if arg]
    return found


class ClusterError(RuntimeError):
    """The cluster did not start; the message holds the end of its logs."""


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class Cluster(ServerProcess):
    """The master and every server it spawned: one process group that the master leads.

    ``port`` is connector-server-1's client port. ``cpu_seconds`` sums the processes'
    CPU time and keeps each call's per-process figures in ``samples``.
    """

    game: Path = field(default_factory=Path)
    members: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, float | None]] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    @classmethod
    def launch(cls, workdir: Path, pin: bool, tls: bool = False) -> Cluster:
        """Copy the game into ``workdir`` and start its master (on CPU 1 when ``pin``);
        with ``tls`` every link of the cluster is mutual TLS (certificates made here)."""
        game = workdir / "game"
        layout = copy_game(game)
        if tls:
            master = game / "config" / "master.json"
            data = json.loads(master.read_text())
            data[ENV]["tls"] = {"dir": "certs"}
            master.write_text(json.dumps(data))
            create_certs(GameConfig(game, ENV))
        port = next(s["clientPort"] for s in layout["servers"]["connector"] if s["id"] == FRONTEND)
        argv = [_twistd(), "-n", "--pidfile=", "pomelo", "--app", str(game), "--env", ENV]
        argv += ["--type", "master"]
        if pin:  # the master's servers inherit its CPU affinity
            argv = ["taskset", "-c", str(SERVER_CPU), *argv]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        log_path = workdir / "master.log"
        log = log_path.open("wb")
        try:
            proc = subprocess.Popen(
                dying_with_parent(argv),
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        return cls("cluster", port, proc, log_path, log, game=game)

    def logs(self, lines: int = 15) -> str:
        """The end of the master's output and of every server's log."""
        parts = [f"--- master ({self.log_path}):\n{self.log_tail(lines)}"]
        for path in sorted((self.game / "logs").glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.stem} ({path}):\n" + "\n".join(tail))
        return "\n".join(parts)

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait until the master logs ``cluster started:``; note its processes; the seconds."""
        start = time.monotonic()
        while READY_LINE not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise ClusterError(
                    f"the master exited with {self.proc.returncode} before the cluster "
                    f"started:\n{self.logs()}"
                )
            if time.monotonic() - start >= timeout:
                raise ClusterError(
                    f"no {READY_LINE!r} in the master's log after {timeout:g} s:\n{self.logs()}"
                )
            time.sleep(0.05)
        elapsed = time.monotonic() - start
        for pid, argv in sorted(process_group(self.proc.pid).items()):
            name = argv[argv.index("--id") + 1] if "--id" in argv[:-1] else f"pid {pid}"
            self.members["master" if pid == self.proc.pid else name] = pid
        return elapsed

    def cpu_seconds(self) -> float | None:
        """CPU time of every process of the cluster so far (one sample kept per call)."""
        sample = {name: _cpu_seconds(pid) for name, pid in self.members.items()}
        self.samples.append(sample)
        values = list(sample.values())
        return None if None in values else sum(v or 0.0 for v in values)

    def cpu_shares(self, runs: Sequence[RunResult]) -> dict[str, float | None]:
        """Each process's share of a CPU over ``runs``, the last runs measured.

        ``run_once`` reads ``cpu_seconds`` once at the start and once at the end of a
        run, so the last ``2 × len(runs)`` samples are those runs' bounds.
        """
        bounds = self.samples[-2 * len(runs) :]
        seconds = sum(r.seconds for r in runs)
        pairs = list(zip(bounds[0::2], bounds[1::2], strict=True))
        shares: dict[str, float | None] = {}
        for name in self.members:
            used = [(begin.get(name), end.get(name)) for begin, end in pairs]
            known = [b - a for a, b in used if a is not None and b is not None]
            complete = seconds > 0 and len(known) == len(pairs)
            shares[name] = sum(known) / seconds if complete else None
        return shares

    def stop(self, timeout: float = EXIT_TIMEOUT) -> int | None:
        """SIGTERM to the master and wait (it stops its servers in order); then SIGKILL
        whatever of the group is left, noting it in ``leftovers``. The master's status."""
        proc = self.proc
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.leftovers.append(f"the master was still running {timeout:g} s after TERM")
                    _kill_group(proc.pid)
                    proc.wait(timeout)
            deadline = time.monotonic() + 2.0
            while (left := process_group(proc.pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            if left:
                self.leftovers += [f"pid {pid}: {' '.join(argv)}" for pid, argv in left.items()]
                _kill_group(proc.pid)
        finally:
            if self.log is not None:
                self.log.close()
                self.log = None
        return proc.returncode


# -- load -----------------------------------------------------------------------------

_RUN_NUMBERS = count(1)


async def _session_run(
    reactor: Any, port: int, conns: int, inflight: int, tally: Tally, route: str
) -> None:
    """C pomelo clients, each bound to its own uid by ``entry``; K chains of ``route`` each."""
    run = next(_RUN_NUMBERS)
    clients: list[PomeloClient] = await defer.gatherResults(
        [connect(reactor, f"tcp:127.0.0.1:{port}") for _ in range(conns)], consumeErrors=True
    )
    try:
        answers = await defer.gatherResults(
            [
                client.request(ENTRY_ROUTE, {"uid": f"bench-{run}-{i}"})
                for i, client in enumerate(clients)
            ],
            consumeErrors=True,
        )
        refused = [a for a in answers if not (isinstance(a, dict) and a.get("code") == 200)]
        if refused:
            raise RuntimeError(f"{len(refused)} of {conns} entries refused: {refused[0]!r}")
        tally.begin()
        for client in clients:
            for _ in range(inflight):
                _ours_chain(client, tally, route)
        await tally.done
    finally:
        await defer.gatherResults([client.close() for client in clients])


def _pb_chain(root: pb.RemoteReference, tally: Tally) -> None:
    def fire() -> None:
        payload = forward_payload(tally.next_seq())
        d = root.callRemote("echo", payload)
        d.addCallbacks(replied, lost, callbackArgs=(payload, time.perf_counter()))

    def replied(reply: object, payload: bytes, sent_at: float) -> None:
        if tally.answered(sent_at, reply == payload, lambda: f"sent {payload!r}, got {reply!r}"):
            fire()

    def lost(failure: Failure) -> None:
        tally.failed(f"echo failed: {failure.getErrorMessage()}")

    fire()


async def _pb_run(
    reactor: Any, port: int, conns: int, inflight: int, tally: Tally, route: str
) -> None:
    """C PB connections to ``bench/pb_echo.py``, K chains of ``echo`` each (no route)."""
    factories = [pb.PBClientFactory() for _ in range(conns)]
    roots: list[pb.RemoteReference] = []
    try:
        for factory in factories:
            reactor.connectTCP("127.0.0.1", port, factory)
        roots = await defer.gatherResults(
            [factory.getRootObject() for factory in factories], consumeErrors=True
        )
        tally.begin()
        for root in roots:
            for _ in range(inflight):
                _pb_chain(root, tally)
        await tally.done
    finally:
        gone: list[Deferred[None]] = []
        for root in roots:
            if not root.broker.disconnected:
                d: Deferred[None] = Deferred()
                root.notifyOnDisconnect(lambda _ref, d=d: d.callback(None))
                gone.append(d)
        for factory in factories:
            factory.disconnect()
        await defer.gatherResults(gone)


RUNNERS.update({"pomelo-session": _session_run, "pb": _pb_run})


# -- running --------------------------------------------------------------------------


def pb_echo_argv(port: int) -> list[str]:
    """The baseline server, :mod:`bench.pb_echo`."""
    return [sys.executable, str(REPO_ROOT / "bench" / "pb_echo.py"), "--port", str(port)]


async def _measure(
    reactor: Any,
    servers: dict[str, ServerProcess],
    cases: dict[str, LoadCase],
    args: argparse.Namespace,
) -> dict[str, list[RunResult]]:
    """The alternating runs; ``SystemExit`` when the reactor was stopped (SIGTERM, ^C)
    before they finished: the requests cut short then are no measurement."""
    finished = False
    interrupted = False

    def shutting_down() -> None:
        nonlocal interrupted
        interrupted = not finished

    reactor.addSystemEventTrigger("before", "shutdown", shutting_down)
    results = await run_alternating(
        reactor,
        servers,
        args.connections,
        args.inflight,
        args.duration,
        args.runs,
        progress,
        cases,
    )
    finished = True
    if interrupted:
        raise SystemExit("interrupted: the reactor stopped before the runs finished")
    return results


def run_scenarios(args: argparse.Namespace, pin: bool) -> dict[str, Any]:
    """Start the cluster and the PB echo, alternate the runs, stop both whatever happens."""
    servers: dict[str, ServerProcess] = {}
    with tempfile.TemporaryDirectory(prefix="pomelo-bench-rpc-") as tmp:
        workdir = Path(tmp)
        try:
            cluster = Cluster.launch(workdir, pin, tls=args.tls)
            servers["ours"] = cluster
            port = free_port()
            servers["baseline"] = start_server("pb_echo", pb_echo_argv(port), port, workdir, pin)
            ready = {
                "baseline": servers["baseline"].wait_ready(),
                "ours": cluster.wait_ready(args.ready_timeout),
            }
            progress(
                f"\ncluster up in {ready['ours']:.1f} s: "
                + ", ".join(f"{name} (pid {pid})" for name, pid in cluster.members.items())
            )
            cases = {
                "baseline": LoadCase(servers["baseline"], "pb"),
                "ours": LoadCase(cluster, "pomelo-session", FORWARD_ROUTE),
            }
            progress("request/response runs (alternating):")
            results = run_reactor(lambda reactor: _measure(reactor, servers, cases, args))
        except (ClusterError, SystemExit):
            raise  # the message has the logs, or the run was interrupted
        except BaseException:
            if "ours" in servers:
                progress(f"cluster logs:\n{cluster.logs()}")
            if "baseline" in servers:
                progress(f"pb_echo output:\n{servers['baseline'].log_tail()}")
            raise
        finally:
            codes = {kind: server.stop() for kind, server in servers.items()}
            if "ours" in servers and cluster.leftovers:
                progress("cluster processes left running, killed: " + "; ".join(cluster.leftovers))
    summaries = {kind: summarize_runs(runs) for kind, runs in results.items()}
    base = summaries["baseline"]["rate"]["median"]
    for kind, summary in summaries.items():
        summary["ratio_vs_baseline"] = summary["rate"]["median"] / base if base else float("nan")
        summary["ratio_vs_baseline_per_round"] = round_ratios(results[kind], results["baseline"])
    return {
        "ready_s": ready,
        "exit_codes": codes,
        "cluster": {
            "members": cluster.members,
            "cpu_utilization": cluster.cpu_shares(results["ours"]),
            "leftovers": cluster.leftovers,
        },
        "requests": summaries,
    }


# -- report ---------------------------------------------------------------------------


def format_intro(args: argparse.Namespace) -> str:
    """What the run is about to do."""
    body, forwarded = len(bare_payload(TYPICAL_SEQ)), len(forward_payload(TYPICAL_SEQ))
    return "\n".join(
        [
            "",
            "RPC forwarding over Perspective Broker: a real cluster against a bare PB round trip",
            f"  ours:     twistd pomelo --type master on a copy of example_game ({ENV}: the "
            "master spawns 2 connectors + 2 chat servers, each its own process)",
            f"            client -> {FRONTEND} -(PB)-> chat -(PB)-> {FRONTEND} -> client: "
            f"{FORWARD_ROUTE}, a ~{body}-byte JSON body, after {ENTRY_ROUTE} per client",
            "  baseline: bench/pb_echo.py (a bare pb.Root echo) <- PB clients calling "
            f"echo(bytes): the ~{forwarded}-byte msgpack payload the "
            "connector forwards",
            f"  {args.connections} connections × {args.inflight} in flight, {args.duration:g} s "
            f"per run, {args.runs} run(s) each, alternating after a short warm-up; every "
            "response checked",
        ]
    )


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def format_report(figures: dict[str, Any]) -> str:
    """The rate table, the ratio, the CPU shares and whether the cluster stopped cleanly."""
    summaries = figures["requests"]
    ours, base = summaries["ours"], summaries["baseline"]
    ratio = ours["ratio_vs_baseline"]
    lines = ["", "Request/response rate (ratio = median / baseline median)"]
    lines += format_rate_table(summaries, "baseline")
    per_round = ", ".join(f"{r:.3f}" for r in ours["ratio_vs_baseline_per_round"])
    lines.append(
        f"   => ours/baseline = {ratio:.3f} (baseline {1 / ratio:.1f}× faster; per round "
        f"{per_round}); p50 {ours['latency_ms']['p50']:.2f} ms vs "
        f"{base['latency_ms']['p50']:.2f} ms, p99 {ours['latency_ms']['p99']:.2f} ms vs "
        f"{base['latency_ms']['p99']:.2f} ms"
    )
    cluster = figures["cluster"]
    shares = cluster["cpu_utilization"]
    known = [s for s in shares.values() if s is not None]
    lines.append(
        f"   cluster CPU during ours' runs (CPU {SERVER_CPU}): "
        + ", ".join(f"{name} {_share(share)}" for name, share in shares.items())
        + f"; total {sum(known):.0%}"
    )
    lines.append(
        f"   baseline: pb_echo {_share(base['server_cpu_utilization'])} of CPU {SERVER_CPU}, "
        f"its PB clients {_share(base['client_cpu_utilization'])} of CPU {BENCH_CPU}"
        + (
            " (the client side of a PB call costs about as much as the server side: the "
            "load generator may limit the baseline, which then understates the floor)"
            if (base["client_cpu_utilization"] or 0.0) > BENCH_CPU_WARNING
            else ""
        )
    )
    client = ours["client_cpu_utilization"] or 0.0
    verdict = (
        f"MAY BE the bottleneck: it used {client:.0%} of CPU {BENCH_CPU} "
        f"(over {BENCH_CPU_WARNING:.0%})"
        if client > BENCH_CPU_WARNING
        else f"is not the bottleneck: {client:.0%} of CPU {BENCH_CPU} (under "
        f"{BENCH_CPU_WARNING:.0%}) while the cluster used {sum(known):.0%} of CPU {SERVER_CPU}"
    )
    lines.append(f"   => ours' load generator {verdict}")
    other = max(s["other_cpu_utilization_max"] for s in summaries.values())
    lines.append(
        f"   CPU time no benchmark process accounts for: up to {other:.0%} of a CPU in a run"
        + (": WARNING, the machine was busy, figures are noisy" if other > BUSY_WARNING else "")
    )
    if ours["rate_limited"]:
        lines.append(
            f"   NOTE: {ours['rate_limited']:,} of ours' mismatches are code-429 answers (the "
            "connector's request rate limit)"
        )
    for kind, s in summaries.items():
        lines += [f"   {kind} problem: {example}" for example in s["examples"]]
    codes = figures["exit_codes"]
    left = cluster["leftovers"]
    lines.append(
        f"   stopped: master exit status {codes.get('ours')}, pb_echo {codes.get('baseline')}; "
        + ("no cluster process left" if not left else "LEFT RUNNING (killed): " + "; ".join(left))
    )
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shortens the runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument("--tls", action="store_true", help="the cluster's links over mutual TLS")
    parser.add_argument("-c", "--connections", type=int, default=50)
    parser.add_argument("-k", "--inflight", type=int, default=2, help="in flight per connection")
    parser.add_argument("--duration", type=float, help="seconds per run")
    parser.add_argument("--runs", type=int, help="runs of each scenario")
    parser.add_argument(
        "--ready-timeout", type=float, default=30.0, help="seconds for the cluster to start"
    )
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 1.0 if args.quick else 5.0
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run, print, write ``--json``; 1 when a response mismatched, a request failed, or
    the cluster did not stop cleanly."""
    args = parse_args(argv)
    # SIGTERM unwinds (stopping the servers) rather than killing this process outright;
    # while the reactor runs, its own handler stops it, which unwinds the same way.
    signal.signal(signal.SIGTERM, _terminated)
    pin = can_pin()
    if pin:
        os.sched_setaffinity(0, {BENCH_CPU})
    env = environment(pin)
    print(format_header(env), flush=True)
    print(format_intro(args), flush=True)
    figures: dict[str, Any] = {
        "environment": env,
        "arguments": vars(args),
        "payload_bytes": {
            "json_body": len(bare_payload(TYPICAL_SEQ)),
            "forwarded_msgpack": len(forward_payload(TYPICAL_SEQ)),
        },
    }
    figures.update(run_scenarios(args, pin))
    print(format_report(figures), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
    bad = sum(s["mismatches"] + s["errors"] for s in figures["requests"].values())
    bad += len(figures["cluster"]["leftovers"])
    bad += sum(1 for code in figures["exit_codes"].values() if code != 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
