"""EtcdKeyValueStore against a real etcd: the shared contract, then outages and errors."""

from __future__ import annotations

import socket
from typing import TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.client import URI
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface.verify import verifyObject

from pomelo_twisted.kv import (
    CompactedRevision,
    IKeyValueStore,
    IWatch,
    KVError,
    KVUnavailable,
    parse_etcd_url,
)
from pomelo_twisted.kv.endpoints import EtcdEndpoints
from pomelo_twisted.kv.etcd import EtcdKeyValueStore
from pomelo_twisted.testing.etcdserver import EtcdServer, class_etcd
from pomelo_twisted.testing.gamecopy import free_ports
from pomelo_twisted.testing.kvcontract import EventCollector, KeyValueStoreContract

T = TypeVar("T")


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind a socket to ::1."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


WAIT = 10.0  # a bound on waiting for etcd, never a sleep


class EtcdCase(TestCase):
    """One etcd per class; a fresh client (closed on cleanup) per test."""

    @property
    def server(self) -> EtcdServer:
        return class_etcd(type(self))

    def client(
        self,
        url: str | None = None,
        timeout: float = 5.0,
        prefix_auth: tuple[str, str] | None = None,
    ) -> EtcdKeyValueStore:
        store = EtcdKeyValueStore(
            reactor, url or self.server.url, timeout=timeout, prefix_auth=prefix_auth
        )
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

    def test_endpoints_provide_interface(self) -> None:
        """The client's endpoint factory provides IAgentEndpointFactory; an IP address gets
        a plain TCP endpoint (refused at once), a host name Twisted's HostnameEndpoint."""
        uri = URI.fromBytes(b"http://etcd:2379/v3/kv/range")
        for host, kind in (
            ("127.0.0.1", TCP4ClientEndpoint),
            ("::1", TCP6ClientEndpoint),
            ("etcd.local", HostnameEndpoint),
        ):
            endpoints = EtcdEndpoints(reactor, host, 2379, tls=False, connect_timeout=1)
            self.assertTrue(verifyObject(IAgentEndpointFactory, endpoints))
            self.assertIsInstance(endpoints.endpointForURI(uri), kind)

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
        self.assertIn("refused", str(failure))  # at once, not after the timeout
        watch = store.watch_prefix("/k", 0, EventCollector())
        failure = await self.assertFailure(self.within(watch.done), KVUnavailable)
        self.assertIn(url, str(failure))
        self.assertIn("refused", str(failure))

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


class EtcdRestartTests(EtcdCase):
    """A restart between two calls: the pooled connection etcd closed is not an error."""

    async def test_first_call_after_restart(self) -> None:
        """A repeatable call on a connection closed by the restart is sent again, once."""
        store = self.client()
        await store.put("/restart/k", b"1")
        self.server.kill()
        self.server.restart()
        await store.put("/restart/k", b"2")
        self.server.kill()
        self.server.restart()
        kv = await store.get("/restart/k")
        assert kv is not None
        self.assertEqual(kv.value, b"2")


class EtcdAuthTests(EtcdCase):
    """An etcd with authentication on: a user allowed under /game/ only."""

    def setUp(self) -> None:
        if not self.server.__dict__.get("auth_on"):
            self.server.enable_auth("game", "secret", "/game/")
            self.server.auth_on = True  # type: ignore[attr-defined]

    async def test_prefix_user(self) -> None:
        """With the user's credentials, calls and watches under its prefix work."""
        store = self.client(prefix_auth=("game", "secret"))
        lease = await store.grant(5)
        revision = await store.put("/game/a", b"1", lease)
        collector = EventCollector()
        store.watch_prefix("/game/", revision, collector)
        events = await self.within(collector.wait_for(1))
        self.assertEqual([e.kv.key for e in events], ["/game/a"])
        await store.revoke(lease)

    async def test_outside_prefix(self) -> None:
        """Outside its prefix the user is refused with etcd's "permission denied"."""
        store = self.client(prefix_auth=("game", "secret"))
        failure = await self.assertFailure(store.put("/other", b""), KVError)
        self.assertIn("permission denied", str(failure))

    async def test_bad_credentials(self) -> None:
        """A wrong password, or none at all, fails with etcd's reason and the endpoint."""
        failure = await self.assertFailure(
            self.client(prefix_auth=("game", "wrong")).get("/game/a"), KVError
        )
        self.assertIn("authentication failed", str(failure))
        self.assertIn(self.server.url, str(failure))
        await self.assertFailure(self.client().get("/game/a"), KVError)
        watch = self.client(prefix_auth=("game", "wrong")).watch_prefix("/game/", 0, print)
        failure = await self.assertFailure(self.within(watch.done), KVError)
        self.assertIn("authentication failed", str(failure))

    async def test_token_after_restart(self) -> None:
        """After etcd restarts (its tokens forgotten) the client authenticates again."""
        store = self.client(prefix_auth=("game", "secret"))
        await store.put("/game/r", b"before")
        self.server.kill()
        self.server.restart()
        await store.put("/game/r", b"after")
        kv = await store.get("/game/r")
        assert kv is not None
        self.assertEqual(kv.value, b"after")


class EtcdIPv6Tests(TestCase):
    """An etcd on the IPv6 loopback, reached through an etcd://[::1]:PORT/PREFIX URL."""

    def setUp(self) -> None:
        if not has_ipv6_loopback():
            raise self.skipTest("this machine has no IPv6 loopback (::1)")
        server = class_etcd(type(self), host="::1")
        base, self.prefix = parse_etcd_url(f"etcd://[::1]:{server.client_port}/game/")
        self.store = EtcdKeyValueStore(reactor, base, timeout=5)
        self.addCleanup(self.store.close)

    async def test_put_get_watch(self) -> None:
        """Calls and a watch work over IPv6."""
        revision = await self.store.put(self.prefix + "k", b"v6")
        collector = EventCollector()
        self.store.watch_prefix(self.prefix, revision, collector)
        events = await collector.wait_for(1).addTimeout(WAIT, reactor)
        self.assertEqual(events[0].kv.value, b"v6")
