"""With etcd discovery a draining server's record says so: peers stop forwarding to it."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.discovery.interfaces import MembershipEvent
from tests.discovery.harness import CHAT_1, CHAT_2, CONNECTOR_1, EtcdCluster, ids


class EtcdDrainTests(SynchronousTestCase):
    """announce_leaving of EtcdDiscovery, seen by a peer."""

    def setUp(self) -> None:
        self.cluster = EtcdCluster()
        servers = {"chat": [CHAT_1, CHAT_2], "connector": [CONNECTOR_1]}
        self.connector, self.watching = self.cluster.join(CONNECTOR_1, servers=servers)
        self.cluster.join(CHAT_1, pid=501, servers=servers)
        self.cluster.join(CHAT_2, pid=502, servers=servers)
        self.cluster.settle()
        self.events: list[MembershipEvent] = []
        self.watching.subscribe(self.events.append)

    def test_draining_record_stops_forwards(self) -> None:
        """chat-1 drains: its record's state is draining; the connector stops routing
        to it (one draining event); removed follows once its key goes."""
        self.assertEqual([s.id for s in self.connector.servers_of("chat")], ["chat-1", "chat-2"])
        self.assertIn("chat-1", ids(self.connector))
        drained = self.cluster.discoveries["chat-1"].announce_leaving(1.0)
        self.assertEqual(self.successResultOf(drained), "draining")
        self.cluster.settle()
        self.assertEqual([(e.kind, e.server.id) for e in self.events], [("draining", "chat-1")])
        self.assertEqual([s.id for s in self.connector.servers_of("chat")], ["chat-2"])
        self.assertEqual(self.cluster.discoveries["chat-1"].record().stats["state"], "draining")
        self.cluster.discoveries["chat-1"]._publish_stats()
        self.cluster.settle()
        self.assertEqual(len(self.events), 1)
        self.cluster.stop("chat-1")
        self.cluster.settle()
        self.assertEqual([e.kind for e in self.events], ["draining", "removed"])
