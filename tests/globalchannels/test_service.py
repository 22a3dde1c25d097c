"""GlobalChannelService on FakeRedis: grouping by frontend, counts, frontends leaving, outages."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import RpcError
from pomelo_twisted.globalchannels import FakeRedis, GlobalChannelService, RedisUnavailable
from pomelo_twisted.interfaces import IComponent
from pomelo_twisted.rpc.logagg import RepeatedWarning
from tests.sessions.fakes import FakeRpc

PREFIX = "test"


class ServiceCase(SynchronousTestCase):
    """A service on a FakeRedis and a recording rpc, its warnings captured."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.redis = FakeRedis(self.clock)
        self.rpc = FakeRpc()
        self.events: list[dict[str, Any]] = []
        log = Logger(observer=self.events.append)
        self.service = GlobalChannelService(
            self.redis,
            self.rpc,
            PREFIX,
            warnings=RepeatedWarning(log, interval=10.0, seconds=self.clock.seconds),
        )

    def join(self, name: str, *members: tuple[str, str]) -> None:
        for uid, frontend in members:
            self.successResultOf(self.service.add(name, uid, frontend))

    def warnings(self) -> list[str]:
        return [formatEvent(event) for event in self.events if event["log_level"] == LogLevel.warn]


class MembershipTests(ServiceCase):
    """add, leave, members, members_by_frontend, destroy."""

    def test_is_a_component(self) -> None:
        """The service is an IComponent named global_channels."""
        self.assertTrue(verifyObject(IComponent, self.service))
        self.assertEqual(self.service.name, "global_channels")

    def test_add_and_read(self) -> None:
        """Members are read back, and grouped by frontend."""
        self.assertIs(self.successResultOf(self.service.add("room", "a", "c1")), True)
        self.join("room", ("b", "c2"), ("c", "c1"))
        self.assertEqual(
            sorted(self.successResultOf(self.service.members("room"))), ["a", "b", "c"]
        )
        self.assertEqual(
            self.successResultOf(self.service.members_by_frontend("room")),
            {"c1": ["a", "c"], "c2": ["b"]},
        )

    def test_join_again_from_another_frontend_moves(self) -> None:
        """A uid that joins again from another frontend is there once, on the new one."""
        self.join("room", ("a", "c1"))
        self.assertIs(self.successResultOf(self.service.add("room", "a", "c2")), False)
        self.assertEqual(
            self.successResultOf(self.service.members_by_frontend("room")), {"c2": ["a"]}
        )

    def test_stale_leave_keeps_the_newer_login(self) -> None:
        """A leave from the frontend a uid moved away from does not remove it."""
        self.join("room", ("a", "c1"), ("a", "c2"))
        self.assertIs(self.successResultOf(self.service.leave("room", "a", "c1")), False)
        self.assertEqual(self.successResultOf(self.service.members("room")), ["a"])
        self.assertIs(self.successResultOf(self.service.leave("room", "a", "c2")), True)
        self.assertEqual(self.successResultOf(self.service.members("room")), [])
        # Only the uid indexes of the frontends stay (until leave_all or remove_frontend).
        self.assertEqual(self.redis.keys(), ["test:gcfe:c1", "test:gcfe:c2"])

    def test_destroy(self) -> None:
        """destroy removes the channel and its entries in the frontend indexes."""
        self.join("room", ("a", "c1"), ("b", "c2"))
        self.join("other", ("a", "c1"))
        self.assertIs(self.successResultOf(self.service.destroy("room")), True)
        self.assertIs(self.successResultOf(self.service.destroy("room")), False)
        self.assertEqual(self.successResultOf(self.service.members("room")), [])
        self.assertEqual(
            self.redis.keys(),
            ["test:gc:other", "test:gcfe:c1", "test:gcfe:c2", "test:gcu:2:c1:a"],
        )
        self.assertEqual(self.successResultOf(self.redis.smembers("test:gcu:2:c1:a")), {"other"})

    def test_leave_all(self) -> None:
        """leave_all removes a closed session's uid from every channel it joined there."""
        self.join("r1", ("a", "c1"), ("b", "c1"))
        self.join("r2", ("a", "c1"))
        self.join("r3", ("a", "c2"))  # joined through another frontend: stays
        self.assertEqual(self.successResultOf(self.service.leave_all("a", "c1")), 2)
        self.assertEqual(self.successResultOf(self.service.members("r1")), ["b"])
        self.assertEqual(self.successResultOf(self.service.members("r2")), [])
        self.assertEqual(self.successResultOf(self.service.members("r3")), ["a"])
        self.assertEqual(self.successResultOf(self.redis.smembers("test:gcfe:c1")), {"b"})
        self.assertEqual(self.successResultOf(self.service.leave_all("a", "c1")), 0)

    def test_keys_keep_frontend_and_uid_apart(self) -> None:
        """Frontend ids and uids with ':' never share an index key."""
        self.assertNotEqual(
            self.service.keys.joined("a:b", "c"), self.service.keys.joined("a", "b:c")
        )

    def test_bad_names_refused(self) -> None:
        """Empty names and names with NUL are refused, naming the value."""
        self.assertRaises(ValueError, self.service.add, "", "a", "c1")
        self.assertRaises(ValueError, self.service.add, "r\x00", "a", "c1")
        self.assertRaises(ValueError, self.service.add, "room", "a", "")


