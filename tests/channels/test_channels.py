"""Channels and the channel service: membership, pushes grouped by frontend."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.channels import Channel, ChannelService
from pomelo_twisted.errors import RpcError
from pomelo_twisted.protocol import encode_push
from pomelo_twisted.session import SessionService

from ..sessions.fakes import CountingSerializer, FakeAgent, FakeRpc

FRONTENDS = ["connector-1", "connector-2", "connector-3"]


def push_call(frontend_id: str, route: str, msg: object, uids: list[str]) -> tuple[Any, ...]:
    """The rpc call of a grouped push to ``frontend_id``."""
    return (frontend_id, "pomelo.sys", "push", (route, msg, uids))


def filled(rpc: FakeRpc) -> Channel:
    """Channel 'room' with 5 members on 3 frontends."""
    channel = ChannelService(rpc, lambda: FRONTENDS).create("room")
    for uid, frontend_id in (
        ("a", "connector-1"),
        ("b", "connector-2"),
        ("c", "connector-1"),
        ("d", "connector-3"),
        ("e", "connector-2"),
    ):
        channel.add(uid, frontend_id)
    return channel


class MembershipTests(SynchronousTestCase):
    """add, leave, members and member."""

    def test_add_and_leave(self) -> None:
        """add/leave answer whether they changed anything; members keep the join order."""
        channel = Channel("room", FakeRpc())
        self.assertTrue(channel.add("b", "connector-1"))
        self.assertTrue(channel.add("a", "connector-2"))
        self.assertFalse(channel.add("b", "connector-1"))
        self.assertEqual(channel.members(), ["b", "a"])
        self.assertEqual((channel.member("a"), channel.member("zz")), ("connector-2", None))
        self.assertEqual((len(channel), "a" in channel, "zz" in channel), (2, True, False))
        self.assertFalse(channel.leave("a", "connector-1"))
        self.assertTrue(channel.leave("a", "connector-2"))
        self.assertFalse(channel.leave("a", "connector-2"))
        self.assertEqual(channel.members(), ["b"])

    def test_rejoin_from_another_frontend(self) -> None:
        """Joining again from another frontend moves the member, keeping its place;
        a stale leave from the old frontend does not remove it."""
        channel = Channel("room", FakeRpc())
        channel.add("a", "connector-1")
        channel.add("b", "connector-1")
        self.assertTrue(channel.add("a", "connector-2"))
        self.assertEqual((channel.members(), channel.member("a")), (["a", "b"], "connector-2"))
        self.assertFalse(channel.leave("a", "connector-1"))
        self.assertEqual(channel.members(), ["a", "b"])


class ChannelPushTests(SynchronousTestCase):
    """Channel.push: one rpc call per frontend, concurrent, failures isolated."""

    def test_one_call_per_frontend(self) -> None:
        """Members on 3 frontends make exactly 3 calls, each with that frontend's uids."""
        rpc = FakeRpc()
        result = filled(rpc).push("onChat", {"t": "hi"})
        self.assertEqual(self.successResultOf(result), 3)
        self.assertEqual(
            rpc.calls,
            [
                push_call("connector-1", "onChat", {"t": "hi"}, ["a", "c"]),
                push_call("connector-2", "onChat", {"t": "hi"}, ["b", "e"]),
                push_call("connector-3", "onChat", {"t": "hi"}, ["d"]),
            ],
        )

    def test_exclude(self) -> None:
        """Excluded uids are left out; a frontend with nobody left gets no call."""
        rpc = FakeRpc()
        self.assertEqual(
            self.successResultOf(filled(rpc).push("onChat", {}, exclude=["c", "d"])), 2
        )
        self.assertEqual(
            rpc.calls,
            [
                push_call("connector-1", "onChat", {}, ["a"]),
                push_call("connector-2", "onChat", {}, ["b", "e"]),
            ],
        )

    def test_membership_changes_between_pushes(self) -> None:
        """Joins, leaves, moves and clear between pushes are seen by the next push; an
        exclude leaves the following pushes whole."""
        rpc = FakeRpc()
        channel = filled(rpc)
        channel.push("onChat", {}, exclude=["a", "b"])
        channel.add("f", "connector-3")
        channel.leave("e", "connector-2")
        channel.add("a", "connector-3")
        rpc.calls.clear()
        channel.push("onChat", {})
        self.assertEqual(
            rpc.calls,
            [
                push_call("connector-3", "onChat", {}, ["a", "d", "f"]),
                push_call("connector-2", "onChat", {}, ["b"]),
                push_call("connector-1", "onChat", {}, ["c"]),
            ],
        )
        channel.clear()
        rpc.calls.clear()
        self.assertEqual(self.successResultOf(channel.push("onChat", {})), 0)
        self.assertEqual(rpc.calls, [])

    def test_empty_channel(self) -> None:
        """Pushing to an empty channel makes no call and fires with 0."""
        rpc = FakeRpc()
        self.assertEqual(self.successResultOf(Channel("room", rpc).push("onChat", {})), 0)
        self.assertEqual(rpc.calls, [])

    def test_calls_are_concurrent(self) -> None:
        """Every frontend is called before any answers; the push fires when all have."""
        pending: list[Deferred[Any]] = []

        def rpc(*_args: object) -> Deferred[Any]:
            pending.append(Deferred())
            return pending[-1]

        channel = Channel("room", rpc)
        for uid, frontend_id in (("a", "connector-1"), ("b", "connector-2"), ("c", "connector-3")):
            channel.add(uid, frontend_id)
        result = channel.push("onChat", {})
        self.assertEqual(len(pending), 3)
        self.assertNoResult(result)
        for d in reversed(pending):
            d.callback(1)
        self.assertEqual(self.successResultOf(result), 3)

    def test_failing_frontend_does_not_stop_others(self) -> None:
        """A failed or raising call to one frontend is logged; the others still get theirs."""
        rpc = FakeRpc()
        rpc.results["connector-2"] = RpcError("connector-2 is down")
        self.assertEqual(self.successResultOf(filled(rpc).push("onChat", {})), 2)
        self.assertEqual([call[0] for call in rpc.calls], FRONTENDS)
        rpc.raises["connector-1"] = ZeroDivisionError("bug")
        rpc.calls.clear()
        self.assertEqual(self.successResultOf(filled(rpc).push("onChat", {})), 1)
        self.assertEqual([call[0] for call in rpc.calls], FRONTENDS)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_pushes_to_a_down_frontend_warn_once_per_interval(self) -> None:
        """A hundred pushes failing at a down frontend write one warning line, not a hundred."""
        rpc = FakeRpc()
        rpc.results["connector-2"] = RpcError("connector-2 is down")
        service = ChannelService(rpc, lambda: list(FRONTENDS))
        channel = service.create("room")
        for index, frontend_id in enumerate(FRONTENDS):
            channel.add(f"u{index}", frontend_id)
        with capturedLogs() as events:
            for _ in range(100):
                channel.push("onChat", {})
        warnings = [e for e in events if e["log_level"] is LogLevel.warn]
        self.assertEqual(len(warnings), 1)


