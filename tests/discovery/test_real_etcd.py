"""Servers on distinct loopback addresses finding each other through a real etcd.

Three Applications on the real reactor, real Perspective Broker RPC, on 127.0.0.1,
127.0.0.2 and 127.0.0.3 (and a fourth on ::1 when IPv6 loopback works), each with its own
etcd client, register under one prefix, connect to each other and call each other. Then one
"dies" (its client closes: no more keep-alives) and leaves every peer's view once its lease
expires; another stops cleanly and leaves at once. Waits are bounded polls, never sleeps.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.app.application import Application
from pomelo_twisted.app.build import build_application
from pomelo_twisted.discovery.component import DiscoveryComponent
from pomelo_twisted.discovery.etcd import EtcdDiscovery
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.kv.errors import KVUnavailable
from pomelo_twisted.kv.etcd import EtcdKeyValueStore
from pomelo_twisted.kv.interfaces import IKeyValueStore, IWatch, KeyValue, WatchEvent
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.testing.etcdserver import EtcdServer, class_etcd
from pomelo_twisted.testing.gamecopy import free_ports

SECRET = b"real-etcd-cluster-secret"
TTL = 2.0
WAIT = 15.0


def ipv6_loopback() -> bool:
    """Whether a socket can bind ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def loopback_free(host: str) -> bool:
    """Whether ``host`` (e.g. 127.0.0.2) can be bound on this machine."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


@implementer(IKeyValueStore)
class CutStore:
    """An IKeyValueStore passing calls to ``store`` until :meth:`cut`; then each call
    fails KVUnavailable (the process "died": it neither renews nor revokes)."""

    def __init__(self, store: IKeyValueStore) -> None:
        self.store = store
        self.is_cut = False

    def cut(self) -> None:
        """Every later call fails."""
        self.is_cut = True

    def _pass(self, name: str, *args: Any) -> Deferred[Any]:
        if self.is_cut:
            return fail(KVUnavailable("cut off"))
        result: Deferred[Any] = getattr(self.store, name)(*args)
        return result

    def grant(self, ttl: float) -> Deferred[int]:
        return self._pass("grant", ttl)

    def keep_alive(self, lease: int) -> Deferred[float]:
        return self._pass("keep_alive", lease)

    def revoke(self, lease: int) -> Deferred[None]:
        return self._pass("revoke", lease)

    def get(self, key: str) -> Deferred[KeyValue | None]:
        return self._pass("get", key)

    def get_prefix(self, prefix: str) -> Deferred[tuple[list[KeyValue], int]]:
        return self._pass("get_prefix", prefix)

    def put(self, key: str, value: bytes, lease: int = 0) -> Deferred[int]:
        return self._pass("put", key, value, lease)

    def create(self, key: str, value: bytes, lease: int = 0) -> Deferred[bool]:
        return self._pass("create", key, value, lease)

    def delete(self, key: str) -> Deferred[bool]:
        return self._pass("delete", key)

    def delete_if(self, key: str, mod_revision: int) -> Deferred[bool]:
        return self._pass("delete_if", key, mod_revision)

    def watch_prefix(
        self, prefix: str, start_revision: int, on_event: Callable[[WatchEvent], None]
    ) -> IWatch:
        return self.store.watch_prefix(prefix, start_revision, on_event)


class Who:
    """A remote answering which server it runs on."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    def who(self) -> str:
        """This server's id."""
        return self.server_id


