"""AcceptorService on a MemoryReactor, and the interfaces the acceptor pieces provide."""

from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IPushProducer, IStreamServerEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import (
    MemoryReactor,
    StringTransport,
    StringTransportWithDisconnection,
)
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.acceptors import (
    AcceptorService,
    HybridFactory,
    PomeloTCPProtocol,
    TCPFactory,
    WebSocketFactory,
)
from pomelo_twisted.acceptors.service import with_backlog
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.compat import endpoint_arguments
from pomelo_twisted.gameconfig import LISTEN_BACKLOG
from pomelo_twisted.interfaces import IAcceptor, IAgent, IAgentLink, IConnectionHandler
from pomelo_twisted.protocol import ClientConnection, ClientHandshake, HandshakeAck

from ..agent.helpers import SYS, connect, make_agents


def attach(service: AcceptorService, ack: bool) -> StringTransportWithDisconnection:
    """A client connection through the service's factory, handshaken (and acked)."""
    protocol = service.factory.buildProtocol(None)  # type: ignore[arg-type]
    transport = StringTransportWithDisconnection()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    client = ClientConnection()
    protocol.dataReceived(client.send(ClientHandshake(sys=dict(SYS))))
    client.receive_data(transport.value())
    if ack:
        protocol.dataReceived(client.send(HandshakeAck()))
    return transport


class AcceptorServiceTests(SynchronousTestCase):
    """Listening from an endpoint string and shutting down."""

    def test_start_listens_on_the_endpoint(self) -> None:
        """startService listens on the endpoint string's port and interface."""
        reactor = MemoryReactor()
        service = AcceptorService(reactor, "tcp:3010:interface=127.0.0.1", make_agents())
        self.assertEqual(reactor.tcpServers, [])
        service.startService()
        self.assertTrue(service.running)
        ((port, factory, _backlog, interface),) = reactor.tcpServers
        self.assertEqual((port, interface), (3010, "127.0.0.1"))
        self.assertIs(factory, service.factory)
        self.assertIsInstance(factory, HybridFactory)
        listening = self.successResultOf(service.listening)
        self.assertIs(listening, service.port)
        self.assertEqual(listening.getHost().port, 3010)

    def test_privileged_start_listens_once(self) -> None:
        """privilegedStartService listens (before root is dropped); startService does not again."""
        reactor = MemoryReactor()
        service = AcceptorService(reactor, "tcp:80:interface=127.0.0.1", make_agents())
        self.assertIsInstance(service, StreamServerEndpointService)
        self.assertTrue(verifyObject(IStreamServerEndpoint, service.endpoint))
        service.privilegedStartService()
        self.assertEqual([p for p, *_ in reactor.tcpServers], [80])
        service.startService()
        self.assertEqual(len(reactor.tcpServers), 1)
        self.assertEqual(self.successResultOf(service.listening).getHost().port, 80)

    def test_bind_failure_fails_listening(self) -> None:
        """A port that cannot be bound fails ``listening`` with the bind error; stop still works."""
        reactor = MemoryReactor()

        def refuse(*args: object, **kwargs: object) -> None:
            raise CannotListenError("127.0.0.1", 3010, OSError("in use"))

        self.patch(reactor, "listenTCP", refuse)
        service = AcceptorService(reactor, "tcp:3010:interface=127.0.0.1", make_agents())
        service.startService()
        self.failureResultOf(service.listening, CannotListenError)
        self.assertIsNone(self.successResultOf(service.stopService()))
        self.assertEqual(len(self.flushLoggedErrors(CannotListenError)), 1)

    def test_kinds_pick_the_factory(self) -> None:
        """kind picks the protocol factory; an unknown kind is refused by name."""
        agents = make_agents()
        self.assertIsInstance(
            AcceptorService(MemoryReactor(), "tcp:1", agents).factory, HybridFactory
        )
        self.assertIsInstance(
            AcceptorService(MemoryReactor(), "tcp:1", agents, kind="tcp").factory, TCPFactory
        )
        self.assertIsInstance(
            AcceptorService(MemoryReactor(), "tcp:1", agents, kind="ws").factory, WebSocketFactory
        )
        with self.assertRaises(ValueError) as caught:
            AcceptorService(MemoryReactor(), "tcp:1", agents, kind="udp")  # type: ignore[arg-type]
        self.assertIn("'udp'", str(caught.exception))

    def test_stop_closes_every_agent_and_the_port(self) -> None:
        """stopService closes every connection (acked or not) and stops listening."""
        reactor = MemoryReactor()
        agents = make_agents()
        service = AcceptorService(reactor, "tcp:3010", agents, kind="tcp")
        service.startService()
        port = service.port
        assert port is not None
        stopped: list[bool] = []
        port.stopListening = lambda: stopped.append(True)  # type: ignore[method-assign]
        working = attach(service, ack=True)
        waiting = attach(service, ack=False)
        self.assertEqual(len(agents.agents), 2)
        closing = list(agents.agents.values())
        service.stopService()
        self.assertFalse(service.running)
        self.assertEqual(stopped, [True])
        self.assertIsNone(service.port)
        self.assertFalse(working.connected)
        self.assertFalse(waiting.connected)
        self.assertEqual(agents.agents, {})
        self.assertEqual([a.close_reason for a in closing], ["server closed", "server closed"])
        self.assertEqual(agents.metrics.closed, {"server closed": 2})
        self.assertEqual(agents.handler.closes, [(closing[0], "server closed")])

    def test_stop_waits_for_connections_to_go(self) -> None:
        """stopService's Deferred fires only once every connection is gone, at the latest
        close_grace after the close began (a client that never lets go is aborted)."""
        clock = Clock()
        agents = make_agents(AgentConfig(close_grace=5.0), clock=clock)
        service = AcceptorService(MemoryReactor(), "tcp:3010", agents, kind="tcp")
        protocol = service.factory.buildProtocol(None)  # type: ignore[arg-type]
        transport = StringTransport()  # never reports the loss by itself
        protocol.makeConnection(transport)
        done = service.stopService()
        self.assertNoResult(done)
        clock.advance(5.0)
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(done)
        protocol.connectionLost(None)  # type: ignore[arg-type]
        self.assertIsNone(self.successResultOf(done))

    def test_stop_before_listening(self) -> None:
        """stopService without a bound port returns a Deferred that has already fired."""
        service = AcceptorService(MemoryReactor(), "tcp:3010", make_agents())
        self.assertIsNone(self.successResultOf(service.stopService()))


