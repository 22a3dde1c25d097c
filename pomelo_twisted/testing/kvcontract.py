"""The contract every :class:`~pomelo_twisted.kv.interfaces.IKeyValueStore` passes.

:class:`KeyValueStoreContract` is a mixin of ``async`` tests for a trial ``TestCase``
(runs under trial and pytest).  A concrete test class provides the store and says how time
passes::

    class MemoryStoreContractTests(KeyValueStoreContract, TestCase):
        def setUp(self) -> None:
            self.clock = Clock()
            self.store = MemoryKeyValueStore(self.clock)
            self.prefix = "/test/"

        def advance(self, seconds: float) -> None:
            self.clock.advance(seconds)

        def within(self, d: Deferred[T]) -> Deferred[T]:
            self.assertTrue(d.called, "the fake delivers synchronously")
            return d

The hooks must win over the mixin's placeholders: define them in the concrete class, or
list a base class that defines them before the mixin.  Every key a test touches starts
with ``self.prefix`` (a real store shared by a class gets a
fresh prefix per test).  A store on real time makes ``advance`` a no-op and ``within`` a
timeout, so lease expiry is awaited through the watch's delete event, never by sleeping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from twisted.internet.defer import Deferred, DeferredList, succeed
from zope.interface.verify import verifyObject

from ..kv.errors import LeaseNotFound
from ..kv.interfaces import IKeyValueStore, IWatch, KeyValue, WatchEvent

if TYPE_CHECKING:
    from twisted.trial.unittest import TestCase

    _Base = TestCase
else:
    _Base = object

__all__ = ["EventCollector", "KeyValueStoreContract"]

T = TypeVar("T")


class EventCollector:
    """Collects the events of a watch; :meth:`wait_for` fires once ``n`` have arrived."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self._waiting: list[tuple[int, Deferred[list[WatchEvent]]]] = []

    def __call__(self, event: WatchEvent) -> None:
        self.events.append(event)
        ready = [(n, d) for n, d in self._waiting if len(self.events) >= n]
        self._waiting = [(n, d) for n, d in self._waiting if len(self.events) < n]
        for _, d in ready:
            d.callback(list(self.events))

    def wait_for(self, n: int) -> Deferred[list[WatchEvent]]:
        """Fires with the events so far once at least ``n`` have arrived."""
        if len(self.events) >= n:
            return succeed(list(self.events))
        d: Deferred[list[WatchEvent]] = Deferred()
        self._waiting.append((n, d))
        return d

    def summary(self) -> list[tuple[str, str, bytes]]:
        """(kind, key, value) of each event, for readable assertions."""
        return [(e.kind, e.kv.key, e.kv.value) for e in self.events]


