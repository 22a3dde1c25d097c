"""A server tells the master it leaves; the others hear it before the answer comes."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cluster.monitor import MonitorClient
from pomelo_twisted.discovery.interfaces import MembershipEvent
from pomelo_twisted.gameconfig import GameConfig
from tests.cluster.fakes import write_game
from tests.discovery.harness import CHAT_1, CHAT_2, CONNECTOR_1, MasterCluster


class MonitorLeavingTests(SynchronousTestCase):
    """MonitorComponent.announce_leaving over the master's PB link (MemoryNetwork)."""

    def setUp(self) -> None:
        self.cluster = MasterCluster(GameConfig(write_game(self)))
        self.connector, discovery = self.cluster.join(CONNECTOR_1)
        self.cluster.join(CHAT_1, pid=501)
        self.cluster.join(CHAT_2, pid=502)
        self.cluster.settle()
        self.events: list[MembershipEvent] = []
        discovery.subscribe(self.events.append)

    def test_draining_reaches_the_others_first(self) -> None:
        """chat-1 leaving by itself: the connector hears ``draining`` and stops routing
        to it; then chat-1's announcement is answered ``draining``."""
        self.assertIn(CHAT_1, self.connector.servers_of("chat"))
        d = self.cluster.monitors["chat-1"].announce_leaving(2.0)
        self.cluster.settle()
        self.cluster.settle()
        self.assertEqual(self.successResultOf(d), "draining")
        self.assertEqual([(e.kind, e.server.id) for e in self.events], [("draining", "chat-1")])
        self.assertEqual([s.id for s in self.connector.servers_of("chat")], ["chat-2"])

    def test_restarting_when_the_master_restarts_it(self) -> None:
        """A server the master restarts is announced ``restarting``: it stays routed to."""
        self.cluster.master.restarting.add("chat-2")
        d = self.cluster.monitors["chat-2"].announce_leaving(2.0)
        self.cluster.settle()
        self.cluster.settle()
        self.assertEqual(self.successResultOf(d), "restarting")
        self.assertEqual([e.kind for e in self.events], ["restarting"])
        self.assertIn(CHAT_2, self.connector.servers_of("chat"))

    def test_without_the_master_the_drain_goes_on(self) -> None:
        """A server not logged in to the master announces nothing (``""``) at once."""
        monitor = self.cluster.monitors["chat-1"]
        self.cluster.stop("chat-1")
        self.assertEqual(self.successResultOf(monitor.announce_leaving(1.0)), "")

    def test_the_masters_stop_drains(self) -> None:
        """The master's ``stop`` over the link runs the monitor's graceful stop (the
        drain, in a cluster server), from the next turn."""
        monitor = self.cluster.monitors["chat-1"]
        stops: list[str] = []
        monitor.graceful_stop = lambda: stops.append("drain")
        MonitorClient(monitor).remote_stop()
        self.assertEqual(stops, [])
        self.cluster.settle()
        self.assertEqual(stops, ["drain"])
