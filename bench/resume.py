"""Session resume under load, on a real cluster of the example game.

``python bench/resume.py [--listeners 40] [--talkers 10] [--rooms 5] [--duration 20] [--keep]``

Chat bots in ``--rooms`` rooms: the *talkers* (on connector-server-2, never dropped) send
numbered messages every ``--interval`` seconds; the *listeners* (on connector-server-1,
through a :class:`~pomelo_twisted.testing.dropproxy.DroppingProxy` standing for the
network, with the resuming client) receive them. Mid-run the network kills every
listener's connection twice: once aborting the server's socket first, once the client's,
losing what was in flight. Counted and checked:

- every listener resumed after each drop (no resume refused) — and how long it took;
- every listener received every message of every talker of its room **exactly once and
  in order** (missing, duplicate and out-of-order pushes counted);
- the rooms never saw a listener leave: right after each wave a talker's ``join`` lists
  every listener of its room, and the chat servers served no ``chatRemote.leave`` during
  the run (their ``/metrics``);
- no traceback and no line above info in any log.

Prints one row per check (PASS/FAIL, the figures) and exits 1 if one fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import statistics
import urllib.request
from collections import defaultdict
from itertools import pairwise
from random import Random
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import task
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.endpoints import TCP4ServerEndpoint

from bench.cluster import Cluster
from pomelo_twisted.client import PomeloClient, ResumingClient, connect, connect_resumable
from pomelo_twisted.testing.dropproxy import DroppingProxy

ENTRY = "connector.entryHandler.entry"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"


class Listener:
    """A resuming chat client whose connection the network kills; what it received."""

    def __init__(self, uid: str, rid: str, client: ResumingClient, clock: Any) -> None:
        self.uid, self.rid, self.client, self.clock = uid, rid, client, clock
        self.received: dict[str, list[int]] = defaultdict(list)
        self.resumed: list[float] = []
        self.failed: list[str] = []
        self.dropped_at: float | None = None
        client.on("onChat", self.pushed)
        client.on_reconnect(self.reconnected)
        client.on_resume_failed(self.failed.append)

    def pushed(self, body: Any) -> None:
        sender, content = body.get("from"), body.get("content")
        if isinstance(sender, str) and sender.startswith("talker-") and isinstance(content, str):
            self.received[sender].append(int(content.split(" ", 1)[0]))

    def reconnected(self, _client: ResumingClient) -> None:
        if self.dropped_at is not None:
            self.resumed.append(self.clock.seconds() - self.dropped_at)
            self.dropped_at = None


def leaves_served(host: str, port: int) -> int:
    """``chatRemote.leave`` RPCs a chat server served, from its ``/metrics``."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with urllib.request.urlopen(f"http://{netloc}/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "pomelo_rpc_served":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and any(
                "leave" in value for value in sample.labels.values()
            ):
                total += sample.value
    return int(total)


async def until(clock: Any, condition: Any, seconds: float) -> bool:
    """Whether ``condition()`` came true within ``seconds`` (checked every 0.1 s)."""
    deadline = clock.seconds() + seconds
    while not condition():
        if clock.seconds() > deadline:
            return False
        await task.deferLater(clock, 0.1, lambda: None)
    return True


