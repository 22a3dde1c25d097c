"""One RPC hop in one process: microseconds per call, caller and callee, no sockets.

``python bench/rpc_hop.py [--calls N] [--batch B]`` makes N calls from one
PbRpcTransport to another over an in-memory network (Twisted's iosim, on a Clock), B
calls per reactor turn: the caller packs each call (with its budget) into the turn's
batch, the callee unpacks and runs each (within its deadline) and batches the answers,
the caller resolves them. It prints the best of five runs in microseconds per call,
first without a current deadline, then with every call made within one (a nested hop),
so the cost of carrying deadlines shows against the same script run on an older
checkout. Timings are only measured here, never asserted in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.task import Clock

from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import RemoteDispatcher
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.testing.network import MemoryNetwork

SECRET = b"bench-secret"
CHAT = ServerInfo(id="chat-1", type="chat", host="127.0.0.1", port=4250)


class Echo:
    """The remote: returns its argument."""

    def echo(self, value: Any) -> Any:
        return value


def setup() -> tuple[Clock, MemoryNetwork, PbRpcTransport]:
    clock = Clock()
    network = MemoryNetwork()
    chat = PbRpcTransport(clock, "chat-1", SECRET, rng=random.Random(1))
    dispatcher = RemoteDispatcher()
    dispatcher.add("echoRemote", Echo())
    chat.register("chat-1", dispatcher)
    network.listen(CHAT.rpc_client_endpoint, chat.server_factory())
    connector = PbRpcTransport(
        clock,
        "connector-1",
        SECRET,
        rng=random.Random(2),
        connect=lambda info: network.endpoint(info.rpc_client_endpoint),
    )
    connector.add_peer(CHAT)
    settle(clock, network)
    return clock, network, connector


def settle(clock: Clock, network: MemoryNetwork) -> None:
    for _ in range(100):
        network.flush()
        if not [c for c in clock.getDelayedCalls() if c.getTime() <= clock.seconds()]:
            return
        clock.advance(0)


def per_call(calls: int, batch: int, wrap: Callable[[Callable[[], None]], None]) -> float:
    clock, network, connector = setup()
    body = {"uid": "u1", "text": "x" * 64}
    best = float("inf")
    for _ in range(5):
        done = [0]

        def answered(_: object, done: list[int] = done) -> None:
            done[0] += 1

        start = time.perf_counter()
        for _ in range(calls // batch):

            def turn() -> None:
                for _ in range(batch):
                    d = connector.call("chat-1", "echoRemote", "echo", (body,), 5.0)
                    d.addCallback(answered)

            wrap(turn)
            settle(clock, network)
        best = min(best, time.perf_counter() - start)
        assert done[0] == calls // batch * batch, done
    return best / calls * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"{args.calls} calls, {args.batch} per turn, best of 5")
    print(f"plain call         {per_call(args.calls, args.batch, lambda f: f()):.2f} us/call")
    try:
        from pomelo_twisted.budget import within_deadline
    except ImportError:  # a checkout older than deadlines across hops
        return

    def nested(f: Callable[[], None]) -> None:
        within_deadline(1e9, f)

    print(f"within a deadline  {per_call(args.calls, args.batch, nested):.2f} us/call")


if __name__ == "__main__":
    main()