class ChannelServiceTests(SynchronousTestCase):
    """ChannelService: named channels, grouped pushes, broadcast, leave_all."""

    def setUp(self) -> None:
        self.rpc = FakeRpc()
        self.frontends = list(FRONTENDS)
        self.service = ChannelService(self.rpc, lambda: self.frontends)

    def test_create_get_destroy(self) -> None:
        """create is idempotent; get(create=True) creates; destroy forgets and disables."""
        room = self.service.create("room")
        self.assertIs(self.service.create("room"), room)
        self.assertIs(self.service.get("room"), room)
        self.assertIsNone(self.service.get("hall"))
        hall = self.service.get("hall", create=True)
        self.assertIsNotNone(hall)
        self.assertEqual(self.service.channels(), [room, hall])
        room.add("a", "connector-1")
        self.assertTrue(self.service.destroy("room"))
        self.assertFalse(self.service.destroy("room"))
        self.assertEqual(
            (room.destroyed, room.members(), self.service.channels()), (True, [], [hall])
        )
        self.assertFalse(room.add("b", "connector-1"))
        self.assertEqual(len(self.service), 1)

    def test_push_by_uids(self) -> None:
        """push_by_uids makes one call per frontend with its uids, duplicates once."""
        pairs = [
            ("a", "connector-1"),
            ("b", "connector-2"),
            ("c", "connector-1"),
            ("a", "connector-1"),
        ]
        self.assertEqual(self.successResultOf(self.service.push_by_uids("onGift", 5, pairs)), 2)
        self.assertEqual(
            self.rpc.calls,
            [
                push_call("connector-1", "onGift", 5, ["a", "c"]),
                push_call("connector-2", "onGift", 5, ["b"]),
            ],
        )
        self.assertEqual(self.successResultOf(self.service.push_by_uids("onGift", 5, [])), 0)

    def test_broadcast(self) -> None:
        """broadcast makes one 'broadcast' call to each frontend currently listed."""
        self.frontends.remove("connector-2")
        self.assertEqual(self.successResultOf(self.service.broadcast("onNews", {"n": 1})), 2)
        self.assertEqual(
            self.rpc.calls,
            [
                ("connector-1", "pomelo.sys", "broadcast", ("onNews", {"n": 1})),
                ("connector-3", "pomelo.sys", "broadcast", ("onNews", {"n": 1})),
            ],
        )

    def test_leave_all(self) -> None:
        """leave_all removes the uid from every channel and destroys the emptied ones."""
        room, hall, club = (self.service.create(name) for name in ("room", "hall", "club"))
        room.add("a", "connector-1")
        hall.add("a", "connector-1")
        hall.add("b", "connector-2")
        club.add("b", "connector-2")
        self.assertEqual(self.service.leave_all("a", "connector-2"), 0)
        self.assertEqual(self.service.leave_all("a", "connector-1"), 2)
        self.assertEqual(self.service.channels(), [hall, club])
        self.assertEqual((room.destroyed, hall.members()), (True, ["b"]))
        self.assertEqual(self.service.leave_all("b", "connector-2"), 2)
        self.assertEqual(self.service.channels(), [])


