"""Snapshots: the master's rows joined with each server's stats, requests/s from deltas."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.cluster.interfaces import IClusterView
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.dashboard.snapshot import Snapshots

from .fakes import FakeCluster, server_row


class SnapshotTests(SynchronousTestCase):
    """Snapshots.take on a fake master and a Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.cluster = FakeCluster()
        self.snapshots = Snapshots(self.cluster, self.clock, stats_timeout=0.5)

    def take(self) -> dict[str, dict[str, Any]]:
        snapshot = self.successResultOf(self.snapshots.take())
        self.assertEqual(snapshot["time"], self.clock.seconds())
        return {server["id"]: server for server in snapshot["servers"]}

    def test_fake_and_master_provide_the_view(self) -> None:
        """The fake master provides IClusterView, and so does the real master's class."""
        verifyObject(IClusterView, self.cluster)
        self.assertTrue(IClusterView.implementedBy(MasterService))

    def test_rows_and_stats_joined(self) -> None:
        """Every row is there, the master first; a server's connections come from its stats;
        stats are asked of up servers only, with the configured timeout."""
        self.cluster.table.append(server_row("chat-2", "chat", None, state="down"))
        snapshot = self.successResultOf(self.snapshots.take())
        ids = [server["id"] for server in snapshot["servers"]]
        self.assertEqual(ids, ["master-server-1", "connector-1", "chat-1", "chat-2"])
        servers = {server["id"]: server for server in snapshot["servers"]}
        self.assertEqual(servers["connector-1"]["connections"], 3)
        self.assertEqual(servers["master-server-1"]["connections"], 2)
        self.assertEqual(servers["connector-1"]["pid"], 201)
        self.assertEqual(servers["chat-2"]["state"], "down")
        self.assertEqual(self.cluster.stats_calls, [("connector-1", 0.5), ("chat-1", 0.5)])

    def test_absent_keys_are_none(self) -> None:
        """Without metrics a server has no requests, routes or rpc: each is None; its
        breakers are all closed ({}); a silent server has None everywhere and answered False."""
        self.cluster.stats_of["chat-1"] = None
        servers = self.take()
        connector = servers["connector-1"]
        for key in ("requests", "requestsPerSecond", "routes", "rpc", "rpcErrors"):
            self.assertIsNone(connector[key], key)
        self.assertEqual(connector["breakers"], {})
        self.assertTrue(connector["answered"])
        chat = servers["chat-1"]
        self.assertFalse(chat["answered"])
        self.assertIsNone(chat["breakers"])
        self.assertIsNone(chat["connections"])

    def test_metrics_keys(self) -> None:
        """routes become rows sorted by route; rpc errors and breakers are passed on."""
        self.cluster.stats_of["chat-1"] = {
            "connections": 0,
            "requests": 7,
            "routes": {
                "chat.chatHandler.send": {"count": 5, "p50": 0.002, "p99": 0.01},
                "chat.chatHandler.join": {"count": 2, "p50": 0.001, "p99": 0.003},
            },
            "rpc": {"calls": 9, "errors": 1, "timeouts": 0},
            "breakers": {"connector-1": "open"},
        }
        chat = self.take()["chat-1"]
        self.assertEqual(
            chat["routes"],
            [
                {"route": "chat.chatHandler.join", "count": 2, "p50": 0.001, "p99": 0.003},
                {"route": "chat.chatHandler.send", "count": 5, "p50": 0.002, "p99": 0.01},
            ],
        )
        self.assertEqual(chat["rpcErrors"], 1)
        self.assertEqual(chat["rpc"], {"calls": 9, "errors": 1, "timeouts": 0})
        self.assertEqual(chat["breakers"], {"connector-1": "open"})
        self.assertEqual(chat["requests"], 7)

    def test_requests_per_second_from_deltas(self) -> None:
        """The first snapshot has no rate; the next one divides the new requests by the
        seconds between the two on the clock."""
        stats = self.cluster.stats_of["chat-1"]
        assert stats is not None
        stats["requests"] = 100
        self.assertIsNone(self.take()["chat-1"]["requestsPerSecond"])
        self.clock.advance(2)
        stats["requests"] = 150
        self.assertEqual(self.take()["chat-1"]["requestsPerSecond"], 25.0)

    def test_restart_resets_the_rate(self) -> None:
        """A new pid (or counters gone backwards) gives no rate, then rates from there."""
        stats = self.cluster.stats_of["chat-1"]
        assert stats is not None
        stats["requests"] = 100
        self.take()
        self.clock.advance(1)
        self.cluster.table[2]["pid"] = 999
        stats["requests"] = 3
        self.assertIsNone(self.take()["chat-1"]["requestsPerSecond"])
        self.clock.advance(1)
        stats["requests"] = 13
        self.assertEqual(self.take()["chat-1"]["requestsPerSecond"], 10.0)

    def test_snapshot_waits_for_every_answer(self) -> None:
        """The snapshot fires once the slowest server answered (or its stats timed out)."""
        slow: Deferred[dict[str, Any] | None] = Deferred()
        self.cluster.pending["chat-1"] = slow
        d = self.snapshots.take()
        self.assertNoResult(d)
        slow.callback({"connections": 4})
        servers = {s["id"]: s for s in self.successResultOf(d)["servers"]}
        self.assertEqual(servers["chat-1"]["connections"], 4)

    def test_failed_stats_count_as_silent(self) -> None:
        """A stats Deferred that fails makes that server silent, not the snapshot fail."""
        broken: Deferred[dict[str, Any] | None] = Deferred()
        self.cluster.pending["chat-1"] = broken
        d = self.snapshots.take()
        broken.errback(RuntimeError("boom"))
        servers = {s["id"]: s for s in self.successResultOf(d)["servers"]}
        self.assertFalse(servers["chat-1"]["answered"])

    def test_non_finite_numbers_are_none(self) -> None:
        """A NaN quantile (an empty histogram) or a non-number becomes None: JSON has no NaN."""
        self.cluster.stats_of["chat-1"] = {
            "connections": 0,
            "requests": 1,
            "routes": {"a.b.c": {"count": 1, "p50": float("nan"), "p99": "slow"}},
            "rpc": {"calls": 2, "errors": float("inf"), "timeouts": 0},
        }
        chat = self.take()["chat-1"]
        self.assertEqual(chat["routes"], [{"route": "a.b.c", "count": 1, "p50": None, "p99": None}])
        self.assertIsNone(chat["rpcErrors"])
