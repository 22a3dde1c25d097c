"""MemoryKeyValueStore: the shared store contract on a Clock, then what only the fake does."""

from __future__ import annotations

from typing import TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.kv import (
    CompactedRevision,
    IKeyValueStore,
    IWatch,
    KVUnavailable,
    LeaseNotFound,
    MemoryKeyValueStore,
    WatchEvent,
)
from pomelo_twisted.testing.kvcontract import EventCollector, KeyValueStoreContract

T = TypeVar("T")


class MemoryStoreContractTests(KeyValueStoreContract, TestCase):
    """The fake passes the contract deterministically."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = MemoryKeyValueStore(self.clock)
        self.prefix = "/contract/"

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def within(self, d: Deferred[T]) -> Deferred[T]:
        self.assertTrue(d.called, "the fake delivers synchronously")
        return d


class MemoryStoreTests(SynchronousTestCase):
    """Behaviour specific to the fake: timing on the clock, outages, history."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = MemoryKeyValueStore(self.clock)

    def watch(self, prefix: str, start: int) -> tuple[Deferred[None], EventCollector]:
        collector = EventCollector()
        return self.store.watch_prefix(prefix, start, collector).done, collector

    def test_watch_from_now(self) -> None:
        """A start revision of 0 (or less) watches only changes after the call."""
        self.successResultOf(self.store.put("old", b""))
        _, collector = self.watch("", 0)
        self.successResultOf(self.store.put("new", b""))
        self.assertEqual(collector.summary(), [("put", "new", b"")])

    def test_provides_interfaces(self) -> None:
        """The fake and its watches provide IKeyValueStore and IWatch."""
        self.assertTrue(verifyObject(IKeyValueStore, self.store))
        self.assertTrue(verifyObject(IWatch, self.store.watch_prefix("", 0, print)))

    def test_lease_expires_exactly_on_ttl(self) -> None:
        """A lease lives ttl seconds from its last keep-alive, then its keys go."""
        lease = self.successResultOf(self.store.grant(10))
        self.successResultOf(self.store.put("k", b"v", lease))
        self.clock.advance(9)
        self.assertEqual(self.successResultOf(self.store.keep_alive(lease)), 10.0)
        self.clock.advance(9.9)
        self.assertIsNotNone(self.successResultOf(self.store.get("k")))
        self.clock.advance(0.1)
        self.assertIsNone(self.successResultOf(self.store.get("k")))
        self.failureResultOf(self.store.keep_alive(lease), LeaseNotFound)
        self.assertEqual(self.store.leases(), [])

    def test_revoke_is_one_revision(self) -> None:
        """Revoking a lease deletes all its keys at one revision."""
        lease = self.successResultOf(self.store.grant(5))
        for name in "abc":
            self.successResultOf(self.store.put(name, b"", lease))
        _, collector = self.watch("", 0)
        self.successResultOf(self.store.revoke(lease))
        self.assertEqual([e.kind for e in collector.events], ["delete"] * 3)
        self.assertEqual({e.kv.mod_revision for e in collector.events}, {self.store.revision})

    def test_reput_moves_key_to_new_lease(self) -> None:
        """A key put again without its lease no longer dies with it."""
        lease = self.successResultOf(self.store.grant(5))
        self.successResultOf(self.store.put("k", b"1", lease))
        self.successResultOf(self.store.put("k", b"2"))
        self.clock.advance(5)
        kv = self.successResultOf(self.store.get("k"))
        assert kv is not None
        self.assertEqual((kv.value, kv.lease), (b"2", 0))

    def test_fail_and_recover(self) -> None:
        """fail() makes every call errback KVUnavailable and breaks watches; recover() heals."""
        done, _ = self.watch("", 0)
        self.store.fail()
        self.failureResultOf(done, KVUnavailable)
        calls = [
            self.store.grant(1),
            self.store.keep_alive(1),
            self.store.revoke(1),
            self.store.get("k"),
            self.store.get_prefix(""),
            self.store.put("k", b""),
            self.store.create("k", b""),
            self.store.delete("k"),
            self.store.delete_if("k", 1),
        ]
        for d in calls:
            failure = self.failureResultOf(d, KVUnavailable)
            self.assertIn("memory://", str(failure.value))
        late, _ = self.watch("", 0)
        self.failureResultOf(late, KVUnavailable)
        self.store.recover()
        self.assertEqual(self.successResultOf(self.store.put("k", b"v")), 2)

    def test_leases_expire_during_outage(self) -> None:
        """A lease not renewed during an outage longer than its ttl is gone afterwards."""
        lease = self.successResultOf(self.store.grant(3))
        self.store.fail()
        self.clock.advance(3)
        self.store.recover()
        self.failureResultOf(self.store.keep_alive(lease), LeaseNotFound)

    def test_compacted_start(self) -> None:
        """A watch starting before the compacted revision fails CompactedRevision."""
        for i in range(5):
            self.successResultOf(self.store.put("k", str(i).encode()))
        self.store.compact(4)
        failure = self.failureResultOf(self.watch("", 3)[0], CompactedRevision)
        self.assertEqual(failure.value.compact_revision, 4)
        _, collector = self.watch("", 4)
        self.assertEqual([e.kv.value for e in collector.events], [b"2", b"3", b"4"])

    def test_history_limit(self) -> None:
        """Past the history limit the oldest events are compacted away."""
        store = MemoryKeyValueStore(self.clock, history_limit=3)
        for i in range(6):
            self.successResultOf(store.put("k", str(i).encode()))
        collector = EventCollector()
        self.failureResultOf(store.watch_prefix("", 2, collector).done, CompactedRevision)
        store.watch_prefix("", 5, collector)
        self.assertEqual([e.kv.value for e in collector.events], [b"3", b"4", b"5"])

    def test_reentrant_writes_keep_order(self) -> None:
        """A callback that writes does not reorder the events other watches see."""
        seen: list[tuple[str, int]] = []

        def writer(event: WatchEvent) -> None:
            if event.kv.key == "a":
                self.successResultOf(self.store.put("b", b""))

        self.store.watch_prefix("", 0, writer)
        self.store.watch_prefix("", 0, lambda e: seen.append((e.kv.key, e.kv.mod_revision)))
        self.successResultOf(self.store.put("a", b""))
        self.assertEqual(seen, [("a", 2), ("b", 3)])

    def test_failing_callback_is_logged(self) -> None:
        """A callback that raises is logged; other watches still get the event."""
        collector = EventCollector()

        def broken(event: WatchEvent) -> None:
            raise ValueError("bug in a callback")

        self.store.watch_prefix("", 0, broken)
        self.store.watch_prefix("", 0, collector)
        self.successResultOf(self.store.put("a", b""))
        self.assertEqual(len(collector.events), 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
