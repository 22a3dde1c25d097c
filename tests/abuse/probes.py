"""Bad-input probes on real sockets, each against a ``host:port`` of a running server.

Each probe plays one abusive client and fires with a dict of what it measured (printed by
the tests, some asserted there); it asserts only what the client itself can see. The
tests of :mod:`tests.abuse.test_bad_inputs` run them against an in-process server (and
check its state); :mod:`tests.abuse.test_log_budget` runs them all against one server
process whose log goes to a file. :class:`GoodClient` is the well-behaved client kept
connected throughout, which must keep getting answers.

The server they expect (:data:`PROBE_CONFIG`): handshake deadline 2 s, heartbeat 1 s,
256 KiB of pending output per connection, upgrade timeout 1 s, 500 requests/s.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectError
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.client import PomeloClient, connect
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

from ..acceptors.helpers import client_frame, upgrade_request

ECHO = "connector.entryHandler.echo"
PUSH = "connector.entryHandler.push"

PROBE_CONFIG = AgentConfig(
    handshake_timeout=2.0,
    heartbeat=1.0,
    max_pending_bytes=256 * 1024,
    upgrade_timeout=1.0,
    request_rate=500.0,
    request_burst=500,
    max_packet_size=64 * 1024,
)
"""The limits of the server under probe (small, so that each probe ends quickly)."""

Probe = Callable[[str, int], Deferred[dict[str, Any]]]


class GoodClient:
    """A well-behaved client: an echo request every 20 ms, each answered in < 2 s."""

    def __init__(self) -> None:
        self.answers = 0
        self.slowest = 0.0
        self._running = False
        self._loop: Deferred[None] | None = None
        self.client: PomeloClient | None = None

    @inlineCallbacks
    def start(self, host: str, port: int) -> Any:
        self.client = yield connect(reactor, f"tcp:{host}:{port}", timeout=5)
        self._running = True
        self._loop = self._run()

    @inlineCallbacks
    def _run(self) -> Any:
        assert self.client is not None
        while self._running:
            sent = time.perf_counter()
            reply = yield self.client.request(ECHO, {"n": self.answers})
            assert reply == {"n": self.answers}, reply
            took = time.perf_counter() - sent
            self.slowest = max(self.slowest, took)
            assert took < 2.0, f"the good client waited {took:.2f} s"
            self.answers += 1
            yield deferLater(reactor, 0.02)

    @inlineCallbacks
    def answered_more(self, count: int = 3) -> Any:
        """Wait until ``count`` more answers came (the client still served)."""
        target = self.answers + count
        while self.answers < target:
            assert self._loop is not None and not self._loop.called, "the good client stopped"
            yield deferLater(reactor, 0.02)

    @inlineCallbacks
    def stop(self) -> Any:
        self._running = False
        if self._loop is not None:
            yield self._loop
        if self.client is not None:
            yield self.client.close()


class Raw(Protocol):
    """A raw client: records what it gets, when it connected and when it was closed."""

    def __init__(self) -> None:
        self.received = b""
        self.lost: Deferred[float] = Deferred()
        self.started = 0.0

    def connectionMade(self) -> None:
        self.started = time.perf_counter()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(time.perf_counter() - self.started)


class PomeloRaw(Raw):
    """A raw Pomelo client that handshakes (and acks), then does what the probe says."""

    def __init__(self, ack: bool = True) -> None:
        super().__init__()
        self.client = ClientConnection()
        self.ack = ack
        self.ready: Deferred[None] = Deferred()
        self.kicked: str | None = None
        self.acked_at = 0.0
        self.refused = 0
        """Requests answered 429."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.write(self.client.send(ClientHandshake(sys={"type": "probe"})))

    def dataReceived(self, data: bytes) -> None:
        for event in self.client.receive_data(data):
            if isinstance(event, HandshakeResponse):
                if self.ack:
                    self.transport.write(self.client.send(HandshakeAck()))
                self.acked_at = time.perf_counter()
                self.ready.callback(None)
            elif isinstance(event, Kick):
                self.kicked = event.reason
            elif isinstance(event, Response) and b'"code":429' in event.body:
                self.refused += 1

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.ready.called:
            self.ready.errback(reason)
        super().connectionLost(reason)


@inlineCallbacks
def open_raw(host: str, port: int, proto: Raw | None = None) -> Any:
    """A connected :class:`Raw` (or ``proto``)."""
    proto = proto if proto is not None else Raw()
    yield connectProtocol(TCP4ClientEndpoint(reactor, host, port), proto)
    return proto


def requests(first_id: int, count: int, body: bytes = b"{}", route: str = ECHO) -> bytes:
    """``count`` requests with ids from ``first_id``, as the bytes of one write."""
    return b"".join(
        encode_package(PackageType.DATA, encode_message(MessageType.REQUEST, i, route, body))
        for i in range(first_id, first_id + count)
    )


# -- the probes of this wave --------------------------------------------------------


