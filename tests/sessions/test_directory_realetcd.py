"""The etcd session directory against a real etcd: two frontends and a backend in-process
(their RPC is a direct call), real leases, real watches."""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.trial.unittest import TestCase

from pomelo_twisted.errors import RpcError
from pomelo_twisted.kv.etcd import EtcdKeyValueStore
from pomelo_twisted.session import SessionService
from pomelo_twisted.session.bindings import EtcdSessionDirectory
from pomelo_twisted.session.component import SessionsComponent
from pomelo_twisted.session.interfaces import SessionEvent
from pomelo_twisted.testing.etcdserver import EtcdServer, class_etcd

from .fakes import FakeAgent
from .kvfakes import CuttableStore

T = TypeVar("T")
WAIT = 15.0  # a bound on waiting for etcd, never a sleep
TTL = 1.0
GRACE = 2.0  # etcd checks expiry every 500 ms and its minimum lease may exceed 1 s


class Cluster:
    """Frontends f1 and f2 and backend b on one etcd; ``down`` frontends cannot be called."""

    def __init__(self, case: TestCase, url: str, prefix: str) -> None:
        self.down: set[str] = set()
        self.links: dict[str, CuttableStore] = {}
        self.services: dict[str, SessionService] = {}
        self.directories: dict[str, EtcdSessionDirectory] = {}
        for server_id in ("f1", "f2", "b"):
            store = EtcdKeyValueStore(reactor, url)
            case.addCleanup(store.close)
            link = self.links[server_id] = CuttableStore(store)
            local = None
            if server_id != "b":
                local = self.services[server_id] = SessionService(server_id)
            directory = EtcdSessionDirectory(
                link, prefix, server_id, self.rpc, reactor, local=local, ttl=TTL, grace=GRACE
            )
            if local is not None:
                local.directory = directory
                local.cluster_unique = True
            self.directories[server_id] = directory

    def rpc(self, server_id: str, service: str, method: str, args: tuple[Any, ...]) -> Any:
        if server_id in self.down:
            raise RpcError(f"server {server_id!r} is not available (rpc {service}.{method})")
        assert method == "kick_uid", method
        return maybeDeferred(self.directories[server_id].serve_kick, *args)

    def agent(self, server_id: str, sid: int) -> FakeAgent:
        agent = FakeAgent(sid)
        self.services[server_id].create(agent)
        return agent


class RealEtcdDirectoryTests(TestCase):
    """Unique login, an unreachable holder and events on a real etcd."""

    @property
    def server(self) -> EtcdServer:
        return class_etcd(type(self))

    async def start(self) -> Cluster:
        cluster = Cluster(self, self.server.url, f"/sessions/{self._testMethodName}")
        for directory in cluster.directories.values():
            await self.within(directory.start())
            self.addCleanup(directory.stop)
        return cluster

    def within(self, d: Deferred[T]) -> Deferred[T]:
        return d.addTimeout(WAIT, reactor)

    async def test_login_elsewhere_kicks_first(self) -> None:
        """A bind on f2 kicks f1's session with "another login" before it completes, and
        the binding names f2."""
        cluster = await self.start()
        first = cluster.agent("f1", 1)
        await self.within(cluster.services["f1"].bind(1, "alice"))
        second = cluster.agent("f2", 7)
        await self.within(cluster.services["f2"].bind(7, "alice"))
        self.assertEqual((first.kicks, second.kicks), (["another login"], []))
        self.assertEqual(await self.within(cluster.directories["b"].where("alice")), ("f2", 7))
        self.assertEqual(await self.within(cluster.directories["b"].kick_by_uid("alice", "x")), 1)
        self.assertEqual(second.kicks, ["x"])

    async def test_unreachable_holder_frees_within_ttl(self) -> None:
        """With f1 unreachable (no RPC, no etcd), a bind on f2 succeeds once f1's lease
        expires, within the TTL plus the grace."""
        cluster = await self.start()
        cluster.agent("f1", 1)
        await self.within(cluster.services["f1"].bind(1, "bob"))
        cluster.down.add("f1")
        cluster.links["f1"].cut()
        cluster.agent("f2", 2)
        # The directory fails the bind past TTL + grace: success is the bound kept.
        await self.within(cluster.services["f2"].bind(2, "bob"))
        self.assertEqual(await self.within(cluster.directories["b"].where("bob")), ("f2", 2))

    async def test_events_from_the_watch(self) -> None:
        """A backend subscriber hears a bind and a close from the bindings watch."""
        cluster = await self.start()
        events: list[SessionEvent] = []
        seen: Deferred[None] = Deferred()

        def record(event: SessionEvent) -> None:
            events.append(event)
            if len(events) == 2:
                seen.callback(None)

        cluster.directories["b"].subscribe(record, record)
        await self.within(cluster.directories["b"].watcher.ready)
        cluster.agent("f1", 3)
        await self.within(cluster.services["f1"].bind(3, "carol"))
        await self.within(cluster.services["f1"].unbind(3, "carol"))
        await self.within(seen)
        self.assertEqual(
            events,
            [SessionEvent("bind", "carol", "f1", 3), SessionEvent("close", "carol", "f1", 3)],
        )


class Host:
    """What SessionsComponent reads of a frontend, on the real reactor."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.server_id = "f9"
        self.reactor = reactor
        self.session_service: SessionService | None = SessionService("f9")
        self.settings = settings

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def rpc_call(self, server_id: str, service: str, method: str, args: tuple[Any, ...]) -> Any:
        raise RpcError(f"{server_id} is not up")

    def frontend_ids(self) -> list[str]:
        return ["f9"]


class RealEtcdComponentTests(TestCase):
    """app.sessions built from an etcd:// URL setting."""

    async def test_component_from_url(self) -> None:
        """session_etcd etcd://HOST:PORT/PREFIX gives leased bindings under PREFIX; stop
        revokes them."""
        server = class_etcd(type(self))
        url = server.url.replace("http://", "etcd://") + "/sessions-url"
        host = Host(
            {"cluster_unique_login": True, "session_directory": "etcd", "session_etcd": url}
        )
        component = SessionsComponent(host)
        await component.start().addTimeout(WAIT, reactor)
        assert host.session_service is not None
        host.session_service.create(FakeAgent(4))
        await host.session_service.bind(4, "uma").addTimeout(WAIT, reactor)
        self.assertEqual(await component.where("uma").addTimeout(WAIT, reactor), ("f9", 4))
        await component.stop(False).addTimeout(WAIT, reactor)
        store = EtcdKeyValueStore(reactor, server.url)
        self.addCleanup(store.close)
        self.assertIsNone(await store.get("/sessions-url/bindings/uma").addTimeout(WAIT, reactor))
