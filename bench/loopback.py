"""Loopback request/response rate: C connections × K requests in flight, for a fixed time.

``ours``: the ``twistd pomelo --type echo`` server driven by :mod:`pomelo_twisted.client`
(JSON bodies, route ``connector.entryHandler.echo``). ``bare``: :mod:`bench.bare_echo`
driven by an ``Int32StringReceiver`` client sending the same ~100 JSON bytes as a frame.
Every response is checked against its request (the body carries a unique ``seq``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import connectionDone
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from typing_extensions import override

from bench.common import ROUTE, bare_payload, body_for, cpu_ticks, percentile, summarize
from bench.servers import ServerProcess
from pomelo_twisted.client import PomeloClient, connect

__all__ = [
    "KINDS",
    "LoadCase",
    "RunResult",
    "Tally",
    "run_alternating",
    "run_reactor",
    "summarize_runs",
]

KINDS = ("ours", "bare")
T = TypeVar("T")
MAX_EXAMPLES = 5
CODE_RATE_LIMITED = 429
"""The echo server's answer over its default request rate (AgentConfig.request_rate)."""


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far: this process, the server, every CPU of the machine."""

    client: float
    server: float | None
    machine: float

    @classmethod
    def take(cls, server_cpu: Callable[[], float | None]) -> CpuSnapshot:
        """Read the three clocks now."""
        machine = sum(busy for _total, busy in cpu_ticks().values())
        return cls(time.process_time(), server_cpu(), machine)


@dataclass
class Tally:
    """Counts of one run; ``done`` fires once every request chain has stopped."""

    duration: float
    chains: int
    server_cpu: Callable[[], float | None]
    done: Deferred[None] = field(default_factory=Deferred)
    start: float = 0.0
    deadline: float = 0.0
    last: float = 0.0
    cpu_start: CpuSnapshot | None = None
    cpu_end: CpuSnapshot | None = None
    seq: int = 0
    completed: int = 0
    mismatches: int = 0
    rate_limited: int = 0
    errors: int = 0
    examples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def begin(self) -> None:
        """Every connection is up: start the clocks (wall and CPU of both processes)."""
        self.cpu_start = CpuSnapshot.take(self.server_cpu)
        self.start = self.last = time.perf_counter()
        self.deadline = self.start + self.duration

    def next_seq(self) -> int:
        """A new request number."""
        self.seq += 1
        return self.seq

    def answered(self, sent_at: float, ok: bool, detail: Callable[[], str]) -> bool:
        """Record one response; return whether its chain sends another request."""
        now = time.perf_counter()
        self.last = now
        self.latencies.append(now - sent_at)
        if ok:
            self.completed += 1
        else:
            self.mismatches += 1
            self._example(detail())
        if now < self.deadline:
            return True
        self.chain_ended()
        return False

    def failed(self, reason: str) -> None:
        """A request got no response (error or connection lost); its chain ends."""
        self.errors += 1
        self._example(reason)
        self.chain_ended()

    def chain_ended(self) -> None:
        """One chain stopped sending."""
        self.chains -= 1
        if self.chains == 0 and not self.done.called:
            self.cpu_end = CpuSnapshot.take(self.server_cpu)
            self.done.callback(None)

    def _example(self, text: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text[:200])


@dataclass
class RunResult:
    """One timed run against one server."""

    kind: str
    requests: int
    seconds: float
    rate: float
    mismatches: int
    rate_limited: int
    errors: int
    client_cpu_s: float
    server_cpu_s: float | None
    other_cpu_s: float
    examples: list[str]
    latencies: list[float] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Figures without the raw latency samples."""
        data = asdict(self)
        del data["latencies"]
        return data


# -- ours: the pomelo_twisted client ------------------------------------------------