class InterfaceTests(SynchronousTestCase):
    """The pieces provide the interfaces they declare."""

    def test_acceptor(self) -> None:
        """AcceptorService provides IAcceptor."""
        service = AcceptorService(MemoryReactor(), "tcp:3010:interface=127.0.0.1", make_agents())
        self.assertTrue(verifyObject(IAcceptor, service))
        self.assertEqual(
            (service.description, service.kind), ("tcp:3010:interface=127.0.0.1", "hybrid")
        )

    def test_tcp_link_and_agent(self) -> None:
        """A connected TCP protocol provides IAgentLink; its agent provides IAgent, and its
        send queue IPushProducer."""
        conn = connect(AgentConfig())
        self.assertIsInstance(conn.protocol, PomeloTCPProtocol)
        self.assertTrue(verifyObject(IAgentLink, conn.protocol))
        self.assertEqual(conn.protocol.peer, "192.168.1.1:54321")
        self.assertTrue(verifyObject(IAgent, conn.agent))
        self.assertTrue(verifyObject(IPushProducer, conn.agent.send_queue))
        self.assertTrue(verifyObject(IConnectionHandler, conn.handler))


class BacklogTests(SynchronousTestCase):
    """Every client listener gets a listen backlog of LISTEN_BACKLOG unless told."""

    def listen(self, description: str) -> tuple[int, int, str]:
        reactor = MemoryReactor()
        AcceptorService(reactor, description, make_agents()).startService()
        ((port, _factory, backlog, interface),) = reactor.tcpServers
        return port, backlog, interface

    def test_default_backlog(self) -> None:
        """A --listen endpoint without backlog listens with LISTEN_BACKLOG (1024)."""
        self.assertEqual(LISTEN_BACKLOG, 1024)
        self.assertEqual(self.listen("tcp:3010:interface=127.0.0.1"), (3010, 1024, "127.0.0.1"))
        self.assertEqual(self.listen("tcp:3010"), (3010, 1024, ""))

    def test_given_backlog_kept(self) -> None:
        """An endpoint naming its backlog keeps it."""
        self.assertEqual(self.listen("tcp:3010:backlog=7"), (3010, 7, ""))

    def test_ipv6(self) -> None:
        """Escaped colons of an IPv6 interface survive, on tcp and tcp6."""
        self.assertEqual(self.listen(r"tcp:3010:interface=\:\:1"), (3010, 1024, "::1"))
        self.assertEqual(self.listen(r"tcp6:port=3010:interface=\:\:1"), (3010, 1024, "::1"))

    def test_with_backlog_round_trips_through_twisted_grammar(self) -> None:
        """The rewritten string parses to the same arguments plus the backlog."""
        description = r"ssl:3443:privateKey=/k\:e\=y.pem:certKey=/c.pem"
        args, kwargs = endpoint_arguments(with_backlog(description))
        self.assertEqual(args, ["ssl", "3443"])
        self.assertEqual(
            kwargs, {"privateKey": "/k:e=y.pem", "certKey": "/c.pem", "backlog": "1024"}
        )

    def test_plugin_types_untouched(self) -> None:
        """Endpoint types that take no backlog keyword are left alone."""
        self.assertEqual(with_backlog("systemd:domain=INET:index=0"), "systemd:domain=INET:index=0")
