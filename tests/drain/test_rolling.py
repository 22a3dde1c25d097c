"""The master's drain and rolling restarts, on a ProcessReactor with fake minds."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import LogLevel, capturedLogs
from twisted.spread import pb

from pomelo_twisted.cluster.avatars import AdminAvatar, ServerAvatar
from pomelo_twisted.cluster.interfaces import CommandRefused
from pomelo_twisted.rpc.payload import pack_plain, unpack_plain
from tests.cluster.fakes import FakeMind
from tests.cluster.test_master import MasterCase


class LeavingTests(MasterCase):
    """A server that drains tells the master, which tells every other server."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.register_all()

    def test_draining_is_published_and_answered_after_every_ack(self) -> None:
        """A server leaving by itself is published ``draining``; the answer waits for
        every other server's answer (their calls to it ended)."""
        acks: list[Deferred[int]] = []

        def held(_payload: object) -> Deferred[int]:
            d: Deferred[int] = Deferred()
            acks.append(d)
            return d

        for server_id in ("connector-1", "connector-2", "chat-2"):
            self.minds[server_id].answers["membership"] = held
        d = self.avatars["chat-1"].perspective_leaving(pack_plain({"grace": 3}))
        self.assertEqual(len(acks), 3)
        self.assertEqual(self.minds["connector-1"].events(), [("draining", "chat-1")])
        payload = unpack_plain(self.minds["connector-1"].calls[-1][1][0])
        self.assertEqual(payload["settle"], 3)
        self.assertNoResult(d)
        for ack in acks:
            ack.callback(0)
        self.assertEqual(unpack_plain(self.successResultOf(d)), {"state": "draining"})
        rows = {row["id"]: row for row in self.master.rows()}
        self.assertEqual(rows["chat-1"]["state"], "draining")

    def test_restarting_when_the_master_restarts_it(self) -> None:
        """A server the master is restarting is published ``restarting`` (calls to it
        are held), not ``draining``."""
        self.master.restarting.add("chat-1")
        d = self.avatars["chat-1"].perspective_leaving(pack_plain({"grace": 1}))
        self.assertEqual(unpack_plain(self.successResultOf(d)), {"state": "restarting"})
        self.assertEqual(self.minds["chat-2"].events(), [("restarting", "chat-1")])

    def test_a_refused_twin_announces_nothing(self) -> None:
        """leaving over a link that is not the registered member's (a twin the master
        refused, stopping) publishes nothing and answers an empty state."""
        twin = ServerAvatar(self.master, "chat-1", FakeMind())
        d = twin.perspective_leaving(pack_plain({"grace": 1}))
        self.assertEqual(unpack_plain(self.successResultOf(d)), {"state": ""})
        self.assertEqual(self.minds["connector-1"].events(), [])

    def test_bad_grace_refused(self) -> None:
        """leaving takes a grace of 0 or more seconds."""
        for payload in (pack_plain({"grace": -1}), pack_plain({}), b"\x00"):
            self.assertRaises(pb.Error, self.avatars["chat-1"].perspective_leaving, payload)

    def test_a_crash_is_down_not_restarting(self) -> None:
        """A server lost without leaving (kill -9) is published ``down`` at warn: no hold."""
        with capturedLogs() as events:
            self.avatars["chat-1"].logout()
        self.assertEqual(self.minds["connector-1"].events(), [("down", "chat-1")])
        self.assertIn(LogLevel.warn, [e["log_level"] for e in events])


