"""Closing: kicks, protocol errors, slow consumers, the disconnected hook, timers."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import Agent, AgentConfig
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    Kick,
    Request,
    encode_push,
)
from pomelo_twisted.testing import EchoHandler, echo_dictionary

from .helpers import HEARTBEAT, Connection, connect, kick_package, make_agents, open_connection

ECHO = "connector.entryHandler.echo"
KICK = "connector.entryHandler.kick"


class KickTests(SynchronousTestCase):
    """Server kicks: the kick package, then a graceful close."""

    def test_kick_writes_the_kick_package_then_closes(self) -> None:
        """agent.kick("bye") writes exactly 05 + length + {"reason":"bye"} and closes."""
        conn = connect()
        agent = conn.agent
        agent.kick("bye")
        self.assertEqual(conn.written(), bytes.fromhex("05000010") + b'{"reason":"bye"}')
        self.assertFalse(conn.open)
        self.assertFalse(conn.aborted)
        self.assertEqual(agent.close_reason, "kicked: bye")
        self.assertEqual(conn.agents.metrics.closed, {"kicked": 1})
        self.assertEqual(conn.agents.agents, {})

    def test_kick_uses_lose_connection(self) -> None:
        """A kick closes gracefully (loseConnection), and aborts only after ``close_grace``."""
        conn = connect(AgentConfig(close_grace=5))
        # A transport that only records the close, as a real one does until the peer is gone.
        del conn.transport.protocol
        lost: list[str] = []
        conn.transport.loseConnection = lambda: lost.append("lose")  # type: ignore[method-assign]
        conn.agent.kick("bye")
        self.assertEqual(conn.written(), kick_package("bye"))
        self.assertEqual(lost, ["lose"])
        self.assertFalse(conn.transport.disconnected)
        conn.clock.advance(4.5)
        self.assertFalse(conn.transport.disconnected)
        conn.clock.advance(0.5)
        self.assertTrue(conn.transport.disconnected)

    def test_second_kick_is_ignored(self) -> None:
        """Kicking a closing connection writes nothing more."""
        conn = connect()
        conn.agent.kick("one")
        conn.written()
        conn.agent.kick("two")
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agent.close_reason, "kicked: one")

    def test_kick_route_answers_then_kicks(self) -> None:
        """The kick route answers {"code":200,"kicking":true} first and kicks on the next turn."""
        conn = connect()
        conn.request(1, KICK, {"reason": "bye"})
        self.assertEqual(conn.responses(), [(1, {"code": 200, "kicking": True})])
        self.assertTrue(conn.open)
        conn.clock.advance(0)
        self.assertEqual(conn.written(), kick_package("bye"))
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, "kicked: bye")

    def test_no_timer_left_after_close(self) -> None:
        """A close whose transport reports the loss at once leaves no timer on the clock."""
        conn = connect(AgentConfig(heartbeat=3))
        conn.agent.kick("bye")
        self.assertEqual(conn.clock.getDelayedCalls(), [])


class ProtocolErrorTests(SynchronousTestCase):
    """Bad input closes at once with a "protocol error" kick package."""

    def assert_protocol_error(self, conn: Connection, data: bytes) -> str:
        """Feed ``data``; check one kick package came back and the link closed; its reason."""
        conn.feed(data)
        events = conn.events()
        self.assertEqual(len(events), 1, events)
        (kick,) = events
        assert isinstance(kick, Kick)
        self.assertTrue(kick.reason.startswith("protocol error: "), kick.reason)
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, kick.reason)
        self.assertEqual(conn.agents.metrics.closed, {"protocol error": 1})
        return kick.reason

    def test_declared_length_over_the_limit(self) -> None:
        """A data header declaring max_packet_size + 1 closes after just its 4 bytes."""
        conn = connect(AgentConfig(max_packet_size=100))
        reason = self.assert_protocol_error(conn, bytes.fromhex("04000065"))
        self.assertIn("101", reason)

    def test_declared_length_at_the_limit_waits(self) -> None:
        """A data header declaring exactly max_packet_size waits for the body."""
        conn = connect(AgentConfig(max_packet_size=100))
        conn.feed(bytes.fromhex("04000064") + b"\x00" * 10)
        self.assertEqual(conn.written(), b"")
        self.assertTrue(conn.open)

    def test_huge_declared_length_with_default_limit(self) -> None:
        """A header declaring FFFFFF bytes closes at once under the default 64 KiB limit."""
        conn = connect()
        self.assert_protocol_error(conn, bytes.fromhex("04ffffff"))

    def test_bad_package_type(self) -> None:
        """A header of type 09 closes at once."""
        conn = connect()
        reason = self.assert_protocol_error(conn, bytes.fromhex("09000000"))
        self.assertIn("0x09", reason)

    def test_bad_package_type_behind_good_packages(self) -> None:
        """Good packages in the same read as a bad header: only the close, nothing raised."""
        conn = connect()
        data = HEARTBEAT + conn.client.send(Request(1, ECHO, b"{}")) + bytes.fromhex("09000000")
        reason = self.assert_protocol_error(conn, data)
        self.assertIn("0x09", reason)

    def test_bad_header_behind_the_handshake(self) -> None:
        """A handshake and a bad header in one read: the close, no handshake reply, no raise."""
        agents = make_agents()
        protocol, transport = open_connection(agents)
        handshake = ClientConnection().send(ClientHandshake(sys={"type": "socket"}))
        protocol.dataReceived(handshake + bytes.fromhex("09000000"))
        (kick,) = ClientConnection().receive_data(transport.value())
        assert isinstance(kick, Kick)
        self.assertTrue(kick.reason.startswith("protocol error"))
        self.assertFalse(transport.connected)

    def test_bad_header_behind_the_ack(self) -> None:
        """An ack and a bad header in one read: the close, no heartbeat, no raise."""
        conn = connect(ack=False)
        conn.feed(conn.client.send(HandshakeAck()) + bytes.fromhex("09000000"))
        self.assertTrue(conn.written().startswith(b"\x05"))
        self.assertFalse(conn.open)
        self.assertEqual(conn.handler.sessions, [])

    def test_client_kick_package(self) -> None:
        """A kick package from the client closes at once."""
        conn = connect()
        self.assert_protocol_error(conn, kick_package("x"))

    def test_client_kick_package_before_the_handshake(self) -> None:
        """A kick package as the very first package closes at once too."""
        agents = make_agents()
        protocol, transport = open_connection(agents)
        protocol.dataReceived(kick_package("x"))
        self.assertTrue(transport.value().startswith(b"\x05"))
        self.assertFalse(transport.connected)
        self.assertEqual(agents.metrics.closed, {"protocol error": 1})

    def test_bytes_after_the_error_ignored(self) -> None:
        """Bytes arriving after a protocol error are not processed."""
        conn = connect()
        conn.feed(bytes.fromhex("09000000"))
        conn.written()
        conn.feed(HEARTBEAT)
        self.assertEqual(conn.written(), b"")


class SlowConsumerTests(SynchronousTestCase):
    """The bounded send queue: the agent is the transport's streaming producer."""

    def test_agent_is_the_streaming_producer(self) -> None:
        """The agent registers itself on the transport as a streaming producer."""
        conn = connect()
        self.assertIs(conn.transport.producer, conn.agent.send_queue)
        self.assertTrue(conn.transport.streaming)

    def test_queued_while_paused_then_flushed_in_order(self) -> None:
        """While paused pushes and responses queue; resumeProducing writes them in order."""
        conn = connect(AgentConfig(max_pending_bytes=10_000))
        agent = conn.agent
        agent.send_queue.pauseProducing()
        self.assertTrue(agent.push("onPush", {"n": 1}))
        conn.request(1, ECHO, {"r": 1})
        self.assertTrue(agent.push("onPush", {"n": 2}))
        conn.feed(HEARTBEAT)
        self.assertEqual(conn.written(), b"")
        self.assertGreater(agent.pending_bytes, 0)
        agent.send_queue.resumeProducing()
        self.assertEqual(agent.pending_bytes, 0)
        events = conn.events()
        self.assertEqual(
            [(type(e).__name__, getattr(e, "body", None)) for e in events],
            [
                ("Push", b'{"n":1}'),
                ("Response", b'{"r":1}'),
                ("Push", b'{"n":2}'),
                ("Heartbeat", None),
            ],
        )
        self.assertTrue(conn.open)

    def test_over_max_pending_bytes_aborts(self) -> None:
        """Queueing more than ``max_pending_bytes`` aborts the link: reason "slow consumer"."""
        size = len(encode_push("onPush", b'{"n":1}', echo_dictionary()))
        conn = connect(AgentConfig(max_pending_bytes=2 * size))
        agent = conn.agent
        agent.send_queue.pauseProducing()
        self.assertTrue(agent.push("onPush", {"n": 1}))
        self.assertTrue(agent.push("onPush", {"n": 2}))
        self.assertEqual(agent.pending_bytes, 2 * size)
        self.assertTrue(conn.open)
        self.assertFalse(agent.push("onPush", {"n": 3}))
        self.assertTrue(conn.aborted)
        self.assertFalse(conn.open)
        self.assertEqual(conn.written(), b"")
        self.assertEqual(agent.pending_bytes, 0)
        self.assertEqual(agent.close_reason, "slow consumer")
        self.assertEqual(conn.agents.metrics.closed, {"slow consumer": 1})
        self.assertEqual(conn.handler.closes, [(agent, "slow consumer")])

    def test_responses_count_toward_the_limit(self) -> None:
        """Responses queued while paused can push the queue over the limit too."""
        conn = connect(AgentConfig(max_pending_bytes=200))
        conn.agent.send_queue.pauseProducing()
        conn.request(1, ECHO, {"pad": "x" * 100})
        self.assertTrue(conn.open)
        conn.request(2, ECHO, {"pad": "x" * 100})
        self.assertTrue(conn.aborted)
        self.assertEqual(conn.agent.close_reason, "slow consumer")

    def test_encoded_push_queues_while_paused_and_not_when_closing(self) -> None:
        """push_prepared writes at once, queues behind a pause (in order), refuses when closing."""
        conn = connect(AgentConfig(max_pending_bytes=10_000))
        agent = conn.agent
        first = encode_push("onPush", b'{"n":1}', echo_dictionary())
        second = encode_push("onPush", b'{"n":2}', echo_dictionary())
        self.assertTrue(agent.push_prepared(first))
        self.assertEqual(conn.written(), first)
        agent.send_queue.pauseProducing()
        self.assertTrue(agent.push_prepared(second))
        self.assertEqual((conn.written(), agent.pending_bytes), (b"", len(second)))
        agent.send_queue.resumeProducing()
        self.assertEqual(conn.written(), second)
        agent.close()
        self.assertFalse(agent.push_prepared(first))
        self.assertEqual(conn.written(), b"")

    def test_push_to_a_closed_connection(self) -> None:
        """push() on a closed connection returns False and writes nothing."""
        conn = connect()
        conn.transport.loseConnection()
        self.assertFalse(conn.agent.push("onPush", {}))
        self.assertEqual(conn.written(), b"")