class PushTests(ServiceCase):
    """One push RPC per frontend, each with its uids."""

    def test_one_rpc_per_frontend(self) -> None:
        """Members on two frontends: two push RPCs, each with that frontend's uids."""
        self.join("room", ("a", "c1"), ("b", "c2"), ("c", "c1"))
        self.assertEqual(self.successResultOf(self.service.push("room", "onChat", {"m": 1})), 2)
        calls = sorted(self.rpc.calls)
        self.assertEqual(
            calls,
            [
                ("c1", "pomelo.sys", "push", ("onChat", {"m": 1}, ["a", "c"])),
                ("c2", "pomelo.sys", "push", ("onChat", {"m": 1}, ["b"])),
            ],
        )
        stats = self.service.stats
        self.assertEqual((stats.pushes, stats.rpcs, stats.pushed_uids), (1, 2, 3))

    def test_exclude(self) -> None:
        """Excluded uids get nothing; a frontend left with none gets no RPC."""
        self.join("room", ("a", "c1"), ("b", "c2"))
        self.assertEqual(self.successResultOf(self.service.push("room", "r", 1, ["b"])), 1)
        self.assertEqual([call[0] for call in self.rpc.calls], ["c1"])

    def test_empty_channel(self) -> None:
        """A channel without members makes no RPC."""
        self.assertEqual(self.successResultOf(self.service.push("nobody", "r", 1)), 0)
        self.assertEqual(self.rpc.calls, [])
        self.assertEqual(self.service.stats.rpcs, 0)

    def test_failed_frontend_counted(self) -> None:
        """A frontend whose RPC fails is counted and warned about; the others get theirs."""
        self.join("room", ("a", "c1"), ("b", "c2"))
        self.rpc.results["c2"] = RpcError("c2 is down")
        self.assertEqual(self.successResultOf(self.service.push("room", "r", 1)), 1)
        self.assertEqual(self.service.stats.rpc_errors, 1)
        self.assertEqual(len(self.warnings()), 1)
        self.assertIn("c2 is down", self.warnings()[0])