def _ours_chain(client: PomeloClient, tally: Tally, route: str) -> None:
    def fire() -> None:
        body = body_for(tally.next_seq())
        d = client.request(route, body)
        d.addCallbacks(replied, lost, callbackArgs=(body, time.perf_counter()))

    def replied(reply: object, body: dict[str, Any], sent_at: float) -> None:
        ok = reply == body
        if not ok and isinstance(reply, dict) and reply.get("code") == CODE_RATE_LIMITED:
            tally.rate_limited += 1
        if tally.answered(sent_at, ok, lambda: f"sent {body!r}, got {reply!r}"):
            fire()

    def lost(failure: Failure) -> None:
        tally.failed(f"request failed: {failure.getErrorMessage()}")

    fire()


async def _ours_run(
    reactor: Any, port: int, conns: int, inflight: int, tally: Tally, route: str
) -> None:
    clients: list[PomeloClient] = await defer.gatherResults(
        [connect(reactor, f"tcp:127.0.0.1:{port}") for _ in range(conns)], consumeErrors=True
    )
    try:
        tally.begin()
        for client in clients:
            for _ in range(inflight):
                _ours_chain(client, tally, route)
        await tally.done
    finally:
        await defer.gatherResults([client.close() for client in clients])


# -- bare: an Int32StringReceiver client ----------------------------------------------