async def scenario(reactor: Any, cluster: Cluster, args: argparse.Namespace) -> list[tuple]:
    rooms = [f"resume-{n}" for n in range(args.rooms)]
    entry1 = next(
        e for e in cluster.layout["servers"]["connector"] if e["id"] == "connector-server-1"
    )
    proxy = DroppingProxy(entry1["clientHost"], entry1["clientPort"])
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(proxy)
    target = f"tcp:127.0.0.1:{port.getHost().port}"
    talkers: list[tuple[str, str, PomeloClient]] = []
    for n in range(args.talkers):
        uid, rid = f"talker-{n}", rooms[n % args.rooms]
        client = await connect(reactor, cluster.target("connector-server-2"), timeout=10)
        await client.request(ENTRY, {"uid": uid, "rid": rid})
        await client.request(JOIN, {"rid": rid})
        talkers.append((uid, rid, client))
    listeners: list[Listener] = []
    for n in range(args.listeners):
        uid, rid = f"listener-{n}", rooms[n % args.rooms]
        client = await connect_resumable(
            reactor, target, Random(n), initial_delay=0.1, max_delay=1.0, timeout=10
        )
        listener = Listener(uid, rid, client, reactor)
        await client.request(ENTRY, {"uid": uid, "rid": rid})
        await client.request(JOIN, {"rid": rid})
        listeners.append(listener)
    sent: dict[str, int] = {uid: 0 for uid, _, _ in talkers}
    talking = True

    async def talk(uid: str, rid: str, client: PomeloClient) -> None:
        while talking:
            sent[uid] += 1
            await client.request(SEND, {"rid": rid, "content": f"{sent[uid]} from {uid}"})
            await task.deferLater(reactor, args.interval, lambda: None)

    talks = [ensureDeferred(talk(*t)) for t in talkers]
    members_ok: list[bool] = []
    random = Random(42)
    for server_side_first in (True, False):
        await task.deferLater(reactor, args.duration / 3, lambda: None)
        began = reactor.seconds()  # time to resume counts from the wave's start
        for listener in listeners:
            listener.dropped_at = began
        live = [c for c in proxy.connections if c.transport is not None and c.transport.connected]
        for connection in live:  # spread over half a second, like a network going down
            await task.deferLater(reactor, random.uniform(0, 0.5 / max(1, len(live))), lambda: None)
            proxy.kill(connection, server_side_first=server_side_first)
        for _uid, rid, client in talkers[: args.rooms]:
            reply = await client.request(JOIN, {"rid": rid})
            expected = {lis.uid for lis in listeners if lis.rid == rid}
            members_ok.append(expected <= set(reply.get("members", [])))
        await until(reactor, lambda: all(lis.client.connected for lis in listeners), 20.0)
    await task.deferLater(reactor, args.duration / 3, lambda: None)
    talking = False
    await gatherResults(talks)
    expected_of = {rid: [(uid, sent[uid]) for uid, r, _ in talkers if r == rid] for rid in rooms}
    complete = await until(
        reactor,
        lambda: all(
            len(lis.received[uid]) >= count
            for lis in listeners
            for uid, count in expected_of[lis.rid]
        ),
        15.0,
    )
    leaves = sum(
        leaves_served(e["host"], e["metricsPort"]) for e in cluster.layout["servers"]["chat"]
    )
    expected = missing = duplicates = disorder = 0
    for lis in listeners:
        for uid, count in expected_of[lis.rid]:
            got = lis.received[uid]
            expected += count
            missing += len(set(range(1, count + 1)) - set(got))
            duplicates += len(got) - len(set(got))
            disorder += sum(1 for a, b in pairwise(got) if b <= a)
    resumed = [t for lis in listeners for t in lis.resumed]
    failed = [r for lis in listeners for r in lis.failed]
    for lis in listeners:
        await lis.client.close()
    for _, _, client in talkers:
        await client.close()
    await port.stopListening()
    delivered = sum(len(v) for lis in listeners for v in lis.received.values())
    quantiles = statistics.quantiles(resumed, n=100) if len(resumed) >= 2 else resumed * 2
    return [
        (
            "connections killed (2 waves: server side first, then client side first)",
            proxy.killed == 2 * args.listeners,
            f"{proxy.killed} of {2 * args.listeners}",
        ),
        (
            "every drop resumed, none refused",
            len(resumed) == proxy.killed and not failed,
            f"{len(resumed)} resumed, {len(failed)} refused {sorted(set(failed))[:3]}; "
            f"time to resume p50 {statistics.median(resumed) * 1000 if resumed else 0:.0f} ms, "
            f"p99 {quantiles[98] * 1000 if len(resumed) >= 2 else 0:.0f} ms",
        ),
        (
            "every message exactly once, in order",
            complete and missing == duplicates == disorder == 0,
            f"{sum(sent.values())} sent, {expected} expected by listeners, {delivered} received: "
            f"{missing} missing, {duplicates} duplicate, {disorder} out of order",
        ),
        (
            "rooms never saw a listener leave",
            all(members_ok) and leaves == 0,
            f"join listed every listener {sum(members_ok)}/{len(members_ok)} times; "
            f"chatRemote.leave served: {leaves}",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=40)
    parser.add_argument("--talkers", type=int, default=10)
    parser.add_argument("--rooms", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--duration", type=float, default=21.0)
    parser.add_argument("--keep", action="store_true", help="keep the cluster's folder")
    args = parser.parse_args(argv)
    cluster = Cluster()
    rows: list[tuple] = []
    try:
        cluster.start()
        offsets = cluster.log_offsets()

        def run(reactor: Any) -> Deferred[None]:
            async def go() -> None:
                rows.extend(await scenario(reactor, cluster, args))

            return ensureDeferred(go())

        task.react(lambda reactor: run(reactor), [])  # type: ignore[no-untyped-call]
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            print(f"the run failed (exit {exit_.code}); see above")
            cluster.close(keep=True)
            return 1
    problems = cluster.problems(offsets)
    tracebacks = sum(len(tb) for tb, _ in problems.values())
    above = sum(len(lines) for _, lines in problems.values())
    rows.append(
        (
            "logs: no traceback, nothing above info",
            tracebacks == above == 0,
            f"{tracebacks} traceback lines, {above} lines above info",
        )
    )
    cluster.close(keep=args.keep)
    failed = 0
    for what, ok, figures in rows:
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {what}: {figures}")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
