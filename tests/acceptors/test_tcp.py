"""The raw TCP link: what one read makes the agent write goes out in one transport write."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.protocol import (
    ClientConnection,
    ClientHandshake,
    HandshakeAck,
    Kick,
    Request,
    Response,
)

from ..agent.helpers import SYS, connect, kick_package, make_agents
from .helpers import open_hybrid

ECHO = "connector.entryHandler.echo"


class CountingWrites:
    """Wraps a transport's ``write`` to record each call."""

    def __init__(self, transport: object) -> None:
        self.calls: list[bytes] = []
        self._write = transport.write  # type: ignore[attr-defined]
        transport.write = self  # type: ignore[attr-defined]

    def __call__(self, data: bytes) -> None:
        self.calls.append(data)
        self._write(data)


class BatchingTests(SynchronousTestCase):
    """Responses to the requests of one read share one write, in order."""

    def test_one_write_per_read(self) -> None:
        """Three requests in one read: three responses in one write, in request order."""
        conn = connect(AgentConfig(heartbeat=None))
        writes = CountingWrites(conn.transport)
        data = b"".join(conn.client.send(Request(i, ECHO, b'{"n":%d}' % i)) for i in range(1, 4))
        conn.feed(data)
        self.assertEqual(len(writes.calls), 1)
        self.assertEqual(conn.responses(), [(1, {"n": 1}), (2, {"n": 2}), (3, {"n": 3})])

    def test_single_package_written_as_is(self) -> None:
        """One response is written without joining (the same bytes object)."""
        conn = connect(AgentConfig(heartbeat=None))
        writes = CountingWrites(conn.transport)
        conn.request(1, ECHO, {"a": 1})
        self.assertEqual(len(writes.calls), 1)
        self.assertEqual(conn.responses(), [(1, {"a": 1})])

    def test_writes_outside_a_read_go_straight_out(self) -> None:
        """A push from elsewhere (no read in progress) is written at once."""
        conn = connect(AgentConfig(heartbeat=None))
        writes = CountingWrites(conn.transport)
        self.assertTrue(conn.agent.push("onPush", {"x": 1}))
        self.assertTrue(conn.agent.push("onPush", {"x": 2}))
        self.assertEqual(len(writes.calls), 2)

    def test_kick_during_a_read_keeps_the_order(self) -> None:
        """A response batched before a kick of the same read goes out before the kick."""
        conn = connect(AgentConfig(heartbeat=None))
        conn.handler.request = (  # type: ignore[method-assign]
            lambda agent, route, body: (
                agent.kick("bye") if body == b'{"kick":1}' else agent.serializer.decode(body)
            )
        )
        data = conn.client.send(Request(1, ECHO, b'{"a":1}')) + conn.client.send(
            Request(2, ECHO, b'{"kick":1}')
        )
        conn.feed(data)
        written = conn.written()
        self.assertTrue(written.endswith(kick_package("bye")), written)
        self.assertEqual(
            conn.client.receive_data(written), [Response(1, b'{"a":1}', ECHO), Kick("bye")]
        )
        self.assertFalse(conn.open)

    def test_hybrid_hands_reads_straight_to_the_inner_protocol(self) -> None:
        """Once sniffed, the transport's reads skip the hybrid protocol."""
        agents = make_agents()
        _, protocol, transport = open_hybrid(agents)
        client = ClientConnection()
        protocol.dataReceived(client.send(ClientHandshake(sys=dict(SYS))))
        inner = protocol.inner
        assert inner is not None
        self.assertEqual(protocol.dataReceived, inner.dataReceived)
        client.receive_data(transport.value())
        transport.clear()
        protocol.dataReceived(client.send(HandshakeAck()))
        protocol.dataReceived(client.send(Request(1, ECHO, b"{}")))
        self.assertEqual(len(client.receive_data(transport.value())), 2)  # heartbeat, response