class BareClient(Int32StringReceiver):
    """Sends frames, expects each echoed back in order (one TCP connection is FIFO)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.pending: deque[tuple[bytes, float]] = deque()
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)

    def fire(self) -> None:
        """Send one request frame."""
        payload = bare_payload(self.tally.next_seq())
        self.pending.append((payload, time.perf_counter()))
        self.sendString(payload)

    @override
    def stringReceived(self, string: bytes) -> None:
        expected, sent_at = self.pending.popleft()
        ok = string == expected
        if self.tally.answered(sent_at, ok, lambda: f"sent {expected!r}, got {string!r}"):
            self.fire()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        while self.pending:
            self.pending.popleft()
            self.tally.failed(f"connection lost: {reason.getErrorMessage()}")
        self.lost.callback(None)


async def _bare_run(
    reactor: Any, port: int, conns: int, inflight: int, tally: Tally, route: str
) -> None:
    """``route`` is not carried: the bare frames have no message layer."""
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    protos: list[BareClient] = await defer.gatherResults(
        [connectProtocol(endpoint, BareClient(tally)) for _ in range(conns)], consumeErrors=True
    )
    try:
        tally.begin()
        for proto in protos:
            for _ in range(inflight):
                proto.fire()
        await tally.done
    finally:
        for proto in protos:
            assert proto.transport is not None
            proto.transport.loseConnection()
        await defer.gatherResults([proto.lost for proto in protos])


# -- runs -----------------------------------------------------------------------------


RUNNERS = {"ours": _ours_run, "bare": _bare_run}


@dataclass(frozen=True)
class LoadCase:
    """What one column of the alternation drives: a server, a client (a RUNNERS key), a route."""

    server: ServerProcess
    client: str
    route: str = ROUTE


async def run_once(
    reactor: Any, case: LoadCase, kind: str, conns: int, inflight: int, duration: float
) -> RunResult:
    """One timed run of ``conns`` × ``inflight`` request chains for ``duration`` s."""
    server = case.server
    tally = Tally(duration, conns * inflight, server.cpu_seconds)
    tally.done.addTimeout(duration + 30.0, reactor)
    try:
        runner = RUNNERS[case.client]
        await runner(reactor, server.port, conns, inflight, tally, case.route)
    except defer.TimeoutError:
        # Closing the connections failed the requests still waiting: they count as errors.
        tally.errors += tally.chains
        tally.examples.append(f"no end after {duration + 30:g} s: responses missing")
        tally.cpu_end = CpuSnapshot.take(server.cpu_seconds)
    seconds = tally.last - tally.start
    start, end = tally.cpu_start, tally.cpu_end
    assert start is not None and end is not None
    client_cpu = end.client - start.client
    server_cpu = None if start.server is None or end.server is None else end.server - start.server
    # Busy time of the machine that neither process accounts for: other load, the kernel.
    other_cpu = max(0.0, end.machine - start.machine - client_cpu - (server_cpu or 0.0))
    answered = tally.completed + tally.mismatches
    return RunResult(
        kind=kind,
        requests=answered,
        seconds=seconds,
        rate=answered / seconds if seconds > 0 else 0.0,
        mismatches=tally.mismatches,
        rate_limited=tally.rate_limited,
        errors=tally.errors,
        client_cpu_s=client_cpu,
        server_cpu_s=server_cpu,
        other_cpu_s=other_cpu,
        examples=tally.examples,
        latencies=tally.latencies,
    )


async def run_alternating(
    reactor: Any,
    servers: dict[str, ServerProcess],
    conns: int,
    inflight: int,
    duration: float,
    runs: int,
    progress: Callable[[str], None],
    cases: Mapping[str, LoadCase] | None = None,
) -> dict[str, list[RunResult]]:
    """A short warm-up of each case, then runs A B A B ... (``runs`` of each).

    ``cases`` by label; default: each of :data:`KINDS` driven by its own client.
    """
    if cases is None:
        cases = {kind: LoadCase(servers[kind], kind) for kind in KINDS}

    warmup = min(1.0, duration / 5)
    width = max(4, *(len(kind) for kind in cases))
    for kind in cases:
        await run_once(reactor, cases[kind], kind, conns, inflight, warmup)
    results: dict[str, list[RunResult]] = {kind: [] for kind in cases}
    for i in range(runs):
        for kind in cases:
            result = await run_once(reactor, cases[kind], kind, conns, inflight, duration)
            results[kind].append(result)
            progress(
                f"  run {i + 1}/{runs} {kind:{width}}: {result.rate:9,.0f} req/s "
                f"({result.requests:,} in {result.seconds:.2f} s, "
                f"mismatches {result.mismatches} (429: {result.rate_limited}), "
                f"errors {result.errors}; other load {result.other_cpu_s / result.seconds:.0%})"
            )
    return results


def summarize_runs(results: Sequence[RunResult]) -> dict[str, Any]:
    """Median and range of the rates, pooled latency percentiles, CPU per request."""
    latencies = sorted(x for r in results for x in r.latencies)
    requests = sum(r.requests for r in results)
    client_cpu = sum(r.client_cpu_s for r in results)
    server_cpus = [r.server_cpu_s for r in results]
    server_cpu = None if None in server_cpus else sum(c or 0.0 for c in server_cpus)
    seconds = sum(r.seconds for r in results)
    return {
        "rate": summarize([r.rate for r in results]),
        "requests": requests,
        "mismatches": sum(r.mismatches for r in results),
        "rate_limited": sum(r.rate_limited for r in results),
        "errors": sum(r.errors for r in results),
        "examples": [e for r in results for e in r.examples][:MAX_EXAMPLES],
        "latency_ms": {
            "p50": percentile(latencies, 0.50) * 1e3,
            "p99": percentile(latencies, 0.99) * 1e3,
            "max": (latencies[-1] if latencies else float("nan")) * 1e3,
            "samples": len(latencies),
        },
        "client_cpu_us_per_request": client_cpu / requests * 1e6 if requests else None,
        "client_cpu_utilization": client_cpu / seconds if seconds else None,
        "server_cpu_us_per_request": (
            server_cpu / requests * 1e6 if server_cpu is not None and requests else None
        ),
        "server_cpu_utilization": server_cpu / seconds if server_cpu is not None else None,
        "other_cpu_utilization_max": max(r.other_cpu_s / r.seconds for r in results),
        "runs": [r.to_dict() for r in results],
    }


def run_reactor(main: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run the global reactor until ``main(reactor)`` finishes; return or raise its outcome.

    The reactor runs once per process, so the whole loopback section is one coroutine.
    """
    from twisted.internet import reactor

    outcome: list[T | Failure] = []

    def start() -> None:
        d = defer.ensureDeferred(main(reactor))
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if not outcome:
        raise KeyboardInterrupt("the reactor stopped before the benchmark finished")
    result = outcome[0]
    if isinstance(result, Failure):
        result.raiseException()
    return result
