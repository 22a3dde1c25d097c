"""Real-socket probes of issue 12: a message flood and a 20,000-request burst on loopback.

Each runs an echo acceptor and, beside the abusive client, a well-behaved one that sends
one request at a time and times every answer: it must keep getting answers. The
latencies (p50 and p99, before and during the abuse) are printed, never asserted: the
machine running the suite may be busy.
"""

from __future__ import annotations

import json
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.client import PomeloClient
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    HandshakeResponse,
    Kick,
    MessageType,
    PackageType,
    Response,
    encode_message,
    encode_package,
)

from ..integration.test_loopback import ECHO, LoopbackTestCase

RATE = 500.0
"""The request rate limit of the flood probe (requests/s per connection)."""
PACE = 0.005
"""Seconds between two requests of the well-behaved client (at most 200/s)."""


def requests(first_id: int, count: int) -> bytes:
    """``count`` echo requests with ids from ``first_id``, as one write."""
    return b"".join(
        encode_package(PackageType.DATA, encode_message(MessageType.REQUEST, i, ECHO, b"{}"))
        for i in range(first_id, first_id + count)
    )


class Abuser(Protocol):
    """A raw Pomelo client: handshakes, then lets the test write what it likes; counts
    the answers by code and notes a kick."""

    def __init__(self) -> None:
        self.client = ClientConnection()
        self.ready: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.codes: dict[int, int] = {}
        self.kicked: str | None = None
        self.next_id = 1

    def connectionMade(self) -> None:
        self.transport.write(self.client.send(ClientHandshake(sys={"type": "abuser"})))

    def dataReceived(self, data: bytes) -> None:
        for event in self.client.receive_data(data):
            if isinstance(event, HandshakeResponse):
                self.transport.write(self.client.send(HandshakeAck()))
                self.ready.callback(None)
            elif isinstance(event, Response):
                code = json.loads(event.body).get("code", 200) if event.body else 200
                self.codes[code] = self.codes.get(code, 0) + 1
            elif isinstance(event, Kick):
                self.kicked = event.reason

    def send_requests(self, count: int) -> None:
        if self.transport is not None and self.transport.connected:
            self.transport.write(requests(self.next_id, count))
            self.next_id += count

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` in milliseconds, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class FloodTests(LoopbackTestCase):
    """Other clients keep being answered while one abuses its connection."""

    timeout = 30

    @inlineCallbacks
    def measure(self, client: PomeloClient, seconds: float) -> Any:
        """Echo requests one at a time, ``PACE`` apart, for ``seconds``; their latencies."""
        latencies: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            yield client.request(ECHO, {"n": len(latencies)})
            latencies.append(time.perf_counter() - start)
            yield deferLater(reactor, PACE, lambda: None)  # well under the rate limit
        return latencies

    @inlineCallbacks
    def setup_pair(self, config: AgentConfig) -> Any:
        server = yield self.serve()
        server.agents.config = config
        normal = yield self.client(f"tcp:127.0.0.1:{server.port}")
        abuser = Abuser()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", server.port)
        yield connectProtocol(endpoint, abuser)
        self.addCleanup(lambda: abuser.transport.abortConnection() or abuser.lost)
        yield abuser.ready
        return server, normal, abuser

    @inlineCallbacks
    def test_message_flood(self) -> Any:
        """10x the rate limit for 2 s: the flooder is throttled (429) or kicked, the
        other client keeps getting answers."""
        _server, normal, flooder = yield self.setup_pair(
            AgentConfig(request_rate=RATE, request_burst=int(RATE))
        )
        baseline = yield self.measure(normal, 0.5)
        per_tick = int(RATE * 10 / 100)  # 10x the rate, every 10 ms
        flood = LoopingCall(flooder.send_requests, per_tick)
        flood.clock = reactor
        flood.start(0.01)
        try:
            during = yield self.measure(normal, 2.0)
        finally:
            flood.stop()
        print(
            f"\nmessage flood ({RATE * 10:.0f} req/s for 2 s): other client p50/p99 "
            f"{percentile(baseline, 0.5):.2f}/{percentile(baseline, 0.99):.2f} ms before, "
            f"{percentile(during, 0.5):.2f}/{percentile(during, 0.99):.2f} ms during "
            f"({len(during)} answers); flooder answers by code {flooder.codes}, "
            f"kicked: {flooder.kicked!r}"
        )
        self.assertGreater(len(during), 20)
        self.assertTrue(flooder.codes.get(429) or flooder.kicked)

    @inlineCallbacks
    def test_burst_of_20000_requests(self) -> Any:
        """20,000 requests in one write are handled in slices and the sender kicked;
        the other client keeps getting answers meanwhile."""
        _server, normal, flooder = yield self.setup_pair(AgentConfig())
        baseline = yield self.measure(normal, 0.5)
        flooder.send_requests(20_000)
        during = yield self.measure(normal, 1.0)
        yield deferLater(reactor, 0, lambda: None)
        print(
            f"\n20,000-request burst: other client p50/p99 "
            f"{percentile(baseline, 0.5):.2f}/{percentile(baseline, 0.99):.2f} ms before, "
            f"{percentile(during, 0.5):.2f}/{percentile(during, 0.99):.2f} ms during "
            f"({len(during)} answers); burst answers by code {flooder.codes}, "
            f"kicked: {flooder.kicked!r}"
        )
        self.assertGreater(len(during), 20)
        self.assertIsNotNone(flooder.kicked)