class DisconnectedHookTests(SynchronousTestCase):
    """The handler's ``connected`` / ``disconnected`` hooks."""

    def test_runs_once_with_the_reason(self) -> None:
        """A working connection's disconnected hook runs once, with the close reason."""
        conn = connect()
        agent = conn.agent
        self.assertEqual(conn.handler.sessions, [agent])
        agent.kick("bye")
        conn.transport.loseConnection()
        agent.close()
        self.assertEqual(conn.handler.closes, [(agent, "kicked: bye")])

    def test_client_close_reason(self) -> None:
        """A client closing a working connection gives the reason "client closed"."""
        conn = connect()
        conn.transport.loseConnection()
        self.assertEqual(conn.handler.closes, [(conn.agent, "client closed")])
        self.assertEqual(conn.agents.metrics.connections_open, 0)

    def test_not_for_a_connection_that_never_acked(self) -> None:
        """A connection closed before its ack never runs connected or disconnected."""
        conn = connect(ack=False)
        conn.transport.loseConnection()
        self.assertEqual(conn.handler.sessions, [])
        self.assertEqual(conn.handler.closes, [])
        self.assertEqual(conn.agents.metrics.closed, {"client closed": 1})


class KickingHandler(EchoHandler):
    """EchoHandler plus ``*.kicknow``, which kicks before returning."""

    def request(self, agent: Agent, route: str, body: bytes) -> object:
        """Kick synchronously on ``kicknow``; otherwise as EchoHandler (which decodes)."""
        if route.endswith(".kicknow"):
            agent.kick("now")
            return {"code": 200}
        return super().request(agent, route, body)


