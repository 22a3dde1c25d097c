"""The public in-memory helpers: the real agent and the real client, no sockets, one Clock.

The README example, a handler tested in a few lines (``test_readme_example`` below)::

    from twisted.internet.task import Clock
    from twisted.trial.unittest import SynchronousTestCase

    from pomelo_twisted.testing import EchoHandler, MemoryServer, echo_dictionary


    class EchoTests(SynchronousTestCase):
        def test_echo(self) -> None:
            clock = Clock()
            server = MemoryServer(EchoHandler(clock), clock=clock, dictionary=echo_dictionary())
            conn = server.connect()
            self.assertEqual(conn.call("connector.entryHandler.echo", {"a": 1}), {"a": 1})
            pending = conn.request("connector.entryHandler.echo", {"delayMs": 500})
            conn.advance(0.5)  # time is an argument: no sleeps
            self.assertEqual(self.successResultOf(pending), {"delayMs": 500})

Every test runs the same under trial and pytest and is fully deterministic.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import AgentConfig, CloseReason
from pomelo_twisted.client import ConnectionClosed, HandshakeRejected
from pomelo_twisted.serializers import MsgpackSerializer
from pomelo_twisted.testing import (
    EchoHandler,
    MemoryConnection,
    MemoryServer,
    NoResponseYet,
    echo_dictionary,
)

ECHO = "connector.entryHandler.echo"
PUSH = "connector.entryHandler.push"
KICK = "connector.entryHandler.kick"
FAIL = "connector.entryHandler.fail"
ERROR = "connector.entryHandler.error"
HEARTBEAT_PACKAGE = b"\x03\x00\x00\x00"


class ReadmeExampleTests(SynchronousTestCase):
    """The example of the module docstring, verbatim."""

    def test_readme_example(self) -> None:
        """A handler is tested in a few lines: call, then a delayed answer on the clock."""
        clock = Clock()
        server = MemoryServer(EchoHandler(clock), clock=clock, dictionary=echo_dictionary())
        conn = server.connect()
        self.assertEqual(conn.call("connector.entryHandler.echo", {"a": 1}), {"a": 1})
        pending = conn.request("connector.entryHandler.echo", {"delayMs": 500})
        conn.advance(0.5)  # time is an argument: no sleeps
        self.assertEqual(self.successResultOf(pending), {"delayMs": 500})


class MemoryTests(SynchronousTestCase):
    """MemoryServer / MemoryConnection against the EchoHandler."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.handler = EchoHandler(self.clock)

    def server(self, **kwargs: Any) -> MemoryServer:
        kwargs.setdefault("dictionary", echo_dictionary())
        return MemoryServer(self.handler, clock=self.clock, **kwargs)

    def connect(self, **kwargs: Any) -> MemoryConnection:
        return self.server(**kwargs).connect(user={"name": "tester"})

    def test_handshake(self) -> None:
        """The handshake echoes the user data, sends the dictionary, and connects the agent."""
        conn = self.connect()
        self.assertEqual(conn.client.handshake_user, {"name": "tester"})
        self.assertEqual(dict(conn.client.dictionary), echo_dictionary().route_to_code())
        self.assertTrue(conn.client.connected)
        self.assertTrue(conn.agent.working)
        self.assertEqual(self.handler.sessions, [conn.agent])
        self.assertEqual(conn.server.metrics.connections_open, 1)

    def test_echo_utf8(self) -> None:
        """Non-ASCII text (accents, CJK, emoji) survives the round trip unchanged."""
        conn = self.connect()
        body = {"text": "héllo wörld 你好 🎮", "ключ": ["ü", "\u00a0", "\U0001f600"]}
        self.assertEqual(conn.call(ECHO, body), body)
        self.assertEqual(conn.call(ECHO), {})

    def test_push(self) -> None:
        """A push requested or notified reaches the callbacks collected on its route."""
        conn = self.connect()
        pushes = conn.collect("onPush")
        self.assertEqual(conn.call(PUSH, {"n": 1}), {"code": 200})
        conn.notify(PUSH, {"n": 2})
        self.assertEqual(pushes, [{"n": 1}, {"n": 2}])
        self.assertEqual(self.handler.notified, [(PUSH, {"n": 2})])

    def test_kick(self) -> None:
        """A kick reaches the client with its reason; the agent closes as ``kicked: ...``."""
        conn = self.connect()
        agent = conn.agent
        closed = conn.client.closed
        self.assertEqual(conn.call(KICK, {"reason": "bye now"}), {"code": 200, "kicking": True})
        self.assertNoResult(closed)
        conn.advance(0)  # the handler kicks on the next turn
        self.assertEqual(conn.kicks, ["bye now"])
        self.assertEqual(self.successResultOf(closed), "kicked: bye now")
        self.assertEqual(agent.close_reason, "kicked: bye now")
        self.assertEqual(self.handler.closes, [(agent, "kicked: bye now")])
        self.assertFalse(conn.client.connected)
        self.assertEqual(conn.server.metrics.closed[CloseReason.KICKED], 1)
        self.assertEqual(conn.server.metrics.connections_open, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_requests_after_kick_fail(self) -> None:
        """A request after the kick fails with ConnectionClosed naming the kick."""
        conn = self.connect()
        conn.call(KICK, {"reason": "out"})
        conn.advance(0)
        failure = self.failureResultOf(conn.request(ECHO, {}), ConnectionClosed)
        self.assertEqual(failure.value.reason, "kicked: out")

    def test_handler_errors(self) -> None:
        """A raising handler answers 500; a HandlerError answers its own code and message."""
        conn = self.connect()
        self.assertEqual(conn.call(FAIL), {"code": 500, "msg": "internal server error"})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(
            conn.call(ERROR, {"code": 404, "msg": "nope"}), {"code": 404, "msg": "nope"}
        )
        self.assertEqual(
            conn.call("connector.entryHandler.nothing"),
            {"code": 500, "msg": "no handler for route connector.entryHandler.nothing"},
        )
        self.assertTrue(conn.client.connected)

    def test_out_of_order(self) -> None:
        """Unordered, delayed responses overtake each other as the clock advances, each
        with its body."""
        conn = self.connect(config=AgentConfig(ordered=False))
        order: list[str] = []
        slow = conn.request(ECHO, {"delayMs": 30, "name": "slow"})
        medium = conn.request(ECHO, {"delayMs": 10, "name": "medium"})
        fast = conn.request(ECHO, {"name": "fast"})
        for d in (slow, medium, fast):
            d.addCallback(lambda body: order.append(body["name"]))
        self.assertEqual(order, ["fast"])
        conn.advance(0.01)
        self.assertEqual(order, ["fast", "medium"])
        self.assertNoResult(slow)
        conn.advance(0.02)
        self.assertEqual(order, ["fast", "medium", "slow"])
        self.assertEqual(conn.client.pending_requests, 0)

    def test_200_in_flight(self) -> None:
        """200 requests in flight at once (unordered) each get their own body back, in
        delay order."""
        conn = self.connect(config=AgentConfig(ordered=False))
        rng = random.Random(1234)
        delays = [rng.randint(1, 50) for _ in range(200)]
        arrived: list[int] = []
        pending: list[Deferred[Any]] = []
        for i, delay in enumerate(delays):
            d = conn.request(ECHO, {"i": i, "delayMs": delay, "pad": "x" * i})
            d.addCallback(lambda body: arrived.append(body["i"]) or body)
            pending.append(d)
        self.assertEqual(conn.client.pending_requests, 200)
        self.assertEqual(arrived, [])
        for _ in range(50):
            conn.advance(0.001)
        self.assertEqual(conn.client.pending_requests, 0)
        for i, (d, delay) in enumerate(zip(pending, delays, strict=True)):
            self.assertEqual(self.successResultOf(d), {"i": i, "delayMs": delay, "pad": "x" * i})
        self.assertEqual(sorted(arrived), list(range(200)))
        # Answered in delay order (ties in request order), not request order.
        self.assertEqual(arrived, sorted(range(200), key=lambda i: delays[i]))
        self.assertNotEqual(arrived, list(range(200)))
        self.assertEqual(conn.server.metrics.requests, 200)

    def test_handshake_rejected(self) -> None:
        """A refused handshake raises the client's HandshakeRejected with code and reason."""
        self.handler.reject = "server full"
        server = self.server()
        with self.assertRaises(HandshakeRejected) as caught:
            server.connect()
        self.assertEqual((caught.exception.code, caught.exception.msg), (501, "server full"))
        self.assertEqual(self.handler.sessions, [])
        self.assertEqual(server.metrics.closed[CloseReason.HANDSHAKE_REJECTED], 1)
        self.assertEqual(server.metrics.connections_open, 0)

    def test_msgpack(self) -> None:
        """With MsgpackSerializer the client switches to msgpack; bytes and ints round-trip."""
        conn = self.connect(serializer=MsgpackSerializer())
        self.assertEqual(conn.client.serializer.name, "msgpack")
        body = {"blob": b"\x00\xff\x80", "n": 2**40, "t": "ü", "list": [1.5, None, True]}
        self.assertEqual(conn.call(ECHO, body), body)
        pushes = conn.collect("onPush")
        conn.notify(PUSH, {"raw": b"\x01"})
        self.assertEqual(pushes, [{"raw": b"\x01"}])

    def test_heartbeats_keep_alive(self) -> None:
        """With H=3 the client's heartbeats keep the connection up for 60 s of silence."""
        conn = self.connect(config=AgentConfig(heartbeat=3))
        self.assertEqual(conn.client.heartbeat, 3)
        for _ in range(60):
            conn.advance(1)
            self.assertTrue(conn.client.connected)
        self.assertTrue(conn.agent.working)
        self.assertEqual(conn.call(ECHO, {"still": "here"}), {"still": "here"})
        self.assertEqual(sum(conn.server.metrics.closed.values()), 0)

    def test_heartbeats_suppressed(self) -> None:
        """Without the client's heartbeats the server closes the connection at 2×H."""
        conn = self.connect(config=AgentConfig(heartbeat=3))
        transport = conn.pump.client.transport
        write = transport.write

        def drop_heartbeats(data: bytes) -> None:
            if data != HEARTBEAT_PACKAGE:
                write(data)

        transport.write = drop_heartbeats
        agent = conn.agent
        closed = conn.client.closed
        for _ in range(5):
            conn.advance(1)
        self.assertNoResult(closed)
        self.assertTrue(agent.working)
        conn.advance(1)  # t = 6 = 2×H since the ack
        self.assertEqual(agent.close_reason, CloseReason.HEARTBEAT_TIMEOUT)
        self.assertEqual(self.successResultOf(closed), "connection closed")
        self.assertEqual(self.handler.closes, [(agent, CloseReason.HEARTBEAT_TIMEOUT)])

    def test_no_response_yet(self) -> None:
        """``call`` raises NoResponseYet for a delayed response the clock did not reach."""
        conn = self.connect(config=AgentConfig(ordered=False))
        with self.assertRaises(NoResponseYet):
            conn.call(ECHO, {"delayMs": 100})
        late = conn.request(ECHO, {"delayMs": 100})
        conn.advance(0.099)
        self.assertNoResult(late)
        conn.advance(0.001)
        self.assertEqual(self.successResultOf(late), {"delayMs": 100})

    def test_disconnect(self) -> None:
        """A client-side disconnect closes the agent as ``client closed``."""
        conn = self.connect()
        agent = conn.agent
        closed = conn.client.closed
        conn.disconnect()
        self.assertEqual(self.successResultOf(closed), "closed by client")
        self.assertEqual(agent.close_reason, CloseReason.CLIENT_CLOSED)
        self.assertEqual(self.handler.closes, [(agent, CloseReason.CLIENT_CLOSED)])
        self.assertEqual(conn.server.metrics.connections_open, 0)

    def test_connections_are_independent(self) -> None:
        """Two clients of one server have their own agents, pushes and kicks."""
        server = self.server()
        first, second = server.connect(user=1), server.connect(user=2)
        self.assertIsNot(first.agent, second.agent)
        first_pushes, second_pushes = first.collect("onPush"), second.collect("onPush")
        first.notify(PUSH, "one")
        first.call(KICK, {"reason": "first only"})
        first.advance(0)
        self.assertEqual((first_pushes, second_pushes), (["one"], []))
        self.assertEqual((first.kicks, second.kicks), (["first only"], []))
        self.assertEqual(second.call(ECHO, 2), 2)
        self.assertEqual(server.metrics.connections_open, 1)

    def test_connect_without_handshake(self) -> None:
        """``handshake=False`` leaves the handshake to the test: it completes on flush."""
        conn = self.server().connect(handshake=False)
        self.assertNoResult(conn.client.ready)
        conn.flush()
        self.assertIs(self.successResultOf(conn.client.ready), conn.client)
