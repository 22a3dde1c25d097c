"""The agent's parts on their own: the send queue, the admission rules, IAgent."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

import pomelo_twisted.agent as agent_package
from pomelo_twisted.agent import AgentConfig, ConnectionMetrics
from pomelo_twisted.agent.admission import Admission
from pomelo_twisted.agent.sendqueue import SendQueue
from pomelo_twisted.interfaces import IAgent

from .helpers import connect


class FakeLink:
    """Records what is written."""

    peer = "test"

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


class SendQueueTests(SynchronousTestCase):
    """The bounded send queue, the link's streaming producer."""

    def setUp(self) -> None:
        self.link = FakeLink()
        self.overflows: list[int] = []
        self.queue = SendQueue(self.link, 10, self.overflows.append)  # type: ignore[arg-type]

    def test_provides_push_producer(self) -> None:
        """The queue is an IPushProducer."""
        self.assertTrue(verifyObject(IPushProducer, self.queue))

    def test_writes_at_once_unless_paused(self) -> None:
        """Unpaused writes go straight to the link; paused ones wait and flush in order."""
        self.assertTrue(self.queue.write(b"a"))
        self.queue.pauseProducing()
        self.assertTrue(self.queue.write(b"bc"))
        self.assertTrue(self.queue.write(b"d"))
        self.assertEqual((self.link.written, self.queue.pending_bytes), ([b"a"], 3))
        self.queue.resumeProducing()
        self.assertEqual((self.link.written, self.queue.pending_bytes), ([b"a", b"bc", b"d"], 0))

    def test_overflow_reported(self) -> None:
        """A write past the limit is refused and reported with the pending byte count."""
        self.queue.pauseProducing()
        self.assertTrue(self.queue.write(b"x" * 10))
        self.assertFalse(self.queue.write(b"y"))
        self.assertEqual(self.overflows, [11])

    def test_stop_and_clear_drop_the_queue(self) -> None:
        """stopProducing (and clear) drop what waits; nothing of it is written later."""
        self.queue.pauseProducing()
        self.queue.write(b"lost")
        self.queue.stopProducing()
        self.queue.resumeProducing()
        self.assertEqual((self.link.written, self.queue.pending_bytes), ([], 0))


class AdmissionTests(SynchronousTestCase):
    """The rate limit (429) and the in-flight bound (503) of one connection."""

    def make(self, **config: object) -> tuple[Admission, ConnectionMetrics]:
        metrics = ConnectionMetrics()
        return Admission(Clock(), AgentConfig(**config), metrics), metrics  # type: ignore[arg-type]

    def test_rate_limit(self) -> None:
        """Past the burst a request is refused 429 and a notify dropped, both counted."""
        admission, metrics = self.make(request_rate=1.0, request_burst=1)
        self.assertIsNone(admission.refuse_request())
        self.assertEqual(
            admission.refuse_request(), {"code": 429, "msg": "request rate limit exceeded"}
        )
        self.assertFalse(admission.admit_notify())
        self.assertEqual(metrics.rate_limited, 2)
        self.assertEqual(metrics.dropped, {"notify over the rate limit": 1})

    def test_inflight_bound(self) -> None:
        """At max_inflight pending answers a request is refused 503; an answer frees a place."""
        admission, _ = self.make(max_inflight=1)
        admission.inflight += 1
        self.assertEqual(
            admission.refuse_request(), {"code": 503, "msg": "too many requests in flight"}
        )
        self.assertEqual(admission.answered("result"), "result")
        self.assertIsNone(admission.refuse_request())


class AgentInterfaceTests(SynchronousTestCase):
    """The agent is what handlers, sessions and channels know it as."""

    def test_provides_iagent(self) -> None:
        """A connected agent provides IAgent, its send queue is the transport's producer."""
        conn = connect()
        self.assertTrue(verifyObject(IAgent, conn.agent))
        self.assertEqual(conn.agent.peer, "192.168.1.1:54321")
        self.assertIs(conn.transport.producer, conn.agent.send_queue)

    def test_push_format_shared_by_a_pool(self) -> None:
        """The agents of one pool share one push_format object (a broadcast encodes once)."""
        first = connect()
        second = connect(agents=first.agents)
        self.assertIs(first.agent.push_format, second.agent.push_format)


class OneDoorTests(SynchronousTestCase):
    """Every byte the agent sends comes from the ServerConnection's send methods."""

    def test_agent_package_never_encodes_packages(self) -> None:
        """No module of pomelo_twisted/agent/ calls a package or message encoder itself."""
        encoders = ("encode_response", "encode_package", "encode_kick", "encode_push")
        offenders = []
        for path in sorted(Path(agent_package.__file__).parent.glob("*.py")):
            text = path.read_text(encoding="utf-8")
            offenders += [f"{path.name}: {name}" for name in encoders if name in text]
        self.assertEqual(offenders, [])
