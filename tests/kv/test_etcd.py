"""EtcdKeyValueStore against a real etcd: the shared contract, then outages and errors."""

from __future__ import annotations

from typing import TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.kv import CompactedRevision, IKeyValueStore, IWatch, KVUnavailable
from pomelo_twisted.kv.etcd import EtcdKeyValueStore
from pomelo_twisted.testing.etcdserver import EtcdServer, class_etcd
from pomelo_twisted.testing.gamecopy import free_ports
from pomelo_twisted.testing.kvcontract import EventCollector, KeyValueStoreContract

T = TypeVar("T")
WAIT = 10.0  # a bound on waiting for etcd, never a sleep


class EtcdCase(TestCase):
    """One etcd per class; a fresh client (closed on cleanup) per test."""

    @property
    def server(self) -> EtcdServer:
        return class_etcd(type(self))

    def client(self, url: str | None = None, timeout: float = 5.0) -> EtcdKeyValueStore:
        store = EtcdKeyValueStore(reactor, url or self.server.url, timeout=timeout)
        self.addCleanup(store.close)
        return store

    def within(self, d: Deferred[T]) -> Deferred[T]:
        return d.addTimeout(WAIT, reactor)


class EtcdStoreContractTests(EtcdCase, KeyValueStoreContract):
    """The etcd client passes the contract on a real etcd, and what only etcd shows:
    compaction, the gateway's errors."""

    def setUp(self) -> None:
        self.store = self.client()
        self.prefix = f"/contract/{self._testMethodName}/"

    def advance(self, seconds: float) -> None:
        """Real time passes by itself."""

    def test_provides_interfaces(self) -> None:
        """The client and its watches provide IKeyValueStore and IWatch."""
        store = self.store
        self.assertTrue(verifyObject(IKeyValueStore, store))
        watch = store.watch_prefix("/verify/", 0, print)
        self.assertTrue(verifyObject(IWatch, watch))
        watch.cancel()

    async def test_compacted_watch(self) -> None:
        """A watch from a compacted revision fails CompactedRevision with etcd's revision."""
        store = self.store
        first = await store.put("/compact/k", b"1")
        last = await store.put("/compact/k", b"2")
        await store.compact(last)
        watch = store.watch_prefix("/compact/", first, EventCollector())
        failure = await self.assertFailure(self.within(watch.done), CompactedRevision)
        self.assertEqual(failure.compact_revision, last)

    async def test_bad_request_names_endpoint(self) -> None:
        """A request etcd rejects fails with etcd's message and the endpoint."""
        store = self.store
        failure = await self.assertFailure(store.get(""), Exception)
        self.assertIn(self.server.url, str(failure))
        self.assertIn("key is not provided", str(failure))


class EtcdOutageTests(EtcdCase):
    """An etcd that is down, killed or frozen: KVUnavailable, quickly, naming the endpoint."""

    async def test_nothing_listening(self) -> None:
        """A refused connection fails KVUnavailable naming the endpoint at once."""
        url = f"http://127.0.0.1:{free_ports(1)[0]}"
        store = self.client(url)
        failure = await self.assertFailure(store.get("/k"), KVUnavailable)
        self.assertIn(url, str(failure))
        watch = store.watch_prefix("/k", 0, EventCollector())
        failure = await self.assertFailure(self.within(watch.done), KVUnavailable)
        self.assertIn(url, str(failure))

    async def test_paused_times_out(self) -> None:
        """A frozen etcd fails calls KVUnavailable after the timeout."""
        store = self.client(timeout=0.3)
        await store.put("/pause/k", b"")
        self.server.pause()
        try:
            failure = await self.assertFailure(store.get("/pause/k"), KVUnavailable)
        finally:
            self.server.resume()
        self.assertIn("no answer within 0.3 s", str(failure))
        self.assertIsNotNone(await store.get("/pause/k"))

    async def test_killed_breaks_watch_then_recovers(self) -> None:
        """Killing etcd breaks watches (KVUnavailable); after a restart the data is back."""
        store = self.client(timeout=1.0)
        revision = await store.put("/kill/k", b"kept")
        watch = store.watch_prefix("/kill/", revision + 1, EventCollector())
        self.server.kill()
        failure = await self.assertFailure(self.within(watch.done), KVUnavailable)
        self.assertIn("watch of '/kill/'", str(failure))
        await self.assertFailure(store.get("/kill/k"), KVUnavailable)
        self.server.restart()
        kv = await store.get("/kill/k")
        assert kv is not None
        self.assertEqual(kv.value, b"kept")