class RealEtcdDiscoveryTests(TestCase):
    """Discovery through a real etcd, between real PB servers."""

    timeout = 60

    @property
    def etcd(self) -> EtcdServer:
        return class_etcd(type(self))

    def setUp(self) -> None:
        self.etcd  # noqa: B018 (starts it, or skips without an etcd binary)
        self.prefix = f"/it/{self._testMethodName}"
        self.apps: dict[str, Application] = {}
        self.stores: dict[str, EtcdKeyValueStore] = {}
        self.cuts: dict[str, CutStore] = {}

    def start(self, server_id: str, host: str) -> Application:
        port = free_ports(1) if host != "::1" else [_free_v6_port()]
        info = ServerInfo(id=server_id, type="chat", host=host, port=port[0])
        app = build_application(
            info,
            reactor=reactor,  # type: ignore[arg-type]
            rpc=PbRpcTransport(reactor, server_id, SECRET),  # type: ignore[arg-type]
            servers={"chat": [info]},
            config=None,
        )
        app.register_remote(Who(server_id), "whoRemote")
        store = EtcdKeyValueStore(reactor, self.etcd.url, timeout=2.0)  # type: ignore[arg-type]
        self.cuts[server_id] = cut = CutStore(store)
        discovery = EtcdDiscovery(app, cut, self.prefix, ttl=TTL, retry_delay=0.2)
        app.load(DiscoveryComponent(app, discovery))
        app.startService()
        self.apps[server_id], self.stores[server_id] = app, store
        self.addCleanup(self._stop, server_id)
        return app

    async def _stop(self, server_id: str) -> None:
        app = self.apps[server_id]
        if app.running:
            await app.stopService()
        await self.stores[server_id].close()

    async def until(self, what: str, done: Callable[[], bool]) -> None:
        """Poll ``done`` every 50 ms until true; fail after WAIT seconds."""
        deadline = reactor.seconds() + WAIT
        while not done():
            if reactor.seconds() > deadline:
                self.fail(f"not within {WAIT}s: {what}")
            await deferLater(reactor, 0.05, lambda: None)

    def knows(self, viewer: str, server_id: str) -> bool:
        return any(info.id == server_id for info in self.apps[viewer].all_servers())

    def hosts(self) -> list[str]:
        hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        if not all(loopback_free(host) for host in hosts[1:]):
            raise self.skipTest("127.0.0.2/127.0.0.3 cannot be bound here")
        return hosts

    async def test_servers_find_each_other_and_call(self) -> None:
        """Servers on three loopback hosts (and ::1) see each other, connect and call."""
        hosts = self.hosts()
        ids = [f"chat-{n}" for n in range(1, len(hosts) + 1)]
        if ipv6_loopback():
            hosts.append("::1")
            ids.append("chat-v6")
        for server_id, host in zip(ids, hosts, strict=True):
            self.start(server_id, host)
        for viewer in ids:
            others = set(ids) - {viewer}
            await self.until(
                f"{viewer} sees every server and is connected to it",
                lambda viewer=viewer, others=others: (
                    all(self.knows(viewer, other) for other in others)
                    and {
                        peer
                        for peer, state in self.apps[viewer].rpc_transport.peers().items()
                        if state == "up"
                    }
                    >= others
                ),
            )
        for caller in ids:
            for callee in ids:
                if caller != callee:
                    answer = await self.apps[caller].rpc_call(callee, "whoRemote", "who", ())
                    self.assertEqual(answer, callee)

    async def test_dead_server_leaves_within_the_ttl(self) -> None:
        """A server that stops renewing its lease (its client is gone, as after kill -9)
        leaves the others' view once the lease expires; a clean stop leaves at once."""
        hosts = self.hosts()
        for n, host in enumerate(hosts, 1):
            self.start(f"chat-{n}", host)
        await self.until(
            "chat-1 sees all", lambda: all(self.knows("chat-1", f"chat-{n}") for n in (2, 3))
        )
        killed_at = reactor.seconds()
        self.cuts["chat-3"].cut()  # no keep-alive, no revoke: as after kill -9
        await self.apps["chat-3"].stopService()
        await self.until("chat-3 gone from chat-1", lambda: not self.knows("chat-1", "chat-3"))
        await self.until("chat-3 gone from chat-2", lambda: not self.knows("chat-2", "chat-3"))
        self.assertLess(reactor.seconds() - killed_at, WAIT)
        self.assertTrue(verifyObject(IKeyValueStore, self.cuts["chat-3"]))
        await self.apps["chat-2"].stopService()
        await self.until("chat-2 gone from chat-1", lambda: not self.knows("chat-1", "chat-2"))


def _free_v6_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::1", 0))
        return int(probe.getsockname()[1])
