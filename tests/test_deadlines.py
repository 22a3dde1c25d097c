"""DeadlineScheduler: the handshake and idle timeouts of many agents under one DelayedCall."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import Agent, AgentConfig
from pomelo_twisted.deadlines import DeadlineScheduler
from pomelo_twisted.protocol import ClientConnection, ClientHandshake, HandshakeAck, Heartbeat
from pomelo_twisted.serializers import JsonSerializer
from pomelo_twisted.testing import EchoHandler

from .agent.helpers import SYS, connect, make_agents, open_connection


class Recorder:
    """Stands in for an agent: records when each of its deadlines passed."""

    def __init__(self, clock: Clock, log: list[tuple[str, int, float]], name: str) -> None:
        self.clock = clock
        self.log = log
        self.name = name

    def deadline_passed(self, kind: int, now: float) -> None:
        self.log.append((self.name, kind, now))


def recorders(clock: Clock, *names: str) -> tuple[list[tuple[str, int, float]], list[Any]]:
    log: list[tuple[str, int, float]] = []
    return log, [Recorder(clock, log, name) for name in names]


class DeadlineSchedulerTests(SynchronousTestCase):
    """One pending call at most, deadlines in time order, each at its exact time."""

    def test_fire_in_time_order_at_their_times(self) -> None:
        """Added out of order, they fire in time order, ties in the order added."""
        clock = Clock()
        deadlines = DeadlineScheduler(clock)
        log, (a, b, c, d) = recorders(clock, "a", "b", "c", "d")
        deadlines.add(5, a, 0)
        deadlines.add(2, b, 1)
        deadlines.add(5, c, 0)
        deadlines.add(9, d, 1)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(1.999)
        self.assertEqual(log, [])
        clock.advance(0.001)
        self.assertEqual(log, [("b", 1, 2.0)])
        clock.advance(3)
        self.assertEqual(log[1:], [("a", 0, 5.0), ("c", 0, 5.0)])
        clock.advance(4)
        self.assertEqual(log[3:], [("d", 1, 9.0)])
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(len(deadlines), 0)

    def test_cancel_leaves_no_pending_call(self) -> None:
        """Cancelling every deadline cancels the shared call; cancelling twice is harmless."""
        clock = Clock()
        deadlines = DeadlineScheduler(clock)
        log, (a, b) = recorders(clock, "a", "b")
        first = deadlines.add(3, a, 0)
        second = deadlines.add(4, b, 0)
        deadlines.cancel(first)
        deadlines.cancel(first)
        self.assertEqual(len(deadlines), 1)
        clock.advance(3.5)
        self.assertEqual(log, [])
        deadlines.cancel(second)
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(10)
        self.assertEqual(log, [])

    def test_earlier_deadline_rearms(self) -> None:
        """A deadline earlier than every other one moves the shared call forward."""
        clock = Clock()
        deadlines = DeadlineScheduler(clock)
        log, (a, b) = recorders(clock, "a", "b")
        deadlines.add(10, a, 0)
        deadlines.add(1, b, 0)
        self.assertEqual([c.getTime() for c in clock.getDelayedCalls()], [1.0])
        clock.advance(1)
        self.assertEqual(log, [("b", 0, 1.0)])
        self.assertEqual([c.getTime() for c in clock.getDelayedCalls()], [10.0])

    def test_deadline_added_while_firing(self) -> None:
        """A callback may add (or cancel) deadlines; a new one due now waits its turn."""
        clock = Clock()
        deadlines = DeadlineScheduler(clock)
        log: list[tuple[str, int, float]] = []

        class Again(Recorder):
            def deadline_passed(self, kind: int, now: float) -> None:
                super().deadline_passed(kind, now)
                if kind == 0:
                    deadlines.add(2, self, 1)

        deadlines.add(1, Again(clock, log, "x"), 0)
        clock.advance(1)
        clock.advance(2)
        self.assertEqual(log, [("x", 0, 1.0), ("x", 1, 3.0)])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_many_cancelled_entries_are_dropped(self) -> None:
        """Mostly cancelled heaps are rebuilt instead of growing."""
        clock = Clock()
        deadlines = DeadlineScheduler(clock)
        log, (a,) = recorders(clock, "a")
        keep = deadlines.add(1000, a, 0)
        for _ in range(10):
            entries = [deadlines.add(500, a, 0) for _ in range(100)]
            for entry in entries:
                deadlines.cancel(entry)
        self.assertLess(len(deadlines._heap), 200)
        self.assertEqual(len(deadlines), 1)
        clock.advance(1000)
        self.assertEqual(log, [("a", 0, 1000.0)])
        deadlines.cancel(keep)


class AgentDeadlineTests(SynchronousTestCase):
    """The agents of one factory share its Deadlines: one pending call for all."""

    def test_one_delayed_call_for_many_connections(self) -> None:
        """Handshaking and working connections of a factory share one DelayedCall."""
        agents = make_agents(AgentConfig(heartbeat=3))
        working = [connect(agents=agents) for _ in range(5)]
        waiting = [open_connection(agents) for _ in range(5)]
        clock = agents.clock
        assert isinstance(clock, Clock)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        self.assertEqual(len(agents.deadlines), 10)
        clock.advance(6)  # the idle limit: 2 x heartbeat
        self.assertEqual({c.agent.close_reason for c in working}, {"heartbeat timeout"})
        clock.advance(4)  # the handshake limit (10 s)
        self.assertEqual(
            {protocol.agent.close_reason for protocol, _ in waiting if protocol.agent},
            {"handshake timeout"},
        )
        self.assertEqual(len(agents.deadlines), 0)
        # What remains pending are the close-grace aborts of the closed connections.
        clock.advance(agents.config.close_grace)
        self.assertEqual(clock.getDelayedCalls(), [])


class OwnSchedulerTests(SynchronousTestCase):
    """An agent built without a shared scheduler times out on a scheduler of its own."""

    def make_agent(self, config: AgentConfig) -> tuple[Agent, Clock, list[str]]:
        clock = Clock()
        closed: list[str] = []
        self.link = link = FakeLink(closed)
        handler = EchoHandler(clock)
        agent = Agent(link, handler, clock=clock, serializer=JsonSerializer(), sid=1, config=config)
        link.agent = agent
        agent.start()
        return agent, clock, closed

    def test_handshake_timeout(self) -> None:
        """No handshake within handshake_timeout: closed, and no call left pending."""
        agent, clock, closed = self.make_agent(AgentConfig(handshake_timeout=2))
        self.assertIsInstance(agent._deadlines, DeadlineScheduler)
        clock.advance(1.999)
        self.assertEqual(closed, [])
        clock.advance(0.001)
        self.assertEqual(agent.close_reason, "handshake timeout")
        self.assertEqual(closed, ["close"])

    def test_idle_timeout_counts_from_the_last_package(self) -> None:
        """Working, the idle deadline moves with each package, exactly as a shared one."""
        agent, clock, _ = self.make_agent(AgentConfig(heartbeat=1))
        client = ClientConnection()
        agent.data_received(client.send(ClientHandshake(sys=dict(SYS))))
        client.receive_data(b"".join(self.link.written))
        agent.data_received(client.send(HandshakeAck()))
        clock.advance(1.5)
        agent.data_received(client.send(Heartbeat()))
        clock.advance(1.999)  # 2 x heartbeat after the ack, the check found a package
        self.assertIsNone(agent.close_reason)
        clock.advance(0.001)  # 2 x heartbeat after that package
        self.assertEqual(clock.seconds(), 3.5)
        self.assertEqual(agent.close_reason, "heartbeat timeout")
        clock.advance(agent.config.close_grace)
        self.assertEqual(clock.getDelayedCalls(), [])


class FakeLink:
    """An IAgentLink that records closes."""

    peer = "test"

    def __init__(self, closed: list[str]) -> None:
        self.closed = closed
        self.written: list[bytes] = []
        self.agent: Agent | None = None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed.append("close")
        if self.agent is not None:
            self.agent.connection_lost()

    def abort(self) -> None:
        self.closed.append("abort")

    def register_producer(self, producer: object) -> None:
        pass