class KeyValueStoreContract(_Base):
    """The behaviour shared by every IKeyValueStore; see the module docstring."""

    store: IKeyValueStore
    prefix: str

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the store's clock (no-op on real time)."""
        raise NotImplementedError

    def within(self, d: Deferred[T]) -> Deferred[T]:
        """``d``, failing the test if it does not fire in reasonable time."""
        raise NotImplementedError

    def key(self, name: str) -> str:
        """The test's key ``name``."""
        return self.prefix + name

    def watch(self, prefix: str, start: int) -> tuple[IWatch, EventCollector]:
        """A watch of ``prefix`` from ``start`` collecting its events; cancelled on cleanup."""
        collector = EventCollector()
        watch = self.store.watch_prefix(prefix, start, collector)
        self.addCleanup(watch.cancel)
        return watch, collector

    async def test_provides_interface(self) -> None:
        """The store and its watches provide the interfaces."""
        self.assertTrue(verifyObject(IKeyValueStore, self.store))
        watch, _ = self.watch(self.prefix, 0)
        self.assertTrue(verifyObject(IWatch, watch))

    async def test_put_get(self) -> None:
        """put returns increasing revisions; get shows create and mod revisions."""
        first = await self.store.put(self.key("a"), b"1")
        second = await self.store.put(self.key("a"), b"2")
        self.assertGreater(second, first)
        kv = await self.store.get(self.key("a"))
        self.assertEqual(kv, KeyValue(self.key("a"), b"2", first, second, 0))

    async def test_get_absent(self) -> None:
        """get of a missing key is None."""
        self.assertIsNone(await self.store.get(self.key("missing")))

    async def test_get_prefix(self) -> None:
        """get_prefix lists the keys under the prefix sorted, with the read's revision."""
        await self.store.put(self.key("b/2"), b"x")
        await self.store.put(self.key("b/1"), b"y")
        last = await self.store.put(self.key("bb"), b"z")
        await self.store.put(self.key("a"), b"w")
        kvs, revision = await self.store.get_prefix(self.key("b/"))
        self.assertEqual(
            [(kv.key, kv.value) for kv in kvs], [(self.key("b/1"), b"y"), (self.key("b/2"), b"x")]
        )
        self.assertGreater(revision, last)

    async def test_get_prefix_empty(self) -> None:
        """An empty prefix range is an empty list and the current revision."""
        last = await self.store.put(self.key("other"), b"")
        kvs, revision = await self.store.get_prefix(self.key("none/"))
        self.assertEqual((kvs, revision), ([], last))

    async def test_create(self) -> None:
        """create writes only an absent key."""
        self.assertTrue(await self.store.create(self.key("c"), b"first"))
        self.assertFalse(await self.store.create(self.key("c"), b"second"))
        kv = await self.store.get(self.key("c"))
        assert kv is not None
        self.assertEqual(kv.value, b"first")

    async def test_create_race(self) -> None:
        """Of several concurrent creates of one key exactly one wins."""
        results = await DeferredList(
            [self.store.create(self.key("race"), str(i).encode()) for i in range(5)],
            fireOnOneErrback=True,
            consumeErrors=True,
        )
        wins = [i for i, (_, created) in enumerate(results) if created]
        self.assertEqual(len(wins), 1)
        kv = await self.store.get(self.key("race"))
        assert kv is not None
        self.assertEqual(kv.value, str(wins[0]).encode())

    async def test_delete(self) -> None:
        """delete says whether the key existed."""
        await self.store.put(self.key("d"), b"")
        self.assertTrue(await self.store.delete(self.key("d")))
        self.assertFalse(await self.store.delete(self.key("d")))
        self.assertIsNone(await self.store.get(self.key("d")))

    async def test_delete_if(self) -> None:
        """delete_if deletes only a key unchanged since the given mod_revision."""
        stale = await self.store.put(self.key("e"), b"1")
        fresh = await self.store.put(self.key("e"), b"2")
        self.assertFalse(await self.store.delete_if(self.key("e"), stale))
        self.assertIsNotNone(await self.store.get(self.key("e")))
        self.assertTrue(await self.store.delete_if(self.key("e"), fresh))
        self.assertIsNone(await self.store.get(self.key("e")))
        self.assertFalse(await self.store.delete_if(self.key("e"), fresh))

    async def test_delete_if_race(self) -> None:
        """Of several concurrent delete_if at one mod_revision exactly one deletes."""
        revision = await self.store.put(self.key("dr"), b"")
        results = await DeferredList(
            [self.store.delete_if(self.key("dr"), revision) for _ in range(4)],
            fireOnOneErrback=True,
            consumeErrors=True,
        )
        self.assertEqual(sorted(deleted for _, deleted in results), [False, False, False, True])

    async def test_put_without_lease_detaches(self) -> None:
        """A key put again without a lease no longer belongs to (nor dies with) the lease."""
        lease = await self.store.grant(30)
        await self.store.put(self.key("det"), b"1", lease)
        await self.store.put(self.key("det"), b"2")
        await self.store.revoke(lease)
        kv = await self.store.get(self.key("det"))
        assert kv is not None
        self.assertEqual((kv.value, kv.lease), (b"2", 0))

    async def test_lease_attach_and_revoke(self) -> None:
        """Keys put with a lease carry it; revoke deletes them and ends the lease."""
        lease = await self.store.grant(30)
        self.assertNotEqual(lease, 0)
        await self.store.put(self.key("l/1"), b"a", lease)
        self.assertTrue(await self.store.create(self.key("l/2"), b"b", lease))
        await self.store.put(self.key("l/3"), b"c")
        kv = await self.store.get(self.key("l/1"))
        assert kv is not None
        self.assertEqual(kv.lease, lease)
        self.assertGreaterEqual(await self.store.keep_alive(lease), 29)
        await self.store.revoke(lease)
        kvs, _ = await self.store.get_prefix(self.key("l/"))
        self.assertEqual([kv.key for kv in kvs], [self.key("l/3")])
        await self.assertFailure(self.store.keep_alive(lease), LeaseNotFound)

    async def test_revoke_unknown(self) -> None:
        """Revoking an unknown lease is not an error."""
        lease = await self.store.grant(5)
        await self.store.revoke(lease)
        await self.store.revoke(lease)  # a failure here fails the test

    async def test_unknown_lease(self) -> None:
        """put and create with an unknown lease fail LeaseNotFound; keep_alive too."""
        lease = await self.store.grant(5)
        await self.store.revoke(lease)
        await self.assertFailure(self.store.put(self.key("x"), b"", lease), LeaseNotFound)
        await self.assertFailure(self.store.create(self.key("x"), b"", lease), LeaseNotFound)
        await self.assertFailure(self.store.keep_alive(lease), LeaseNotFound)
        self.assertIsNone(await self.store.get(self.key("x")))

    async def test_grant_rounds_up(self) -> None:
        """A fractional ttl is rounded up to whole seconds."""
        lease = await self.store.grant(2.2)
        self.addCleanup(self.store.revoke, lease)
        self.assertEqual(await self.store.keep_alive(lease), 3)

    async def test_lease_expires(self) -> None:
        """A lease not kept alive expires after its ttl: its keys are deleted."""
        lease = await self.store.grant(1)
        await self.store.put(self.key("exp/k"), b"v", lease)
        _, revision = await self.store.get_prefix(self.key("exp/"))
        _, collector = self.watch(self.key("exp/"), revision + 1)
        self.advance(2)
        events = await self.within(collector.wait_for(1))
        self.assertEqual([(e.kind, e.kv.key) for e in events], [("delete", self.key("exp/k"))])
        self.assertIsNone(await self.store.get(self.key("exp/k")))
        await self.assertFailure(self.store.keep_alive(lease), LeaseNotFound)

    async def test_watch_snapshot_then_changes(self) -> None:
        """Watching from the read revision + 1 misses nothing written after the read."""
        await self.store.put(self.key("w/a"), b"1")
        kvs, revision = await self.store.get_prefix(self.key("w/"))
        self.assertEqual([kv.key for kv in kvs], [self.key("w/a")])
        put_b = await self.store.put(self.key("w/b"), b"2")  # between the read and the watch
        _, collector = self.watch(self.key("w/"), revision + 1)
        await self.store.put(self.key("x"), b"outside the prefix")
        await self.store.delete(self.key("w/a"))
        await self.store.put(self.key("w/b"), b"3")
        await self.within(collector.wait_for(3))
        self.assertEqual(
            collector.summary(),
            [
                ("put", self.key("w/b"), b"2"),
                ("delete", self.key("w/a"), b""),
                ("put", self.key("w/b"), b"3"),
            ],
        )
        first = collector.events[0].kv
        self.assertEqual((first.create_revision, first.mod_revision), (put_b, put_b))
        deleted = collector.events[1].kv
        self.assertEqual(deleted.create_revision, deleted.mod_revision)
        self.assertGreater(deleted.mod_revision, put_b)

    async def test_watch_replays_history(self) -> None:
        """A watch from an older revision first replays the changes since then, in order."""
        first = await self.store.put(self.key("h/a"), b"1")
        await self.store.put(self.key("h/b"), b"2")
        await self.store.delete(self.key("h/a"))
        _, collector = self.watch(self.key("h/"), first)
        await self.within(collector.wait_for(3))
        self.assertEqual(
            collector.summary(),
            [
                ("put", self.key("h/a"), b"1"),
                ("put", self.key("h/b"), b"2"),
                ("delete", self.key("h/a"), b""),
            ],
        )
        revisions = [e.kv.mod_revision for e in collector.events]
        self.assertEqual(revisions, sorted(revisions))

    async def test_watch_other_prefix(self) -> None:
        """A watch sees nothing of keys outside its prefix (a longer sibling included)."""
        _, revision = await self.store.get_prefix(self.key("p/"))
        _, collector = self.watch(self.key("p/"), revision + 1)
        await self.store.put(self.key("p"), b"")
        await self.store.put(self.key("pp/x"), b"")
        await self.store.put(self.key("p/x"), b"")
        await self.within(collector.wait_for(1))
        self.assertEqual(collector.summary(), [("put", self.key("p/x"), b"")])

    async def test_watch_cancel(self) -> None:
        """After cancel no event arrives and done fires None."""
        _, revision = await self.store.get_prefix(self.key("c/"))
        watch, collector = self.watch(self.key("c/"), revision + 1)
        await self.store.put(self.key("c/1"), b"")
        await self.within(collector.wait_for(1))
        watch.cancel()
        self.assertIsNone(await self.within(watch.done))
        put_2 = await self.store.put(self.key("c/2"), b"")
        _, witness = self.watch(self.key("c/"), put_2)
        await self.within(witness.wait_for(1))
        self.assertEqual(collector.summary(), [("put", self.key("c/1"), b"")])
        watch.cancel()  # idempotent
