"""Fair under abuse: ignored packages are counted and bounded, reads are handled in slices,
a client refused persistently is kicked, and nothing an attacker sends is logged per package."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.agent import Agent, AgentConfig
from pomelo_twisted.agent.agent import KICK_BACKLOG, KICK_IGNORED
from pomelo_twisted.agent.requests import KICK_RATE_LIMITED
from pomelo_twisted.interfaces import IAgentLink, ISlicedLink
from pomelo_twisted.protocol import (
    ClientHandshake,
    Kick,
    MessageType,
    PackageType,
    Response,
    encode_message,
    encode_package,
)
from pomelo_twisted.testing import EchoHandler

from .helpers import HEARTBEAT, SYS, connect, make_agents, open_connection

ECHO = "connector.entryHandler.echo"


def requests(first_id: int, count: int) -> bytes:
    """``count`` echo requests (ids from ``first_id``) as the bytes of one write."""
    return b"".join(
        encode_package(
            PackageType.DATA,
            encode_message(MessageType.REQUEST, i, ECHO, json.dumps({"i": i}).encode()),
        )
        for i in range(first_id, first_id + count)
    )


def turn(clock: Clock) -> None:
    """One reactor turn: run the calls due now, not those they schedule (``Clock.advance``
    would run a ``callLater(0)`` made by a call it runs, the reactor does not)."""
    due = [call for call in clock.getDelayedCalls() if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.called = 1
        call.func(*call.args, **call.kw)


@contextmanager
def captured_logs() -> Iterator[list[LogEvent]]:
    """Every log event emitted inside the block."""
    events: list[LogEvent] = []

    @implementer(ILogObserver)
    def observe(event: LogEvent) -> None:
        events.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield events
    finally:
        globalLogPublisher.removeObserver(observe)


class IgnoredPackageTests(SynchronousTestCase):
    """Packages the state table ignores."""

    def test_heartbeats_before_the_ack_are_counted_not_logged_then_kicked(self) -> None:
        """Heartbeats before the ack are counted; one over the limit kicks, one log line."""
        conn = connect(AgentConfig(max_ignored_packages=50, request_rate=None), ack=False)
        with captured_logs() as logs:
            conn.feed(HEARTBEAT * 50)
            self.assertTrue(conn.open)
            self.assertEqual(logs, [])
            conn.feed(HEARTBEAT * 1000)
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, f"kicked: {KICK_IGNORED}")
        self.assertEqual(conn.agents.metrics.dropped, {"heartbeat before the handshake ack": 51})
        self.assertEqual(conn.events(), [Kick(KICK_IGNORED)])
        self.assertEqual(len(logs), 1)

    def test_ignored_packages_spend_rate_limit_tokens(self) -> None:
        """A second handshake spends a token: the request after it is refused 429."""
        conn = connect(AgentConfig(request_rate=0.001, request_burst=2))
        handshake = encode_package(PackageType.HANDSHAKE, json.dumps({"sys": SYS}).encode())
        conn.feed(handshake * 2)
        conn.request(1, ECHO)
        ((msg_id, body),) = conn.responses()
        self.assertEqual((msg_id, body["code"]), (1, 429))

    def test_ignored_packages_do_not_keep_the_connection_alive(self) -> None:
        """Only packages the state takes reset the idle timer."""
        conn = connect(AgentConfig(heartbeat=5, heartbeat_timeout=10))
        conn.clock.advance(6)
        conn.feed(encode_package(PackageType.HANDSHAKE_ACK))  # a second ack: ignored
        conn.clock.advance(4.1)
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, "heartbeat timeout")

    def test_closing_logs_nothing(self) -> None:
        """Closes are counted in the metrics, not logged one line each."""
        agents = make_agents()
        conns = [connect(agents=agents) for _ in range(20)]
        with captured_logs() as logs:
            agents.close_all()
            for conn in conns:
                conn.transport.loseConnection()
        self.assertEqual(logs, [])
        self.assertEqual(agents.metrics.closed["server closed"], 20)


class CloseLogTests(SynchronousTestCase):
    """A close a client causes is one info line naming it, never a warning."""

    def test_protocol_error_is_one_info_line(self) -> None:
        """Garbage bytes close the connection with one info-level line naming the agent."""
        conn = connect()
        with captured_logs() as logs:
            conn.feed(b"\xff\x00\x00\x01x")
        self.assertFalse(conn.open)
        self.assertEqual(len(logs), 1)
        self.assertEqual(logs[0]["log_level"], LogLevel.info)
        self.assertIn("protocol error", logs[0]["log_format"])

    def test_slow_consumer_is_one_info_line(self) -> None:
        """A client over max_pending_bytes is closed with one info-level line."""
        conn = connect(AgentConfig(max_pending_bytes=64, request_rate=None))
        conn.transport.producer.pauseProducing()
        with captured_logs() as logs:
            conn.feed(requests(1, 20))
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, "slow consumer")
        self.assertEqual([e["log_level"] for e in logs], [LogLevel.info])


class SliceTests(SynchronousTestCase):
    """A long read is handled ``slice_events`` packages a reactor turn."""

    def test_tcp_link_is_a_sliced_link(self) -> None:
        """The raw TCP protocol provides ISlicedLink."""
        protocol, _ = open_connection(make_agents())
        self.assertTrue(verifyObject(ISlicedLink, protocol))

    def test_a_long_read_is_handled_in_slices_with_reads_paused(self) -> None:
        """10 requests with slices of 4: 4 answered now, 4 and 2 on the next turns."""
        conn = connect(AgentConfig(slice_events=4))
        conn.feed(requests(1, 10))
        self.assertEqual([i for i, _ in conn.responses()], [1, 2, 3, 4])
        self.assertEqual(conn.transport.producerState, "paused")
        turn(conn.clock)
        self.assertEqual([i for i, _ in conn.responses()], [5, 6, 7, 8])
        self.assertEqual(conn.transport.producerState, "paused")
        turn(conn.clock)
        self.assertEqual([i for i, _ in conn.responses()], [9, 10])
        self.assertEqual(conn.transport.producerState, "producing")
        self.assertEqual(conn.clock.getDelayedCalls()[1:], [])

    def test_a_slice_ends_when_its_time_is_spent(self) -> None:
        """Handling that outlasts slice_seconds stops after the chunk that spent it; the rest
        follows on the next turns, in order."""
        conn = connect(AgentConfig(slice_seconds=0.001))
        handle = Agent._handle

        def slow(agent: Agent, events: list[Any]) -> None:
            handle(agent, events)
            conn.clock.rightNow += 0.0006  # each chunk of 16 takes 0.6 ms

        self.patch(Agent, "_handle", slow)
        conn.feed(requests(1, 100))
        self.assertEqual([i for i, _ in conn.responses()], list(range(1, 33)))
        self.assertEqual(conn.transport.producerState, "paused")
        answered = list(range(1, 33))
        while conn.clock.getDelayedCalls()[1:]:
            turn(conn.clock)
            answered += [i for i, _ in conn.responses()]
        self.assertEqual(answered, list(range(1, 101)))
        self.assertEqual(conn.transport.producerState, "producing")

    def test_a_quick_read_is_one_slice(self) -> None:
        """Within its time and bytes, a read of 80 requests (3.6 KB) is handled in one turn."""
        conn = connect()
        conn.feed(requests(1, 80))
        self.assertEqual(len(conn.responses()), 80)
        self.assertEqual(conn.transport.producerState, "producing")

    def test_a_long_read_is_decoded_in_slices(self) -> None:
        """Bytes beyond slice_bytes wait undecoded for the next turn, in order."""
        conn = connect(AgentConfig(slice_bytes=100))
        data = requests(1, 10)
        conn.feed(data)
        first = [i for i, _ in conn.responses()]
        self.assertTrue(0 < len(first) < 10)
        self.assertEqual(conn.transport.producerState, "paused")
        answered = list(first)
        while len(answered) < 10:
            turn(conn.clock)
            answered += [i for i, _ in conn.responses()]
        self.assertEqual(answered, list(range(1, 11)))
        self.assertEqual(conn.transport.producerState, "producing")

    def test_burst_in_64k_reads_is_served_to_the_kick(self) -> None:
        """20,000 requests arriving as 64 KiB reads (the transport resumed between them)
        are handled turn after turn, never stalling, until the rate limit kicks."""
        conn = connect()
        data = requests(1, 20_000)
        answered = turns = 0
        for start in range(0, len(data), 65536):
            while conn.transport.producerState == "paused" and conn.open:
                turn(conn.clock)
                turns += 1
                answered += len(conn.responses())
                self.assertLess(turns, 100)
            if not conn.open:
                break
            conn.feed(data[start : start + 65536])
            answered += len(conn.responses())
        self.assertEqual(conn.agent.close_reason, f"kicked: {KICK_RATE_LIMITED}")
        self.assertEqual(answered, 2000 + 1001)

    def test_one_write_per_slice(self) -> None:
        """The answers of a deferred slice leave in one write."""
        conn = connect(AgentConfig(slice_events=4))
        conn.feed(requests(1, 8))
        conn.written()
        writes: list[bytes] = []
        write = conn.transport.write

        def record(data: bytes) -> None:
            writes.append(data)
            write(data)

        self.patch(conn.transport, "write", record)
        turn(conn.clock)
        self.assertEqual(len(writes), 1)

    def test_close_drops_the_rest(self) -> None:
        """A connection closed between slices handles nothing more, leaves no timer."""
        conn = connect(AgentConfig(slice_events=4, heartbeat=None))
        conn.feed(requests(1, 10))
        conn.written()
        conn.transport.loseConnection()
        self.assertEqual(conn.clock.getDelayedCalls(), [])

    def test_flooder_and_normal_client_share_a_pool(self) -> None:
        """A flooder's burst waits slice by slice and is kicked; a normal client's
        request in between is answered in its own read."""
        config = AgentConfig(slice_events=16, request_rate=100, request_burst=100, max_refusals=50)
        agents = make_agents(config)
        flooder = connect(agents=agents)
        normal = connect(agents=agents)
        flooder.feed(requests(1, 20_000))
        self.assertEqual(len(flooder.responses()), 16)
        normal.request(1, ECHO, {"hi": 1})
        self.assertEqual(normal.responses(), [(1, {"hi": 1})])
        turns = 0
        while flooder.open:
            turn(flooder.clock)
            turns += 1
            normal.request(turns + 1, ECHO)
            self.assertEqual(len(normal.responses()), 1)
        self.assertLess(turns, 20)
        self.assertEqual(flooder.agent.close_reason, f"kicked: {KICK_RATE_LIMITED}")
        answered = [e for e in flooder.events() if isinstance(e, Response)]
        self.assertLessEqual(len(answered), 16 * turns)
        self.assertTrue(normal.open)

    def test_persistent_429_kicks(self) -> None:
        """More than ``max_refusals`` refusals within the window kick the client."""
        conn = connect(AgentConfig(request_rate=1, request_burst=1, max_refusals=5))
        conn.feed(requests(1, 7))
        codes = [body.get("code") for _, body in conn.responses()]
        self.assertEqual(codes, [None, 429, 429, 429, 429, 429, 429])
        self.assertEqual(conn.agent.close_reason, f"kicked: {KICK_RATE_LIMITED}")

    def test_refusals_spread_over_windows_do_not_kick(self) -> None:
        """Refusals counted per window: a few per window never add up to a kick."""
        conn = connect(
            AgentConfig(request_rate=0.001, request_burst=1, max_refusals=3, refusal_window=1)
        )
        conn.request(1, ECHO)
        for second in range(10):
            conn.feed(requests(10 * (second + 1), 3))
            conn.clock.advance(1)
        self.assertTrue(conn.open)


@implementer(IAgentLink)
class PlainLink:
    """A link that cannot pause its reads."""

    peer = "test"

    def __init__(self) -> None:
        self.transport = StringTransport()

    def write(self, data: bytes) -> None:
        """Record."""
        self.transport.write(data)

    def close(self) -> None:
        """Close."""
        self.transport.loseConnection()

    def abort(self) -> None:
        """Abort."""
        self.transport.loseConnection()

    def register_producer(self, producer: object) -> None:
        """Nothing to register."""


class BacklogTests(SynchronousTestCase):
    """A link that cannot pause: the backlog is bounded."""

    def test_backlog_over_the_bound_kicks(self) -> None:
        """More than 64 slices of bytes waiting kicks the client."""
        agents = make_agents(AgentConfig(slice_events=2, slice_bytes=64, request_rate=None))
        link = PlainLink()
        agent = agents.new_agent(link)
        assert isinstance(agent, Agent) and isinstance(agents.handler, EchoHandler)
        agent.data_received(
            encode_package(PackageType.HANDSHAKE, json.dumps({"sys": SYS}).encode())
        )
        agent.data_received(encode_package(PackageType.HANDSHAKE_ACK))
        agent.data_received(requests(1, 10))
        self.assertTrue(agent.working)
        agent.data_received(requests(11, 200))
        self.assertEqual(agent.close_reason, f"kicked: {KICK_BACKLOG}")


class AcceptDeadlineTests(SynchronousTestCase):
    """One handshake deadline from accept to ack."""

    def test_deadline_counts_from_accepted_at(self) -> None:
        """An agent made 8 s after the accept has 2 s left of a 10 s handshake timeout."""
        agents = make_agents(AgentConfig(handshake_timeout=10))
        clock = agents.clock
        accepted = clock.seconds()
        clock.advance(8)
        link = PlainLink()
        agent = agents.new_agent(link, accepted_at=accepted)
        assert isinstance(agent, Agent)
        agent.data_received(
            encode_package(PackageType.HANDSHAKE, json.dumps({"sys": SYS}).encode())
        )
        clock.advance(1.9)
        self.assertIsNone(agent.close_reason)
        clock.advance(0.1)
        self.assertEqual(agent.close_reason, "handshake timeout")

    def test_client_handshake_unused(self) -> None:
        """ClientHandshake stays importable for clients building handshakes (sanity)."""
        self.assertEqual(ClientHandshake(sys=SYS).sys, SYS)


class DeepBodyTests(SynchronousTestCase):
    """Bodies nested too deep are answered, not echoed into an encode error."""

    def test_300_deep_body_answered_400(self) -> None:
        """A 300-deep body is a bad request (400), and the connection keeps serving."""
        conn = connect()
        deep = b"[" * 300 + b"]" * 300
        conn.feed(
            encode_package(PackageType.DATA, encode_message(MessageType.REQUEST, 1, ECHO, deep))
        )
        ((msg_id, body),) = conn.responses()
        self.assertEqual((msg_id, body["code"]), (1, 400))
        conn.request(2, ECHO, {"ok": True})
        self.assertEqual(conn.responses(), [(2, {"ok": True})])