class EndToEndTests(SynchronousTestCase):
    """A channel push through an rpc that reaches three frontend SessionServices."""

    def test_push_reaches_members_encoded_once_per_frontend(self) -> None:
        """Each frontend encodes once and writes the same bytes to each member's connection."""
        frontends = {}
        agents: dict[str, FakeAgent] = {}
        serializers = {}
        sid = 0
        for frontend_id, uids in zip(FRONTENDS, (["a", "c"], ["b"], ["d"]), strict=True):
            serializer = serializers[frontend_id] = CountingSerializer()
            sessions = frontends[frontend_id] = SessionService(frontend_id)
            for uid in uids:
                sid += 1
                agent = agents[uid] = FakeAgent(sid, serializer)
                self.successResultOf(sessions.create(agent).bind(uid))

        def rpc(server_id: str, service: str, method: str, args: tuple[Any, ...]) -> Any:
            assert (service, method) == ("pomelo.sys", "push")
            return frontends[server_id].push_to_uids(*args)

        channel = ChannelService(rpc, lambda: FRONTENDS).create("room")
        for uid, frontend_id in (
            ("a", "connector-1"),
            ("b", "connector-2"),
            ("c", "connector-1"),
            ("d", "connector-3"),
        ):
            channel.add(uid, frontend_id)
        self.assertEqual(self.successResultOf(channel.push("onChat", {"t": 1}, exclude=["d"])), 2)
        expected = [encode_push("onChat", b'{"t":1}')]
        self.assertEqual(
            {uid: a.written for uid, a in agents.items()},
            {"a": expected, "b": expected, "c": expected, "d": []},
        )
        self.assertEqual(
            {k: s.encoded for k, s in serializers.items()},
            {"connector-1": 1, "connector-2": 1, "connector-3": 0},
        )
