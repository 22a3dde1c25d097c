"""Connection caps of a listener: in all and per IP address, counted and refused at accept."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.acceptors import AgentPool, HybridFactory, TCPFactory
from pomelo_twisted.agent import AgentConfig

from ..agent.helpers import make_agents


def peer(host: str, port: int = 40000) -> IPv4Address:
    return IPv4Address("TCP", host, port)


def accept(factory: TCPFactory | HybridFactory, address: IPv4Address) -> object:
    """What the factory builds for a connection from ``address``, connected if built."""
    proto = factory.buildProtocol(address)
    if proto is not None:
        transport = StringTransportWithDisconnection(peerAddress=address)
        transport.protocol = proto
        proto.makeConnection(transport)
    return proto


def lose(proto: object) -> None:
    transport = proto.transport
    transport.loseConnection()


class CapTests(SynchronousTestCase):
    """Total and per-IP caps on the TCP and hybrid factories."""

    def pool(self, total: int = 100_000, per_ip: int = 10_000) -> AgentPool:
        return make_agents(AgentConfig(max_connections=total, max_connections_per_ip=per_ip))

    def test_total_cap(self) -> None:
        """Over max_connections a connection is refused (no protocol), counted; one gone
        makes room again."""
        for kind in (TCPFactory, HybridFactory):
            agents = self.pool(total=2)
            factory = kind(agents)
            first = accept(factory, peer("10.0.0.1"))
            accept(factory, peer("10.0.0.2"))
            self.assertIsNone(accept(factory, peer("10.0.0.3")))
            self.assertEqual(agents.metrics.refused, {"connection cap": 1})
            lose(first)
            self.assertEqual(agents.connections, 1)
            self.assertIsNotNone(accept(factory, peer("10.0.0.3")))

    def test_per_ip_cap(self) -> None:
        """Over max_connections_per_ip from one address: refused; other addresses are not."""
        for kind in (TCPFactory, HybridFactory):
            agents = self.pool(per_ip=2)
            factory = kind(agents)
            first = accept(factory, peer("10.0.0.1", 1))
            accept(factory, peer("10.0.0.1", 2))
            self.assertIsNone(accept(factory, peer("10.0.0.1", 3)))
            self.assertIsNotNone(accept(factory, peer("10.0.0.2")))
            self.assertEqual(agents.metrics.refused, {"per-IP connection cap": 1})
            lose(first)
            self.assertIsNotNone(accept(factory, peer("10.0.0.1", 4)))

    def test_hybrid_to_tcp_counted_once(self) -> None:
        """A hybrid connection handed to raw TCP is counted once and released once."""
        agents = self.pool(total=1)
        factory = HybridFactory(agents)
        proto = accept(factory, peer("10.0.0.1"))
        proto.dataReceived(b"\x01")
        self.assertEqual(agents.connections, 1)
        lose(proto)
        self.assertEqual((agents.connections, agents.metrics.refused), (0, {}))
        self.assertIsNotNone(accept(factory, peer("10.0.0.1")))

    def test_defaults(self) -> None:
        """Generous defaults: 100,000 in all, 10,000 from one address."""
        config = AgentConfig()
        self.assertEqual((config.max_connections, config.max_connections_per_ip), (100_000, 10_000))
