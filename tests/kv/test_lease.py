"""LeaseKeeper on the in-memory store: renewals, lost leases, outages short and long."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.kv import KVError, KVUnavailable, LeaseNotFound, MemoryKeyValueStore
from pomelo_twisted.kv.lease import LeaseKeeper

TTL = 9.0


class RestoringStore(MemoryKeyValueStore):
    """Leases outlive the ttl they were granted with three times over, as when etcd
    restarts during an outage and restores its leases with a fresh ttl."""

    def grant(self, ttl: float) -> Deferred[int]:
        return super().grant(ttl * 3)


class SlowStore(MemoryKeyValueStore):
    """keep_alive answers only when released, while ``hold`` is set."""

    hold = False

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.held: list[tuple[Deferred[float], int]] = []

    def keep_alive(self, lease: int) -> Deferred[float]:
        if not self.hold:
            return super().keep_alive(lease)
        d: Deferred[float] = Deferred()
        self.held.append((d, lease))
        return d

    def release(self) -> None:
        held, self.held = self.held, []
        for d, lease in held:
            super().keep_alive(lease).chainDeferred(d)


class RefusingStore(MemoryKeyValueStore):
    """Refuses every grant with a KVError that is not an outage."""

    def grant(self, ttl: float) -> Deferred[int]:
        return fail(KVError("memory://: permission denied (test)"))


class LeaseKeeperTests(SynchronousTestCase):
    """The keeper against the deterministic fake (ttl 9 s, renewal every 3 s)."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.store = MemoryKeyValueStore(self.clock)
        self.leases: list[int] = []
        self.lost: list[Exception] = []
        self.keeper = LeaseKeeper(
            self.store,
            TTL,
            self.clock,
            on_lease=self.on_lease,
            on_lost=self.lost.append,
            name="server-1",
        )

    def on_lease(self, lease: int) -> None:
        """What an owner does: put its key under the new lease."""
        self.leases.append(lease)
        self.successResultOf(self.store.put("/me", b"here", lease))

    def present(self) -> bool:
        """Whether the owner's key exists."""
        return self.successResultOf(self.store.get("/me")) is not None

    def test_grants_and_renews(self) -> None:
        """start grants a lease (on_lease once) and renewals keep it alive for good."""
        self.successResultOf(self.keeper.start())
        self.assertEqual(len(self.leases), 1)
        self.clock.pump([1.0] * 100)
        self.assertEqual(self.store.leases(), self.leases)
        self.assertTrue(self.present())
        self.assertEqual(self.lost, [])

    def test_lost_lease_is_replaced(self) -> None:
        """A lease that vanishes (LeaseNotFound) calls on_lost, then on_lease with a new one."""
        self.successResultOf(self.keeper.start())
        self.successResultOf(self.store.revoke(self.leases[0]))
        self.assertFalse(self.present())
        with capturedLogs() as events:
            self.clock.advance(3)  # the renewal finds the lease gone
            self.clock.advance(0)  # and a new one is granted at once
        self.assertEqual(len(self.lost), 1)
        self.assertIsInstance(self.lost[0], LeaseNotFound)
        self.assertEqual(len(self.leases), 2)
        self.assertNotEqual(self.leases[0], self.leases[1])
        self.assertEqual(self.keeper.lease, self.leases[1])
        self.assertTrue(self.present())
        self.assertFalse([e for e in events if e.get("log_failure")])

    def test_short_outage_keeps_the_lease(self) -> None:
        """An outage shorter than the ttl: same lease, no callbacks, one log line each way."""
        self.successResultOf(self.keeper.start())
        self.clock.advance(1)
        with capturedLogs() as events:
            self.store.fail()
            self.clock.pump([1.0] * 4)  # the renewal at 3 s fails, the one at 6 s will not
            self.store.recover()
            self.clock.pump([1.0] * 30)
        self.assertEqual(len(self.leases), 1)
        self.assertEqual(self.lost, [])
        self.assertEqual(self.store.leases(), self.leases)
        self.assertTrue(self.present())
        lines = [(e["log_level"], e["log_format"]) for e in events]
        self.assertEqual(
            lines,
            [
                (LogLevel.warn, "{name}: etcd unreachable: {reason}"),
                (LogLevel.info, "{name}: etcd reachable again"),
            ],
        )
        self.assertTrue(all(not e.get("log_failure") for e in events))

    def test_long_outage_replaces_the_lease(self) -> None:
        """An outage longer than the ttl: on_lost during it, a new lease after it."""
        self.successResultOf(self.keeper.start())
        self.store.fail()
        self.clock.pump([1.0] * 8)
        self.assertEqual(self.lost, [])
        self.clock.pump([1.0] * 4)
        self.assertEqual(len(self.lost), 1)
        self.assertIsInstance(self.lost[0], KVUnavailable)
        self.assertIn("presumed expired: etcd unreachable for", str(self.lost[0]))
        self.assertIsNone(self.keeper.lease)
        self.store.recover()
        self.assertFalse(self.present())  # the store expired it meanwhile
        self.clock.pump([1.0] * 3)
        self.assertEqual(len(self.leases), 2)
        self.assertTrue(self.present())
        self.assertEqual(len(self.lost), 1)

    def test_presumed_expired_lease_is_revoked(self) -> None:
        """A lease given up during an outage but still alive after it is revoked once replaced."""
        store = RestoringStore(self.clock)
        leases: list[int] = []
        keeper = LeaseKeeper(store, TTL, self.clock, on_lease=leases.append)
        self.successResultOf(keeper.start())
        self.successResultOf(store.put("/old", b"", leases[0]))
        store.fail()
        self.clock.pump([1.0] * 12)  # the keeper gives the lease up; the store keeps it
        self.assertIsNone(keeper.lease)
        store.recover()
        self.assertEqual(store.leases(), leases)
        self.clock.pump([1.0] * 3)
        self.assertEqual(len(leases), 2)
        self.assertEqual(store.leases(), [leases[1]])
        self.assertIsNone(self.successResultOf(store.get("/old")))

    def test_stale_lease_revoked_after_the_owner_put_its_keys(self) -> None:
        """When on_lease returns the Deferred of the owner's puts, the lease the store
        kept through the outage is revoked only once they are done: the owner's key
        never disappears in between."""
        store = RestoringStore(self.clock)
        leases: list[int] = []
        puts: list[Deferred[None]] = []

        def on_lease(lease: int) -> Deferred[None]:
            leases.append(lease)
            if len(leases) == 1:
                self.successResultOf(store.put("/me", b"first", lease))
                return succeed(None)
            puts.append(Deferred())
            return puts[-1]

        keeper = LeaseKeeper(store, TTL, self.clock, on_lease=on_lease)
        self.successResultOf(keeper.start())
        store.fail()
        self.clock.pump([1.0] * 12)
        store.recover()
        self.clock.pump([1.0] * 3)
        self.assertEqual(len(leases), 2)
        self.assertEqual(store.leases(), leases)  # the old one kept: the owner is not done
        self.assertIsNotNone(self.successResultOf(store.get("/me")))
        self.successResultOf(store.put("/me", b"second", leases[1]))
        puts[0].callback(None)
        self.assertEqual(store.leases(), [leases[1]])
        kv = self.successResultOf(store.get("/me"))
        assert kv is not None
        self.assertEqual((kv.value, kv.lease), (b"second", leases[1]))

    def test_unreachable_at_start(self) -> None:
        """start fires even when the store is down; the first lease comes once it is back."""
        self.store.fail()
        self.successResultOf(self.keeper.start())
        self.assertEqual(self.leases, [])
        self.clock.pump([1.0] * 30)
        self.store.recover()
        self.clock.pump([1.0] * 3)
        self.assertEqual(len(self.leases), 1)
        self.assertEqual(self.lost, [])

    def test_stop_revokes(self) -> None:
        """stop revokes the lease (its keys go at once) and renews no more."""
        self.successResultOf(self.keeper.start())
        self.successResultOf(self.keeper.stop())
        self.assertFalse(self.present())
        self.assertEqual(self.store.leases(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.lost, [])

    def test_stop_while_unreachable(self) -> None:
        """stop during an outage still fires; the lease is left to expire."""
        self.successResultOf(self.keeper.start())
        self.store.fail()
        with capturedLogs() as events:
            self.successResultOf(self.keeper.stop())
        self.assertEqual([e["log_level"] for e in events], [LogLevel.info])
        self.store.recover()
        self.clock.advance(TTL)
        self.assertFalse(self.present())

    def test_restart_with_a_call_in_flight(self) -> None:
        """stop() then start() while a renewal is unanswered: one renewal loop, not two."""
        store = SlowStore(self.clock)
        keeper = LeaseKeeper(store, TTL, self.clock)
        store.hold = False
        self.successResultOf(keeper.start())
        store.hold = True
        self.clock.advance(3)  # a renewal is now in flight
        keeper.stop()
        store.hold = False
        self.successResultOf(keeper.start())
        store.release()  # the old renewal answers late
        self.clock.advance(0)
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)  # the lease timer + one renewal
        self.assertEqual(store.leases(), [keeper.lease])

    def test_other_errors_logged_once(self) -> None:
        """A store error that is not an outage is logged once, not at every attempt."""
        store = RefusingStore(self.clock)
        keeper = LeaseKeeper(store, TTL, self.clock, name="server-1")
        with capturedLogs() as events:
            self.successResultOf(keeper.start())
            self.clock.pump([1.0] * 30)
        self.assertEqual([e["reason"] for e in events], ["memory://: permission denied (test)"])
        keeper.stop()

    def test_failing_callback_is_logged(self) -> None:
        """A failing on_lease is logged and the keeper goes on renewing."""
        keeper = LeaseKeeper(self.store, TTL, self.clock, on_lease=lambda lease: 1 / 0)
        self.successResultOf(keeper.start())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.clock.pump([1.0] * 30)
        self.assertEqual(self.store.leases(), [keeper.lease])

    def test_bad_settings(self) -> None:
        """A non-positive ttl or an interval not below the ttl is refused, naming the owner."""
        with self.assertRaisesRegex(ValueError, "server-1: the lease ttl"):
            LeaseKeeper(self.store, 0, self.clock, name="server-1")
        with self.assertRaisesRegex(ValueError, "interval"):
            LeaseKeeper(self.store, 3, self.clock, interval=3)