class RollingRestartTests(MasterCase):
    """``restart --rolling TYPE`` restarts the servers one by one."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.register_all()
        self.admin = AdminAvatar(self.master)

    def test_one_by_one_each_serving_before_the_next(self) -> None:
        """chat-2 gets SIGTERM only once chat-1's new process has registered; the rows
        name each new pid; nothing is logged above info."""
        with capturedLogs() as events:
            d = self.admin.perspective_restart_rolling("chat")
            first = self.reactor.process("chat-1")
            self.assertEqual(first.signals, ["TERM"])
            self.assertEqual(self.reactor.process("chat-2").signals, [])
            self.avatars["chat-1"].logout()
            first.exit(0)
            new_first = self.reactor.process("chat-1")
            self.assertEqual(self.reactor.process("chat-2").signals, [])
            self.register("chat-1", pid=new_first.pid)
            second = self.reactor.process("chat-2")
            self.assertEqual(second.signals, ["TERM"])
            self.avatars["chat-2"].logout()
            second.exit(0)
            new_second = self.reactor.process("chat-2")
            self.assertNoResult(d)
            self.register("chat-2", pid=new_second.pid)
        rows = unpack_plain(self.successResultOf(d))
        self.assertEqual(
            rows,
            [{"id": "chat-1", "pid": new_first.pid}, {"id": "chat-2", "pid": new_second.pid}],
        )
        self.assertEqual([e["log_format"] for e in events if e["log_level"] > LogLevel.info], [])
        self.assertEqual(self.master.restarting, set())

    def test_a_server_that_does_not_come_back_stops_the_run(self) -> None:
        """A restarted server that does not register within the rejoin timeout fails the
        run with its id; the servers after it are left alone."""
        self.master.rejoin_timeout = 5.0
        d = self.admin.perspective_restart_rolling("chat")
        self.avatars["chat-1"].logout()
        self.reactor.process("chat-1").exit(0)
        self.reactor.advance(5.0)
        failure = self.failureResultOf(d, pb.Error)
        self.assertIn("chat-1", failure.getErrorMessage())
        self.assertIn("did not register again within 5s", failure.getErrorMessage())
        self.assertEqual(self.reactor.process("chat-2").signals, [])

    def test_unknown_type_refused(self) -> None:
        """A type the cluster does not have is refused with the types it has."""
        with self.assertRaises(pb.Error) as caught:
            self.admin.perspective_restart_rolling("area")
        self.assertIn("no server of type 'area' (types: chat, connector)", str(caught.exception))


class DrainTests(MasterCase):
    """``drain ID``: the server drains and leaves the cluster for good."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.register_all()
        self.admin = AdminAvatar(self.master)

    def test_drain_relays_the_command_and_removes_the_server(self) -> None:
        """The master asks the server to drain (with the grace), expects its exit (no
        restart) and, once its link drops, publishes it removed; the answer is the
        server's report."""
        report = {"state": "draining", "kicked": 3, "left": 0, "waited": 0.1, "handoff": 0}
        asked: list[Any] = []

        def command(payload: object) -> Deferred[bytes]:
            asked.append(unpack_plain(payload))
            return succeed(pack_plain(report))

        self.minds["connector-1"].answers["command"] = command
        d = self.admin.perspective_drain(pack_plain({"server": "connector-1", "grace": 2}))
        self.assertEqual(asked, [{"name": "drain", "args": {"grace": 2.0}}])
        self.assertNoResult(d)
        process = self.reactor.process("connector-1")
        self.avatars["connector-1"].logout()
        process.exit(0)
        self.assertEqual(unpack_plain(self.successResultOf(d)), report)
        self.assertEqual(process.signals, [])
        self.assertIn(("removed", "connector-1"), self.minds["chat-1"].events())
        self.assertNotIn("connector-1", self.master.declared)

    def test_drain_of_an_unknown_server_refused(self) -> None:
        """Only a registered server can be drained."""
        with self.assertRaises(pb.Error) as caught:
            self.admin.perspective_drain(pack_plain({"server": "nope", "grace": None}))
        self.assertIn("'nope' is not registered", str(caught.exception))

    def test_refused_drain_keeps_the_server(self) -> None:
        """A drain the server refuses leaves it a member (not removed when it drops)."""

        def command(_payload: object) -> Deferred[bytes]:
            from twisted.internet.defer import fail

            return fail(pb.Error("drain: no"))

        self.minds["chat-1"].answers["command"] = command
        self.failureResultOf(self.master.drain("chat-1", None), CommandRefused)
        self.assertNotIn("chat-1", self.master.removing)
