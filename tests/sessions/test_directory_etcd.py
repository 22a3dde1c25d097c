"""The etcd session directory on the in-memory store: the contract, leases, outages."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.kv import IKeyValueStore, MemoryKeyValueStore
from pomelo_twisted.session.bindings import EtcdSessionDirectory
from pomelo_twisted.session.bindingvalue import decode_binding, encode_binding
from pomelo_twisted.session.bindwatch import BindingWatcher
from pomelo_twisted.session.component import SessionsComponent
from pomelo_twisted.session.interfaces import IBindingClaims, ISessionDirectory, SessionEvent
from pomelo_twisted.testing import GameHarness

from ..app.helpers import EXAMPLE_GAME, start_game
from .contract import BACKEND, ENTRY, F1, F2, DirectoryContract, result_of
from .fakes import FakeRpc
from .kvfakes import CuttableStore

TTL = 10.0
KEY = "/pomelo/bindings/"


class EtcdDirectoryContractTests(DirectoryContract, SynchronousTestCase):
    """The contract over leased bindings in a MemoryKeyValueStore."""

    def start(self, **settings: Any) -> GameHarness:
        reactor = MemoryReactorClock()
        self.store = MemoryKeyValueStore(reactor)
        self.links: dict[str, CuttableStore] = {}

        def link(server: ServerInfo) -> dict[str, Any]:
            self.links[server.id] = CuttableStore(self.store)
            return {"kv_store": self.links[server.id]}

        options = {"session_directory": "etcd", "session_binding_ttl": TTL, **settings}
        return start_game(self, EXAMPLE_GAME, settings=options, reactor=reactor, overrides=link)

    def advance(self, game: GameHarness, seconds: float) -> None:
        """Advance in steps of 1 s (the clients' heartbeats keep their connections)."""
        for _ in range(int(seconds)):
            game.advance(1.0)

    def binding(self, uid: str) -> tuple[str, int] | None:
        kv = self.successResultOf(self.store.get(KEY + uid))
        return None if kv is None else decode_binding(kv.value)

    def test_directories_are_etcd(self) -> None:
        """With session_directory 'etcd', or 'auto' and a store, and unique login, every
        server uses bindings."""
        for kind in ("etcd", "auto"):
            game = self.start(session_directory=kind)
            for app in game.service.apps:
                self.assertIsInstance(app.sessions.directory, EtcdSessionDirectory)

    def test_binding_key_follows_the_session(self) -> None:
        """A bind writes {prefix}/bindings/{uid} on the frontend's lease; a close deletes it."""
        game = self.start()
        conn = self.login(game, F1, "kim")
        self.assertEqual(self.binding("kim"), (F1, conn.agent.sid))
        kv = self.successResultOf(self.store.get(KEY + "kim"))
        directory = game.app(F1).sessions.directory
        assert isinstance(directory, EtcdSessionDirectory) and kv is not None
        self.assertEqual(kv.lease, directory.lease)
        conn.disconnect()
        game.settle()
        self.assertIsNone(self.binding("kim"))

    def test_unreachable_holder_waits_for_its_lease(self) -> None:
        """When the holder cannot be reached, the bind answers exactly when the holder's
        lease expires (its key goes), never later than the TTL."""
        ttl = 6.0  # the wait stays within the client's 10 s request timeout
        game = self.start(session_binding_ttl=ttl)
        first = self.login(game, F1, "lena")
        game.advance(ttl / 2)  # the lease was kept alive in between
        self.links[F1].cut()
        game.app(F1).rpc_transport.unregister(F1)
        gone: list[float] = []
        self.store.watch_prefix(
            KEY, 0, lambda e: gone.append(game.clock.seconds()) if e.kind == "delete" else None
        )
        asked = game.clock.seconds()
        second = game.connect(F2)
        answers: list[tuple[float, Any]] = []
        second.client.request(ENTRY, {"uid": "lena"}).addCallback(
            lambda body: answers.append((game.clock.seconds(), body))
        )
        while not answers and game.clock.seconds() < asked + 2 * ttl:
            game.advance(0.25)
        self.assertEqual(len(gone), 1)
        self.assertEqual(answers, [(gone[0], {"code": 200, "uid": "lena"})])
        self.assertLessEqual(gone[0] - asked, ttl)
        self.assertEqual(self.binding("lena"), (F2, second.agent.sid))
        self.assertEqual(first.kicks, [])

    def test_holder_cut_from_the_store_kicks_then_its_lease_decides(self) -> None:
        """A holder reached by RPC but cut from the store kicks its session yet cannot
        delete the key: the bind answers when its lease expires, within the TTL."""
        ttl = 6.0
        game = self.start(session_binding_ttl=ttl)
        first = self.login(game, F1, "rita")
        self.links[F1].cut()
        asked = game.clock.seconds()
        second = game.connect(F2)
        answers: list[float] = []
        second.client.request(ENTRY, {"uid": "rita"}).addCallback(
            lambda body: answers.append(game.clock.seconds()) if body["code"] == 200 else None
        )
        game.settle()
        self.assertEqual((first.kicks, answers), (["another login"], []))
        while not answers and game.clock.seconds() < asked + 2 * ttl:
            game.advance(0.25)
        self.assertEqual(len(answers), 1)
        self.assertLessEqual(answers[0] - asked, ttl)
        self.assertEqual(self.binding("rita"), (F2, second.agent.sid))

    def test_lost_lease_recreates_the_keys(self) -> None:
        """When a frontend's lease is lost, a new one is granted and its bound uids are
        written again on it."""
        game = self.start()
        conn = self.login(game, F1, "mia")
        directory = game.app(F1).sessions.directory
        assert isinstance(directory, EtcdSessionDirectory)
        old = directory.lease
        self.successResultOf(self.store.revoke(old))
        self.assertIsNone(self.binding("mia"))
        self.advance(game, TTL)
        self.assertNotEqual(directory.lease, old)
        kv = self.successResultOf(self.store.get(KEY + "mia"))
        assert kv is not None
        self.assertEqual(
            (decode_binding(kv.value), kv.lease), ((F1, conn.agent.sid), directory.lease)
        )
        self.assertEqual(conn.kicks, [])

    def test_lost_lease_and_login_elsewhere_kicks_here(self) -> None:
        """A uid that logged in elsewhere while this frontend's lease was lost is kicked
        here with "another login" when the lease comes back."""
        game = self.start()
        first = self.login(game, F1, "nina")
        directory = game.app(F1).sessions.directory
        assert isinstance(directory, EtcdSessionDirectory)
        self.successResultOf(self.store.revoke(directory.lease))
        second = self.login(game, F2, "nina")
        self.advance(game, TTL)
        self.assertEqual((first.kicks, second.kicks), (["another login"], []))
        self.assertEqual(self.binding("nina"), (F2, second.agent.sid))

    def test_store_down_fails_the_bind(self) -> None:
        """While the store cannot be reached a bind fails with 500 naming the cause,
        and the session stays unbound."""
        game = self.start()
        self.store.fail()
        conn = game.connect(F1)
        body = conn.call(ENTRY, {"uid": "olga"})
        self.assertEqual(body["code"], 500)
        self.assertIn("olga", body["msg"])
        self.store.recover()
        self.assertEqual(game.app(F1).session_service.uids(), [])

    def test_store_down_at_start(self) -> None:
        """A frontend started while the store is down serves; a bind fails with 500
        until its first lease is granted, within a third of the TTL of recovery."""
        reactor = MemoryReactorClock()
        self.store = MemoryKeyValueStore(reactor)
        self.store.fail()
        options = {"session_directory": "etcd", "kv_store": self.store}
        game = start_game(self, EXAMPLE_GAME, settings=options, reactor=reactor)
        conn = game.connect(F1)
        body = conn.call(ENTRY, {"uid": "quinn"})
        self.assertEqual(body["code"], 500)
        self.assertIn("no bindings lease", body["msg"])
        self.store.recover()
        self.advance(game, TTL / 3 + 1)
        self.assertEqual(conn.call(ENTRY, {"uid": "quinn"}), {"code": 200, "uid": "quinn"})

    def test_stop_revokes_the_bindings(self) -> None:
        """Stopping a frontend revokes its lease: its uids are free at once."""
        game = self.start()
        self.login(game, F1, "pia")
        result_of(game, game.app(F1).stopService())
        self.assertIsNone(self.binding("pia"))
        self.assertIsNone(result_of(game, game.app(BACKEND).sessions.where("pia")))


class EtcdDirectoryUnitTests(SynchronousTestCase):
    """EtcdSessionDirectory and the component alone."""

    def test_verify(self) -> None:
        """The directory provides ISessionDirectory and IBindingClaims; the component
        ISessionDirectory; the cuttable link IKeyValueStore."""
        clock = Clock()
        store = MemoryKeyValueStore(clock)
        directory = EtcdSessionDirectory(store, "/p", "b", FakeRpc(), clock)
        verifyObject(ISessionDirectory, directory)
        verifyObject(IBindingClaims, directory)
        verifyObject(IKeyValueStore, CuttableStore(store))

    def test_component_verify(self) -> None:
        """app.sessions provides ISessionDirectory (and refuses use before start)."""
        game = start_game(self, EXAMPLE_GAME)
        app = game.app(BACKEND)
        verifyObject(ISessionDirectory, app.sessions)
        fresh = SessionsComponent(app)
        self.assertRaises(RuntimeError, fresh.where, "u")

    def test_bad_limits(self) -> None:
        """A ttl, grace or attempts out of range is refused with the values named."""
        clock = Clock()
        store = MemoryKeyValueStore(clock)
        error = self.assertRaises(
            ValueError, EtcdSessionDirectory, store, "/p", "b", FakeRpc(), clock, ttl=0
        )
        self.assertIn("ttl", str(error))

    def test_etcd_needs_a_store(self) -> None:
        """session_directory 'etcd' without a store or etcd URL fails the start clearly."""
        game = start_game(self, EXAMPLE_GAME)
        app = game.app(BACKEND)
        fresh = SessionsComponent(app)
        app.set("session_directory", "etcd")
        self.assertRaises(ConfigError, fresh.start)
        app.set("session_etcd", "etcd://host:99999/p")
        error = self.assertRaises(ConfigError, fresh.start)
        self.assertIn("bad port", str(error))


class BindingWatcherTests(SynchronousTestCase):
    """Events from the bindings watch across a store outage."""

    def test_outage_reports_what_changed(self) -> None:
        """After the watch breaks, the re-read reports the closes and binds missed."""
        clock = Clock()
        store = MemoryKeyValueStore(clock)
        self.successResultOf(store.put(KEY + "a", encode_binding("f1", 1)))
        events: list[SessionEvent] = []
        watcher = BindingWatcher(store, KEY, clock, events.append, retry_delay=2.0)
        watcher.start()
        self.successResultOf(watcher.ready)
        self.assertEqual(events, [])  # what the first read finds is no event
        store.fail()
        store.recover()
        self.successResultOf(store.delete(KEY + "a"))
        self.successResultOf(store.put(KEY + "b", encode_binding("f2", 5)))
        self.assertEqual(events, [])
        clock.advance(2.0)
        self.assertEqual(
            events, [SessionEvent("close", "a", "f1", 1), SessionEvent("bind", "b", "f2", 5)]
        )
        self.successResultOf(store.put(KEY + "b", encode_binding("f1", 6)))
        self.assertEqual(
            events[2:], [SessionEvent("close", "b", "f2", 5), SessionEvent("bind", "b", "f1", 6)]
        )
        watcher.stop()