class RemoveFrontendTests(ServiceCase):
    """A frontend leaving the cluster takes its members with it."""

    def test_remove_frontend(self) -> None:
        """Every member held by the frontend goes, from every channel; others stay."""
        self.join("r1", ("a", "c1"), ("b", "c2"))
        self.join("r2", ("a", "c1"), ("c", "c1"))
        self.assertEqual(self.successResultOf(self.service.remove_frontend("c1")), 3)
        self.assertEqual(self.successResultOf(self.service.members("r1")), ["b"])
        self.assertEqual(self.successResultOf(self.service.members("r2")), [])
        self.assertEqual(self.redis.keys(), ["test:gc:r1", "test:gcfe:c2", "test:gcu:2:c2:b"])

    def test_reads_only_its_own_index(self) -> None:
        """Removing a frontend costs commands for its members, not for every channel."""
        for i in range(50):
            self.join(f"room{i}", (f"u{i}", "c2"))
        self.join("mine", ("a", "c1"))
        before = self.redis.commands
        self.successResultOf(self.service.remove_frontend("c1"))
        # its uids, the channels of its one uid, one hdel_if, delete, hdel
        self.assertEqual(self.redis.commands - before, 5)

    def test_moved_member_stays(self) -> None:
        """A member that joined again from another frontend is not removed with the old one."""
        self.join("room", ("a", "c1"), ("a", "c2"))
        self.assertEqual(self.successResultOf(self.service.remove_frontend("c1")), 0)
        self.assertEqual(
            self.successResultOf(self.service.members_by_frontend("room")), {"c2": ["a"]}
        )


class OutageTests(ServiceCase):
    """Redis unavailable: clear failures, counted, warned once per interval."""

    def test_push_fails_clearly_counted_and_aggregated(self) -> None:
        """Pushes fail with RedisUnavailable; 5 failures make 1 warning, then 1 with a count."""
        self.join("room", ("a", "c1"))
        self.redis.available = False
        for _ in range(5):
            failure = self.failureResultOf(self.service.push("room", "r", 1), RedisUnavailable)
            self.assertIn("redis at fake is not connected", failure.getErrorMessage())
        self.assertEqual(self.service.stats.redis_errors, 5)
        self.assertEqual(self.rpc.calls, [])
        self.assertEqual(len(self.warnings()), 1)
        self.clock.advance(10)
        self.failureResultOf(self.service.push("room", "r", 1), RedisUnavailable)
        self.assertEqual(len(self.warnings()), 2)
        self.assertIn("4 more like it", self.warnings()[1])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_back_after_the_outage(self) -> None:
        """Once Redis answers again, pushes go out again."""
        self.join("room", ("a", "c1"))
        self.redis.available = False
        self.failureResultOf(self.service.add("room", "b", "c2"), RedisUnavailable)
        self.redis.available = True
        self.assertEqual(self.successResultOf(self.service.push("room", "r", 1)), 1)
        self.assertEqual(self.service.stats.redis_errors, 1)


class OnlineCountTests(ServiceCase):
    """online_count and online_by_frontend read what the frontends wrote."""

    def test_counts(self) -> None:
        """Counts per frontend, per server type, and in all."""
        self.redis.hset("test:fronts", {"c1": "connector", "c2": "connector", "g1": "gate"})
        self.redis.sadd("test:online:c1", ["a", "b"])
        self.redis.sadd("test:online:c2", ["c"])
        self.redis.sadd("test:online:g1", ["x"])
        self.assertEqual(
            self.successResultOf(self.service.online_by_frontend("connector")), {"c1": 2, "c2": 1}
        )
        self.assertEqual(self.successResultOf(self.service.online_count("connector")), 3)
        self.assertEqual(self.successResultOf(self.service.online_count()), 4)
        self.assertEqual(self.successResultOf(self.service.online_count("chat")), 0)

    def test_remove_frontend_drops_its_online_users(self) -> None:
        """A frontend removed from the cluster no longer counts."""
        self.redis.hset("test:fronts", {"c1": "connector"})
        self.redis.sadd("test:online:c1", ["a"])
        self.successResultOf(self.service.remove_frontend("c1"))
        self.assertEqual(self.successResultOf(self.service.online_by_frontend()), {})