class CloseWithinOneReadTests(SynchronousTestCase):
    """Packages behind the one that closed the connection, in the same read."""

    def test_sync_kick_then_more_packages(self) -> None:
        """After a handler kicks, the rest of the read is neither dispatched nor answered."""
        agents = make_agents()
        agents.handler = KickingHandler(agents.clock)
        conn = connect(agents=agents)
        data = (
            conn.client.send(Request(1, "connector.entryHandler.kicknow", b"{}"))
            + HEARTBEAT
            + conn.client.send(Request(2, ECHO, b"{}"))
        )
        conn.feed(data)
        self.assertEqual(conn.written(), kick_package("now"))
        self.assertFalse(conn.open)
        self.assertEqual(agents.metrics.requests, 1)

    def test_failing_connected_hook_then_more_packages(self) -> None:
        """A failing connected hook closes; a heartbeat in the same read is not answered."""
        conn = connect(ack=False)

        def broken(agent: object) -> None:
            raise RuntimeError("hook bug")

        conn.handler.connected = broken  # type: ignore[method-assign]
        conn.feed(conn.client.send(HandshakeAck()) + HEARTBEAT)
        self.assertEqual(conn.written(), HEARTBEAT)  # the one sent for the ack, no reply
        self.assertFalse(conn.open)
        self.assertEqual(conn.agent.close_reason, "server closed: connected hook failed")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
