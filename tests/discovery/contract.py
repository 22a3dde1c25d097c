"""What every IServiceDiscovery does, written once and run against each implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.discovery.interfaces import IServiceDiscovery, MembershipEvent

from .harness import CHAT_1, CHAT_2, ids

if TYPE_CHECKING:
    _Base = SynchronousTestCase
else:
    _Base = object


class DiscoveryContract(_Base):
    """Mixin for a trial TestCase whose ``cluster`` (set in setUp) has ``join``, ``stop``,
    ``settle`` and ``clean_stop_kind``."""

    cluster: Any

    def test_provides_the_interface(self) -> None:
        """The discovery provides IServiceDiscovery."""
        _, discovery = self.cluster.join(CHAT_1)
        self.assertTrue(verifyObject(IServiceDiscovery, discovery))

    def test_first_view_after_registration(self) -> None:
        """first_view fires once registered; the view holds this server and its peers."""
        self.cluster.join(CHAT_2)
        self.cluster.settle()
        _, discovery = self.cluster.join(CHAT_1)
        self.cluster.settle()
        self.successResultOf(discovery.first_view)
        self.assertIn("chat-2", [info.id for info in discovery.servers()])
        self.assertIn("chat-1", [info.id for info in discovery.servers()])

    def test_a_joining_peer_is_up(self) -> None:
        """A server that joins later is announced up and added to the application."""
        app, discovery = self.cluster.join(CHAT_1)
        self.cluster.settle()
        seen: list[MembershipEvent] = []
        discovery.subscribe(seen.append)
        self.cluster.join(CHAT_2)
        self.cluster.settle()
        self.assertIn(("up", "chat-2"), [(e.kind, e.server.id) for e in seen])
        self.assertIn("chat-2", ids(app))

    def test_unsubscribe(self) -> None:
        """An unsubscribed listener hears nothing more."""
        _, discovery = self.cluster.join(CHAT_1)
        self.cluster.settle()
        seen: list[MembershipEvent] = []
        discovery.subscribe(seen.append)()
        self.cluster.join(CHAT_2)
        self.cluster.settle()
        self.assertEqual(seen, [])

    def test_clean_stop_is_seen(self) -> None:
        """A peer's clean stop reaches the others (removed with etcd, down with the master)."""
        _, discovery = self.cluster.join(CHAT_1)
        self.cluster.join(CHAT_2)
        self.cluster.settle()
        seen: list[MembershipEvent] = []
        discovery.subscribe(seen.append)
        self.cluster.stop("chat-2")
        self.cluster.settle()
        self.assertEqual(
            [(e.kind, e.server.id) for e in seen], [(self.cluster.clean_stop_kind, "chat-2")]
        )

    def test_record(self) -> None:
        """record() tells the server's entry, pid, host, start time and stats."""
        _, discovery = self.cluster.join(CHAT_1, pid=4242)
        record = discovery.record()
        self.assertEqual(record.server, CHAT_1.to_dict())
        self.assertEqual((record.pid, record.host), (4242, "127.0.0.1"))
        self.assertEqual(set(record.stats), {"connections", "peers"})
