"""LeaseKeeper against a real etcd that freezes or dies, on the real reactor (no sleeps:
every wait is for a log event or a callback, bounded)."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.logger import ILogObserver, LogEvent, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase
from zope.interface import provider

from pomelo_twisted.kv import EtcdKeyValueStore, LeaseKeeper
from pomelo_twisted.testing.etcdserver import EtcdServer, class_etcd
from pomelo_twisted.testing.kvcontract import EventCollector

WAIT = 15.0
TTL = 3.0


class LogWaiter:
    """Fires a Deferred when a log event with a given format is emitted."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._waiting: list[tuple[str, Deferred[None]]] = []

        @provider(ILogObserver)
        def observe(event: LogEvent) -> None:
            text = formatEvent(event)
            self.seen.append(text)
            for wanted, d in list(self._waiting):
                if wanted in text:
                    self._waiting.remove((wanted, d))
                    d.callback(None)

        self.observer = observe

    def wait_for(self, fragment: str) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._waiting.append((fragment, d))
        return d.addTimeout(WAIT, reactor)


class LeaseKeeperOnEtcdTests(TestCase):
    """ttl 3 s, renewals every 0.5 s, calls time out after 0.3 s."""

    @property
    def server(self) -> EtcdServer:
        return class_etcd(type(self))

    def setUp(self) -> None:
        self.store = EtcdKeyValueStore(reactor, self.server.url, timeout=0.3)
        self.addCleanup(self.store.close)
        self.logs = LogWaiter()
        globalLogPublisher.addObserver(self.logs.observer)
        self.addCleanup(globalLogPublisher.removeObserver, self.logs.observer)
        self.leases: list[int] = []
        self.lost: list[Exception] = []
        self.granted: Deferred[None] = Deferred()
        self.given_up: Deferred[None] = Deferred()
        self.keeper = LeaseKeeper(
            self.store,
            TTL,
            reactor,
            interval=0.5,
            on_lease=self.on_lease,
            on_lost=self.on_lost,
            name="test-server",
        )

    def on_lease(self, lease: int) -> None:
        self.leases.append(lease)
        granted, self.granted = self.granted, Deferred()
        granted.callback(None)

    def on_lost(self, reason: Exception) -> None:
        self.lost.append(reason)
        self.given_up.callback(None)

    async def test_frozen_etcd_keeps_the_lease(self) -> None:
        """etcd frozen for less than the ttl: the same lease afterwards, no callbacks."""
        await self.keeper.start()
        self.addCleanup(self.keeper.stop)
        self.assertEqual(len(self.leases), 1)
        unreachable = self.logs.wait_for("etcd unreachable")
        back = self.logs.wait_for("etcd reachable again")
        self.server.pause()
        try:
            await unreachable
        finally:
            self.server.resume()
        await back
        self.assertEqual((len(self.leases), self.lost), (1, []))
        self.assertEqual(self.keeper.lease, self.leases[0])
        self.assertGreater(await self.store.keep_alive(self.leases[0]), 0)

    async def test_dead_etcd_replaces_the_lease(self) -> None:
        """etcd down for longer than the ttl: on_lost, then a new lease once it is back,
        and the old lease (restored by etcd's restart) is revoked with its keys."""
        await self.keeper.start()
        self.addCleanup(self.keeper.stop)
        old = self.leases[0]
        await self.store.put("/keeper/old", b"", old)
        self.server.kill()
        try:
            await self.given_up.addTimeout(WAIT, reactor)
        finally:
            self.server.restart()
        self.assertIn("presumed expired", str(self.lost[0]))
        _, revision = await self.store.get_prefix("/keeper/")
        gone = EventCollector()
        self.store.watch_prefix("/keeper/", revision + 1, gone)
        await self.granted.addTimeout(WAIT, reactor)
        self.assertEqual(len(self.leases), 2)
        await gone.wait_for(1).addTimeout(WAIT, reactor)
        self.assertEqual([(e.kind, e.kv.key) for e in gone.events], [("delete", "/keeper/old")])