@inlineCallbacks
def idle(host: str, port: int) -> Any:
    """Connects and never sends: closed at the handshake deadline."""
    raw = yield open_raw(host, port)
    seconds = yield raw.lost
    assert raw.received == b"", raw.received[:100]
    return {"closed after s": round(seconds, 2)}


@inlineCallbacks
def missed_heartbeats(host: str, port: int) -> Any:
    """Handshakes and acks, then never sends a heartbeat: closed within 2xH + 1 s."""
    raw = yield open_raw(host, port, PomeloRaw())
    yield raw.ready
    yield raw.lost
    seconds = time.perf_counter() - raw.acked_at
    return {"closed after s": round(seconds, 2)}


@inlineCallbacks
def never_reads(host: str, port: int) -> Any:
    """Asks for pushes of 60 KiB and never reads them: closed as a slow consumer."""
    raw = yield open_raw(host, port, PomeloRaw())
    yield raw.ready
    raw.transport.pauseProducing()  # never read again
    body = json.dumps({"pad": "x" * 60_000}).encode()
    sent = [0]

    def send() -> None:
        if raw.lost.called:
            return
        raw.transport.write(requests(sent[0] + 1, 20, body, PUSH))
        sent[0] += 20

    loop = LoopingCall(send)
    loop.clock = reactor
    loop.start(0.1)
    try:
        seconds = yield raw.lost.addTimeout(20, reactor)
    finally:
        loop.stop()
    return {"pushes asked": sent[0], "closed after s": round(seconds, 2)}


@inlineCallbacks
def length_over_limit(host: str, port: int) -> Any:
    """A package header declaring 16 MiB - 1: closed at once, from the header alone."""
    raw = yield open_raw(host, port)
    raw.transport.write(bytes((PackageType.HANDSHAKE, 0xFF, 0xFF, 0xFF)))
    seconds = yield raw.lost.addTimeout(5, reactor)
    assert seconds < 1.0, seconds
    return {"closed after s": round(seconds, 3)}


class _StormClient(Protocol):
    def __init__(self, done: Callable[[str], None]) -> None:
        self.client = ClientConnection()
        self.done = done
        self.outcome: str | None = None

    def connectionMade(self) -> None:
        self.transport.write(self.client.send(ClientHandshake(sys={"type": "storm"})))

    def dataReceived(self, data: bytes) -> None:
        for event in self.client.receive_data(data):
            if isinstance(event, HandshakeResponse) and self.outcome is None:
                self.outcome = "completed"
                self.transport.write(self.client.send(HandshakeAck()))
                self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done(self.outcome or "closed before the handshake answer")


class _StormFactory(ClientFactory):
    def __init__(self, done: Callable[[str], None]) -> None:
        self.done = done

    def buildProtocol(self, addr: object) -> _StormClient:
        return _StormClient(self.done)

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
        self.done("connect failed" if reason.check(ConnectError) else repr(reason.value))


