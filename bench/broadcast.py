"""Broadcast load: M members in one room, S of them sending ``chat.chatHandler.send`` at R/s.

Every member ``entry``-s with its own uid, then ``join``-s the same room; each send makes
the chat backend push ``onChat`` to all M members (the sender included). The ``content``
of a send carries the run, the sender, a per-sender sequence number and the send time
(``time.perf_counter`` of this process: the members are in this process, so one clock
measures the push latency). A :class:`PushLedger` per run counts, for each member, the
pushes that never came, came twice, or came after a later one of the same sender.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from bench.loopback import CpuSnapshot
from pomelo_twisted.client import PomeloClient, connect

__all__ = [
    "ENTRY",
    "JOIN",
    "PUSH",
    "SEND",
    "BroadcastResult",
    "PushLedger",
    "Room",
    "push_content",
    "send_schedule",
]

ENTRY = "connector.entryHandler.entry"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
PUSH = "onChat"
CODE_OK = 200
CONNECT_BATCH = 50
"""Connections opened at once (Twisted's default listen backlog is 50)."""
MAX_EXAMPLES = 5


def push_content(run: int, sender: int, seq: int, sent_at: float) -> dict[str, Any]:
    """The ``content`` of one send: run, sender index, sequence number (from 1), send time."""
    return {"r": run, "s": sender, "n": seq, "t": sent_at}


def content_of(push: Any) -> dict[str, Any] | None:
    """The :func:`push_content` an ``onChat`` push carries (as a JSON string), or None."""
    content = push.get("content") if isinstance(push, dict) else None
    if not isinstance(content, str):
        return None
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def send_schedule(senders: int, rate: float, duration: float) -> list[list[float]]:
    """Send times (s from the start) of each sender: ``rate``/s for ``duration`` s.

    The senders are staggered evenly within one period so that the sends are spread.
    """
    count = max(1, round(duration * rate))
    period = 1.0 / rate
    return [[(sender / senders + k) * period for k in range(count)] for sender in range(senders)]


class PushLedger:
    """What each member received from each sender in one run.

    ``received`` counts distinct pushes; a push with a lower number than one already
    received from the same sender is also counted as reordered.
    """

    def __init__(self, members: int, senders: int) -> None:
        self.senders = senders
        self._seen: list[list[set[int]]] = [[set() for _ in range(senders)] for _ in range(members)]
        self._highest: list[list[int]] = [[0] * senders for _ in range(members)]
        self.duplicates = [0] * members
        self.reordered = [0] * members
        self.stray = 0
        self.received = 0

    def record(self, member: int, sender: Any, seq: Any) -> None:
        """Member ``member`` got push ``seq`` of ``sender`` (anything unknown is stray)."""
        if not (isinstance(sender, int) and 0 <= sender < self.senders and isinstance(seq, int)):
            self.stray += 1
            return
        seen = self._seen[member][sender]
        if seq in seen:
            self.duplicates[member] += 1
            return
        seen.add(seq)
        self.received += 1
        highest = self._highest[member]
        if seq < highest[sender]:
            self.reordered[member] += 1
        else:
            highest[sender] = seq

    def missing(self, sent: Sequence[int]) -> list[int]:
        """Per member: pushes not received of the ``sent[s]`` sends (1..n) of each sender."""
        return [
            sum(n - sum(1 for seq in seen[s] if 1 <= seq <= n) for s, n in enumerate(sent))
            for seen in self._seen
        ]


@dataclass
class BroadcastResult:
    """One timed broadcast run."""

    run: int
    members: int
    senders: int
    send_rate: float
    sent: int
    send_ok: int
    send_errors: int
    expected: int
    delivered: int
    seconds: float
    rate: float
    expected_rate: float
    missing: int
    members_missing: int
    duplicates: int
    reordered: int
    stray: int
    drained: bool
    send_lag_max_s: float
    cpu_wall_s: float
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


@dataclass
class _Run:
    """The state the push callbacks and the senders update during one run."""

    number: int
    ledger: PushLedger
    latencies: list[float] = field(default_factory=list)
    last_push: float = 0.0
    send_lag: float = 0.0
    answered: int = 0
    send_ok: int = 0
    send_errors: int = 0
    examples: list[str] = field(default_factory=list)

    def finished(self, sends: int, pushes: int) -> bool:
        """Every send answered and every push received."""
        return self.answered >= sends and self.ledger.received >= pushes

    def example(self, text: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text[:200])


async def _request_all(
    clients: Sequence[PomeloClient], route: str, bodies: Sequence[Any]
) -> list[dict[str, Any]]:
    """Request ``route`` on every client at once; raise unless every answer is code 200."""
    replies = await defer.gatherResults(
        [client.request(route, body) for client, body in zip(clients, bodies, strict=True)],
        consumeErrors=True,
    )
    bad = [r for r in replies if not (isinstance(r, dict) and r.get("code") == CODE_OK)]
    if bad:
        raise RuntimeError(f"{route}: {len(bad)} of {len(replies)} failed, e.g. {bad[0]!r}")
    return replies


class Room:
    """M connected members of room ``rid``; ``close()`` it in a ``finally``."""

    def __init__(self, clients: list[PomeloClient], rid: str) -> None:
        self.clients = clients
        self.rid = rid
        self.current: _Run | None = None
        for member, client in enumerate(clients):
            client.on(PUSH, self._receiver(member))

    @classmethod
    async def open(cls, reactor: Any, port: int, members: int, rid: str) -> Room:
        """Connect ``members`` clients, ``entry`` each with its own uid, ``join`` them all."""
        clients: list[PomeloClient] = []
        try:
            for first in range(0, members, CONNECT_BATCH):
                batch = range(first, min(members, first + CONNECT_BATCH))
                ds = [connect(reactor, f"tcp:127.0.0.1:{port}") for _ in batch]
                clients += await defer.gatherResults(ds, consumeErrors=True)
            room = cls(clients, rid)
            await _request_all(clients, ENTRY, [{"uid": f"bench-{i}"} for i in range(members)])
            joined = await _request_all(clients, JOIN, [{"rid": rid}] * members)
        except BaseException:
            await defer.gatherResults([c.close() for c in clients])
            raise
        size = max(len(reply.get("members", ())) for reply in joined)
        if size != members:
            await room.close()
            raise RuntimeError(f"room {rid} has {size} members, expected {members}")
        return room

    def _receiver(self, member: int) -> Callable[[Any], None]:
        def pushed(body: Any) -> None:
            now = time.perf_counter()
            run = self.current
            if run is None:
                return
            content = content_of(body)
            if content is None or content.get("r") != run.number:
                run.ledger.stray += 1
                run.example(f"member {member}: unexpected push {body!r}")
                return
            run.ledger.record(member, content.get("s"), content.get("n"))
            run.latencies.append(now - content["t"])
            run.last_push = now

        return pushed

    async def close(self) -> None:
        """Close every connection."""
        await defer.gatherResults([c.close() for c in self.clients])

    async def run(
        self,
        reactor: Any,
        number: int,
        senders: int,
        rate: float,
        duration: float,
        server_cpu: Callable[[], float | None],
        drain: float = 10.0,
    ) -> BroadcastResult:
        """Send for ``duration`` s, wait up to ``drain`` s more for every push, count."""
        members = len(self.clients)
        schedule = send_schedule(senders, rate, duration)
        sent = [len(times) for times in schedule]
        expected = sum(sent) * members
        run = self.current = _Run(number, PushLedger(members, senders))
        cpu_start = CpuSnapshot.take(server_cpu)
        start = time.perf_counter()
        for sender, times in enumerate(schedule):
            self._send_at(reactor, run, start, sender, times, 0)
        deadline = start + duration + drain
        while not run.finished(sum(sent), expected) and time.perf_counter() < deadline:
            await deferLater(reactor, 0.02, lambda: None)
        drained = run.finished(sum(sent), expected)
        cpu_end = CpuSnapshot.take(server_cpu)
        self.current = None
        seconds = max(duration, run.last_push - start)
        missing = run.ledger.missing(sent)
        client_cpu = cpu_end.client - cpu_start.client
        server_cpu_s = (
            None
            if cpu_start.server is None or cpu_end.server is None
            else cpu_end.server - cpu_start.server
        )
        elapsed = time.perf_counter() - start
        busy = cpu_end.machine - cpu_start.machine
        sent_total = sum(sent)
        return BroadcastResult(
            run=number,
            members=members,
            senders=senders,
            send_rate=rate,
            sent=sent_total,
            send_ok=run.send_ok,
            send_errors=run.send_errors,
            expected=expected,
            delivered=run.ledger.received,
            seconds=seconds,
            rate=run.ledger.received / seconds,
            expected_rate=senders * rate * members,
            missing=sum(missing),
            members_missing=sum(1 for m in missing if m),
            duplicates=sum(run.ledger.duplicates),
            reordered=sum(run.ledger.reordered),
            stray=run.ledger.stray,
            drained=drained,
            send_lag_max_s=run.send_lag,
            client_cpu_s=client_cpu,
            server_cpu_s=server_cpu_s,
            cpu_wall_s=elapsed,
            other_cpu_s=max(0.0, busy - client_cpu - (server_cpu_s or 0.0)),
            examples=run.examples,
            latencies=run.latencies,
        )

    def _send_at(
        self, reactor: Any, run: _Run, start: float, sender: int, times: list[float], k: int
    ) -> None:
        """Send ``k`` of ``sender`` at ``start + times[k]``; the next is scheduled from it."""
        delay = start + times[k] - time.perf_counter()
        if delay > 0:
            reactor.callLater(delay, self._send_at, reactor, run, start, sender, times, k)
            return
        now = time.perf_counter()
        run.send_lag = max(run.send_lag, -delay)
        content = push_content(run.number, sender, k + 1, now)
        # Sent as a string: the example game's typed chat route takes a string content.
        d = self.clients[sender].request(SEND, {"rid": self.rid, "content": json.dumps(content)})
        d.addCallbacks(self._sent, self._send_failed, callbackArgs=(run,), errbackArgs=(run,))
        if k + 1 < len(times):
            self._send_at(reactor, run, start, sender, times, k + 1)

    @staticmethod
    def _sent(reply: Any, run: _Run) -> None:
        run.answered += 1
        if isinstance(reply, dict) and reply.get("code") == CODE_OK:
            run.send_ok += 1
        else:
            run.send_errors += 1
            run.example(f"send answered {reply!r}")

    @staticmethod
    def _send_failed(failure: Failure, run: _Run) -> None:
        run.answered += 1
        run.send_errors += 1
        run.example(f"send failed: {failure.getErrorMessage()}")