@inlineCallbacks
def storm(host: str, port: int, count: int = 5000, seconds: float = 2.0) -> Any:
    """``count`` connections opened over ``seconds``, each handshakes, acks and closes:
    every one completes or is refused cleanly (a closed or refused connection)."""
    outcomes: dict[str, int] = {}
    finished: Deferred[None] = Deferred()
    started = time.perf_counter()
    opened = [0]
    ended = [0.0]

    def done(outcome: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if sum(outcomes.values()) == count:
            ended[0] = time.perf_counter() - started
            finished.callback(None)

    factory = _StormFactory(done)

    def launch() -> None:
        # As many as are due by now: a busy reactor's late tick catches up.
        due = min(count, int(count * (time.perf_counter() - started) / seconds) + 1)
        while opened[0] < due:
            reactor.connectTCP(host, port, factory, timeout=30)
            opened[0] += 1
        if opened[0] >= count:
            loop.stop()

    loop = LoopingCall(launch)
    loop.clock = reactor
    yield loop.start(0.01)
    launched = time.perf_counter() - started
    yield finished.addTimeout(60, reactor)
    return {
        "connections": count,
        "launched in s": round(launched, 2),
        "all done in s": round(ended[0], 2),
        "outcomes": outcomes,
    }


# -- the first wave's probe classes, again, as functions ----------------------------


@inlineCallbacks
def ignored_heartbeats(host: str, port: int) -> Any:
    """1 MiB of heartbeats before the ack (each one ignored): kicked, nothing logged each."""
    raw = yield open_raw(host, port, PomeloRaw(ack=False))
    yield raw.ready
    raw.transport.write(encode_package(PackageType.HEARTBEAT, b"") * (1 << 18))
    seconds = yield raw.lost.addTimeout(10, reactor)
    return {"closed after s": round(seconds, 2)}


@inlineCallbacks
def message_flood(host: str, port: int) -> Any:
    """10x the rate limit for 2 s: throttled (429) or kicked."""
    raw = yield open_raw(host, port, PomeloRaw())
    yield raw.ready
    sent = [0]

    def send() -> None:
        if not raw.lost.called:
            raw.transport.write(requests(sent[0] + 1, 50))
            sent[0] += 50

    loop = LoopingCall(send)
    loop.clock = reactor
    loop.start(0.01)
    yield deferLater(reactor, 2.0)
    loop.stop()
    raw.transport.abortConnection()
    yield raw.lost
    return {"sent": sent[0], "kicked": raw.kicked, "429s": raw.refused}


@inlineCallbacks
def burst(host: str, port: int) -> Any:
    """20,000 requests in one write: handled in slices, the sender kicked."""
    raw = yield open_raw(host, port, PomeloRaw())
    yield raw.ready
    raw.transport.write(requests(1, 20_000))
    yield raw.lost.addTimeout(20, reactor)
    return {"kicked": raw.kicked}


@inlineCallbacks
def garbage(host: str, port: int) -> Any:
    """Random bytes, then a bad package type: closed at once."""
    raw = yield open_raw(host, port)
    raw.transport.write(b"\x09" + bytes(range(256)) * 8)
    seconds = yield raw.lost.addTimeout(5, reactor)
    return {"closed after s": round(seconds, 3)}


@inlineCallbacks
def slowloris(host: str, port: int) -> Any:
    """One upgrade byte per 200 ms: dropped at the upgrade timeout."""
    raw = yield open_raw(host, port)
    request, sent = upgrade_request(), [0]

    def drip() -> None:
        if not raw.lost.called:
            raw.transport.write(request[sent[0] : sent[0] + 1])
            sent[0] += 1

    loop = LoopingCall(drip)
    loop.clock = reactor
    loop.start(0.2)
    seconds = yield raw.lost.addTimeout(10, reactor)
    loop.stop()
    return {"closed after s": round(seconds, 2)}


@inlineCallbacks
def header_flood(host: str, port: int) -> Any:
    """Twenty sockets flooding upgrade header lines: each answered 431 and closed."""
    raws = []
    for _ in range(20):
        raw = yield open_raw(host, port)
        raw.transport.write(b"GET / HTTP/1.1\r\n" + (b"X-Flood: " + b"a" * 1000 + b"\r\n") * 64)
        raws.append(raw)
    yield gatherResults([raw.lost for raw in raws]).addTimeout(10, reactor)
    statuses = sorted({raw.received[:12] for raw in raws})
    return {"answers": [s.decode("latin-1") for s in statuses]}


@inlineCallbacks
def oversized_frame(host: str, port: int) -> Any:
    """A WebSocket frame header over the limit: closed (1009) at once."""
    raw = yield open_raw(host, port)
    raw.transport.write(upgrade_request())
    raw.transport.write(b"\x82\xff" + (1 << 40).to_bytes(8, "big") + b"\x01\x02\x03\x04")
    seconds = yield raw.lost.addTimeout(5, reactor)
    return {"closed after s": round(seconds, 3)}


@inlineCallbacks
def deflate_bomb(host: str, port: int) -> Any:
    """A deflate offer then a 16 MiB bomb with RSV1: declined, refused (1002)."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(b"\0" * (16 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    frame = client_frame(payload)
    raw = yield open_raw(host, port)
    raw.transport.write(
        upgrade_request()[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
    )
    raw.transport.write(bytes((frame[0] | 0x40,)) + frame[1:])
    seconds = yield raw.lost.addTimeout(5, reactor)
    return {"closed after s": round(seconds, 3)}


@inlineCallbacks
def websocket_burst(host: str, port: int) -> Any:
    """20,000 requests as WebSocket messages in one write: sliced, the sender kicked."""
    raw = yield open_raw(host, port)
    handshake = ClientConnection()
    raw.transport.write(
        upgrade_request() + client_frame(handshake.send(ClientHandshake(sys={"type": "ws"})))
    )
    while b"\r\n\r\n" not in raw.received or len(raw.received.partition(b"\r\n\r\n")[2]) < 2:
        yield deferLater(reactor, 0.01)
    ack = client_frame(encode_package(PackageType.HANDSHAKE_ACK, b""))
    frames = b"".join(
        client_frame(
            encode_package(PackageType.DATA, encode_message(MessageType.REQUEST, i, ECHO, b"{}"))
        )
        for i in range(1, 20_001)
    )
    raw.transport.write(ack + frames)
    seconds = yield raw.lost.addTimeout(20, reactor)
    return {"closed after s": round(seconds, 2), "bytes answered": len(raw.received)}


PROBES: dict[str, Probe] = {
    "idle connection": idle,
    "missed heartbeats": missed_heartbeats,
    "client that never reads": never_reads,
    "TCP length prefix over the limit": length_over_limit,
    "connection storm": storm,
    "ignored heartbeats before the ack": ignored_heartbeats,
    "message flood": message_flood,
    "20,000-request burst": burst,
    "garbage bytes": garbage,
    "slowloris on the upgrade": slowloris,
    "header flood": header_flood,
    "oversized WebSocket frame": oversized_frame,
    "deflate bomb": deflate_bomb,
    "WebSocket 20,000-request burst": websocket_burst,
}
"""Every bad-input probe class, by name (the log budget runs them all)."""
