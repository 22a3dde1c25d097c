"""The master: listening, spawning, membership, ordered stop, and its admin interface.

Everything runs on a ``ProcessReactor`` (a MemoryReactorClock with a fake
spawnProcess): servers are "registered" by calling ``ServerAvatar`` directly
with fake minds that record what the master calls on them.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, capturedLogs
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.cluster import avatars
from pomelo_twisted.cluster.avatars import STATS_TIMEOUT, AdminAvatar, ServerAvatar
from pomelo_twisted.cluster.build import build_master
from pomelo_twisted.cluster.interfaces import CommandRefused, IClusterControl
from pomelo_twisted.cluster.master import TWISTD, MasterService, server_command
from pomelo_twisted.cluster.supervisor import Supervisor
from pomelo_twisted.gameconfig import GameConfig, ServerInfo
from pomelo_twisted.rpc.payload import pack_plain, unpack_plain
from pomelo_twisted.rpc.pbguard import GuardedServerFactory

from .fakes import MASTER_PORT, SECRET, FakeMind, ProcessReactor, write_game

ALL = ["connector-1", "connector-2", "chat-1", "chat-2"]
FRONTENDS = ["connector-1", "connector-2"]
BACKENDS = ["chat-1", "chat-2"]


def register_payload(info: ServerInfo, pid: int = 7) -> bytes:
    """What a monitor sends to register ``info``."""
    return pack_plain({"server": info.to_dict(), "pid": pid})


class MasterCase(SynchronousTestCase):
    """A master of the temporary game on a ProcessReactor; servers register by hand."""

    spawn = True

    #: Server ids whose RPC port already answers when the master starts.
    running_at_start: frozenset[str] = frozenset()

    def probe(self, info: ServerInfo) -> Deferred[bool]:
        return succeed(info.id in self.running_at_start)

    def setUp(self) -> None:
        self.base = write_game(self)
        self.config = GameConfig(self.base)
        self.reactor = ProcessReactor()
        self.supervisor = Supervisor(self.reactor)
        self.stop_process_calls = 0
        self.master = MasterService(
            self.reactor,
            self.config,
            SECRET,
            supervisor=self.supervisor,
            spawn=self.spawn,
            stop_process=self.stop_process,
            probe=self.probe,
        )
        self.infos = {info.id: info for infos in self.config.servers().values() for info in infos}
        self.minds: dict[str, FakeMind] = {}
        self.avatars: dict[str, ServerAvatar] = {}

    def stop_process(self) -> None:
        self.stop_process_calls += 1

    def register(self, server_id: str, pid: int = 7, info: ServerInfo | None = None) -> Any:
        """Register ``server_id`` with a fresh mind; the decoded answer."""
        mind = FakeMind()
        avatar = ServerAvatar(self.master, server_id, mind)
        answer = avatar.perspective_register(register_payload(info or self.infos[server_id], pid))
        self.minds[server_id] = mind
        self.avatars[server_id] = avatar
        return unpack_plain(answer)

    def register_all(self) -> None:
        """Every declared server registers; the cluster is up; the minds' records are cleared."""
        for server_id in ALL:
            self.register(server_id)
        self.reactor.advance(0)
        for mind in self.minds.values():
            mind.calls.clear()

    def events(self, server_id: str) -> list[tuple[str, str]]:
        """The membership events ``server_id``'s (latest) mind received."""
        return self.minds[server_id].events()

    def results(self, d: Deferred[Any]) -> list[Any]:
        """A list that receives the result of ``d`` when it fires."""
        box: list[Any] = []
        d.addCallback(box.append)
        return box


class StartTests(MasterCase):
    """startService: listening, then spawning every declared server."""

    def test_listens_on_the_master_port(self) -> None:
        """startService listens on master.json's host and port with a guarded PB factory
        (a login deadline and a size cap before login)."""
        self.master.startService()
        [(port, factory, _backlog, interface)] = self.reactor.tcpServers
        self.assertEqual((port, interface), (MASTER_PORT, "127.0.0.1"))
        self.assertIsInstance(factory, GuardedServerFactory)
        self.assertIs(factory, self.master.port_factory)
        self.assertIsNotNone(self.master.port)
        self.assertEqual(self.master.id, "master-server-1")

    def test_spawns_backends_before_frontends(self) -> None:
        """Every declared server is spawned once, the backends first (file order kept)."""
        self.master.startService()
        self.assertEqual(self.reactor.spawned_ids(), [*BACKENDS, *FRONTENDS])

    def test_spawn_arguments(self) -> None:
        """Each spawn runs twistd pomelo with --type/--id, logs to logs/<id>.log, in the game."""
        self.master.startService()
        for spawn in self.reactor.spawned:
            info = self.infos[spawn.server_id]
            self.assertEqual(spawn.executable, sys.executable)
            self.assertEqual(spawn.args[-4:], ["--type", info.type, "--id", info.id])
            self.assertNotIn("--server", spawn.args)
            self.assertEqual(spawn.path, str(self.config.base_dir))
            log_path = self.config.base_dir / "logs" / f"{info.id}.log"
            self.assertIn(f"starting {info.id}", log_path.read_text())
            spec = self.supervisor.spec(info.id)
            assert spec is not None
            self.assertEqual(spec.log_path, log_path)
            self.assertEqual(spec.auto_restart, info.type == "chat")

    def test_no_spawn_when_disabled(self) -> None:
        """With spawn=False the master listens but starts no server."""
        master = MasterService(self.reactor, self.config, SECRET, spawn=False)
        master.startService()
        self.assertEqual(len(self.reactor.tcpServers), 1)
        self.assertEqual(self.reactor.spawned, [])

    def test_listen_failure(self) -> None:
        """A listen failure is logged as critical, calls on_listen_failure, spawns nothing."""

        def refuse(*args: object, **kwargs: object) -> None:
            raise CannotListenError("127.0.0.1", MASTER_PORT, OSError("in use"))

        self.reactor.listenTCP = refuse  # type: ignore[method-assign]
        failures: list[None] = []
        self.master.on_listen_failure = lambda: failures.append(None)
        with capturedLogs() as events:
            self.master.startService()
        self.assertEqual(failures, [None])
        self.assertEqual(self.reactor.spawned, [])
        self.assertIsNone(self.master.port)
        self.assertIn(LogLevel.critical, [e["log_level"] for e in events])

    def test_portal_avatar(self) -> None:
        """The admin login gets an AdminAvatar; any other login a ServerAvatar with its mind."""
        self.assertIsInstance(self.master.portal_avatar("admin", None), AdminAvatar)
        mind = FakeMind()
        avatar = self.master.portal_avatar("chat-1", mind)
        assert isinstance(avatar, ServerAvatar)
        self.assertEqual((avatar.server_id, avatar.mind), ("chat-1", mind))


class AdoptionTests(MasterCase):
    """A master (re)started while servers of the game still run adopts them."""

    running_at_start = frozenset({"chat-1", "connector-2"})

    def test_running_servers_are_not_spawned_again(self) -> None:
        """Servers whose RPC port answers are adopted, the others spawned."""
        self.master.startService()
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-1"])
        self.assertEqual(self.master.adopted, {"chat-1", "connector-2"})
        self.register_all()
        self.assertTrue(self.master.cluster_up)

    def test_adopted_auto_restart_server_is_respawned_when_it_dies(self) -> None:
        """An adopted auto-restart server that goes down is spawned after the backoff."""
        self.master.startService()
        self.register_all()
        self.avatars["chat-1"].logout()
        self.reactor.advance(0.49)
        self.assertNotIn("chat-1", self.reactor.spawned_ids())
        self.reactor.advance(0.01)
        self.assertEqual(self.reactor.spawned_ids()[-1], "chat-1")

    def test_adopted_server_without_auto_restart_stays_down(self) -> None:
        """An adopted server without auto-restart is only published down."""
        self.master.startService()
        self.register_all()
        self.avatars["connector-2"].logout()
        self.reactor.advance(5)
        self.assertEqual(self.reactor.spawned_ids(), ["chat-2", "connector-1"])
        self.assertEqual(self.events("chat-2")[-1], ("down", "connector-2"))


class RegistrationTests(MasterCase):
    """perspective_register: the answer, the published up, and refusals."""

    def test_answer_lists_every_declared_server(self) -> None:
        """The answer is the membership: every declared server's entry."""
        answer = self.register("chat-1")
        self.assertEqual(answer, {"servers": [self.infos[i].to_dict() for i in ALL]})

    def test_up_is_published_to_the_others_only(self) -> None:
        """A newcomer is published as up to every registered server but itself."""
        self.register("chat-1")
        self.register("connector-1")
        self.register("chat-2")
        self.assertEqual(self.events("chat-1"), [("up", "connector-1"), ("up", "chat-2")])
        self.assertEqual(self.events("connector-1"), [("up", "chat-2")])
        self.assertEqual(self.events("chat-2"), [])
        self.assertEqual(
            self.minds["chat-1"].payloads()[0],
            {"event": "up", "server": self.infos["connector-1"].to_dict()},
        )
        self.assertEqual(sorted(self.master.members), ["chat-1", "chat-2", "connector-1"])
        self.assertEqual(self.master.members["chat-2"].pid, 7)

    def test_same_id_from_another_link_refused(self) -> None:
        """A second registration under an id whose link still answers is refused."""
        self.register("chat-1")
        first = self.minds["chat-1"]
        intruder = ServerAvatar(self.master, "chat-1", FakeMind())
        d = intruder.perspective_register(register_payload(self.infos["chat-1"], pid=8))
        caught = self.failureResultOf(d, pb.Error)
        self.assertIn("registered already", str(caught.value))
        self.assertEqual(first.methods(), ["stats"])  # the liveness probe
        self.assertIs(self.master.members["chat-1"].mind, first)
        self.assertEqual(self.master.members["chat-1"].pid, 7)

    def test_stale_link_is_replaced(self) -> None:
        """A registration under an id whose old link no longer answers replaces it."""
        self.register("chat-1")
        stale = self.minds["chat-1"]
        stale.answers["stats"] = lambda: Deferred()
        restarted = FakeMind()
        avatar = ServerAvatar(self.master, "chat-1", restarted)
        d = avatar.perspective_register(register_payload(self.infos["chat-1"], pid=9))
        self.assertNoResult(d)
        self.reactor.advance(2.0)
        self.assertIn("servers", unpack_plain(self.successResultOf(d)))
        self.assertIs(self.master.members["chat-1"].mind, restarted)
        self.assertEqual(self.master.members["chat-1"].pid, 9)
        ServerAvatar(self.master, "chat-1", stale).logout()  # the old link's late logout
        self.assertIs(self.master.members["chat-1"].mind, restarted)

    def test_same_link_may_register_again(self) -> None:
        """Registering again over the same link is accepted (and published again)."""
        self.register("chat-2")
        self.register("chat-1")
        self.avatars["chat-1"].perspective_register(register_payload(self.infos["chat-1"], 9))
        self.assertEqual(self.master.members["chat-1"].pid, 9)
        self.assertEqual(self.events("chat-2"), [("up", "chat-1"), ("up", "chat-1")])

    def test_other_id_than_the_login_refused(self) -> None:
        """A server logged in as one id cannot register another."""
        avatar = ServerAvatar(self.master, "chat-1", FakeMind())
        with self.assertRaises(pb.Error) as caught:
            avatar.perspective_register(register_payload(self.infos["chat-2"]))
        self.assertIn("logged in as 'chat-1'", str(caught.exception))
        self.assertEqual(self.master.members, {})

    def test_malformed_payloads_refused(self) -> None:
        """Non-bytes, entry-less, type-less or invalid entries are refused with pb.Error."""
        avatar = ServerAvatar(self.master, "chat-1", FakeMind())
        entry = self.infos["chat-1"].to_dict()
        for payload in (
            {"server": entry},
            pack_plain(["chat-1"]),
            pack_plain({"pid": 1}),
            pack_plain({"server": {**entry, "type": None}}),
            pack_plain({"server": {**entry, "port": "x"}}),
        ):
            self.assertRaises(pb.Error, avatar.perspective_register, payload)
        self.assertEqual(self.master.members, {})

    def test_undeclared_server_joins(self) -> None:
        """A server started by hand (not declared) is accepted and becomes declared."""
        extra = ServerInfo(id="chat-9", type="chat", port=4259)
        self.register("chat-1")
        answer = self.register("chat-9", info=extra)
        self.assertIn(extra.to_dict(), answer["servers"])
        self.assertEqual(self.master.declared["chat-9"], extra)
        self.assertEqual(self.events("chat-1"), [("up", "chat-9")])

    def test_refused_while_stopping(self) -> None:
        """Once the cluster is stopping, registrations are refused."""
        self.master.stop_cluster()
        self.assertRaises(pb.Error, self.register, "chat-1")


class AfterStartTests(MasterCase):
    """after_start once the whole cluster is registered."""

    def test_after_start_once_everyone_registered(self) -> None:
        """after_start reaches every server exactly once, a turn after the last registers."""
        for server_id in ALL[:-1]:
            self.register(server_id)
        self.reactor.advance(0)
        self.register(ALL[-1])
        self.assertEqual([self.minds[i].methods().count("after_start") for i in ALL], [0] * 4)
        self.assertNoResult(self.master.cluster_started)
        self.reactor.advance(0)
        self.reactor.advance(1)
        self.assertEqual([self.minds[i].methods().count("after_start") for i in ALL], [1] * 4)
        self.assertIsNone(self.successResultOf(self.master.cluster_started))
        self.assertTrue(self.master.cluster_up)

    def test_cluster_started_waits_for_every_answer(self) -> None:
        """cluster_started fires only once every after_start call has answered."""
        slow: Deferred[None] = Deferred()
        for server_id in ALL:
            self.register(server_id)
        self.minds["chat-2"].answers["after_start"] = lambda: slow
        self.reactor.advance(0)
        self.assertNoResult(self.master.cluster_started)
        slow.callback(None)
        self.successResultOf(self.master.cluster_started)

    def test_failing_after_start_still_starts(self) -> None:
        """A server whose after_start fails is logged; the cluster still counts as started."""
        for server_id in ALL:
            self.register(server_id)
        self.minds["chat-1"].answers["after_start"] = lambda: fail(pb.Error("hook broke"))
        with capturedLogs() as events:
            self.reactor.advance(0)
        self.successResultOf(self.master.cluster_started)
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(
            [(e["method"], e["server"]) for e in warnings], [("after_start", "chat-1")]
        )

    def test_late_registration_gets_after_start_at_once(self) -> None:
        """A server registering after the cluster is up (a restart) gets after_start at once."""
        self.register_all()
        self.avatars["chat-1"].logout()
        self.register("chat-1")
        self.assertEqual(self.minds["chat-1"].methods(), ["after_start"])
        self.reactor.advance(0)
        self.assertEqual(self.minds["chat-2"].events(), [("down", "chat-1"), ("up", "chat-1")])
        self.assertNotIn("after_start", self.minds["chat-2"].methods())

    def test_lost_before_the_turn(self) -> None:
        """A server lost between the last registration and the turn gets after_start on return."""
        for server_id in ALL:
            self.register(server_id)
        self.avatars["chat-1"].logout()
        self.reactor.advance(0)
        self.successResultOf(self.master.cluster_started)
        self.assertEqual(self.minds["chat-1"].methods().count("after_start"), 0)
        self.register("chat-1")
        self.assertEqual(self.minds["chat-1"].methods(), ["after_start"])


class LossTests(MasterCase):
    """Lost links and dead processes."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.register_all()

    def test_lost_link_publishes_down(self) -> None:
        """A lost link publishes down to the others; the server stays declared."""
        self.avatars["chat-1"].logout()
        for server_id in ["connector-1", "connector-2", "chat-2"]:
            self.assertEqual(self.events(server_id)[-1], ("down", "chat-1"))
        self.assertNotIn(("down", "chat-1"), self.events("chat-1"))
        self.assertNotIn("chat-1", self.master.members)
        self.assertIn("chat-1", self.master.declared)

    def test_stale_logout_ignored(self) -> None:
        """The logout of a refused duplicate link does not touch the registered server."""
        intruder = ServerAvatar(self.master, "chat-1", FakeMind())
        d = intruder.perspective_register(register_payload(self.infos["chat-1"]))
        self.failureResultOf(d, pb.Error)
        intruder.logout()
        self.assertIn("chat-1", self.master.members)
        self.assertNotIn(("down", "chat-1"), self.events("chat-2"))

    def test_auto_restart_after_backoff(self) -> None:
        """A dead auto-restart server is respawned after 0.5 s; its registration is up again."""
        self.reactor.process("chat-1").exit(1)
        self.avatars["chat-1"].logout()
        self.assertEqual(self.events("chat-2")[-1], ("down", "chat-1"))
        self.reactor.advance(0.49)
        self.assertEqual(self.reactor.spawned_ids().count("chat-1"), 1)
        self.reactor.advance(0.01)
        self.assertEqual(self.reactor.spawned_ids().count("chat-1"), 2)
        self.assertEqual(self.reactor.spawned[-1].args, self.reactor.spawned[0].args)
        self.assertEqual(self.supervisor.restarts("chat-1"), 1)
        self.register("chat-1", pid=self.reactor.process("chat-1").pid)
        self.assertEqual(self.events("chat-2")[-1], ("up", "chat-1"))
        self.assertEqual(self.minds["chat-1"].methods(), ["after_start"])

    def test_dead_server_without_auto_restart(self) -> None:
        """A dead server without auto-restart is logged as an error and stays down."""
        with capturedLogs() as events:
            self.reactor.process("connector-1").exit(3)
        self.reactor.advance(100)
        self.assertEqual(self.reactor.spawned_ids().count("connector-1"), 1)
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertIn("has no auto-restart", " ".join(e["log_format"] for e in errors))


class StopServerTests(MasterCase):
    """stop_servers: stopping some servers for good."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.register_all()

    def test_removed_after_exit_then_loss(self) -> None:
        """SIGTERM; once the process ended and its link dropped, removed is published once."""
        result = self.results(self.master.stop_servers(["chat-1"]))
        self.assertEqual(self.reactor.process("chat-1").signals, ["TERM"])
        self.assertEqual(result, [])
        self.reactor.process("chat-1").exit(0)
        self.assertEqual(result, [["chat-1"]])
        self.assertNotIn("chat-1", self.master.declared)
        self.assertEqual(self.events("chat-2"), [])
        self.avatars["chat-1"].logout()
        self.assertEqual(self.events("chat-2"), [("removed", "chat-1")])
        self.assertEqual(self.events("connector-1"), [("removed", "chat-1")])
        self.reactor.advance(100)
        self.assertEqual(self.reactor.spawned_ids().count("chat-1"), 1)
        self.assertIsNone(self.supervisor.spec("chat-1"))

    def test_removed_after_loss_then_exit(self) -> None:
        """When the link drops before the process ends, removed is published at the loss."""
        result = self.results(self.master.stop_servers(["chat-1"]))
        self.avatars["chat-1"].logout()
        self.assertEqual(self.events("chat-2"), [("removed", "chat-1")])
        self.assertNotIn("chat-1", self.master.declared)
        self.reactor.process("chat-1").exit(0)
        self.assertEqual(result, [["chat-1"]])
        self.assertEqual(self.events("chat-2"), [("removed", "chat-1")])

    def test_crashed_server_awaiting_restart(self) -> None:
        """Stopping a crashed server whose restart is pending cancels it and removes it."""
        self.reactor.process("chat-1").exit(1)
        self.avatars["chat-1"].logout()
        result = self.results(self.master.stop_servers(["chat-1"]))
        self.assertEqual(result, [["chat-1"]])
        self.assertEqual(self.events("chat-2"), [("down", "chat-1"), ("removed", "chat-1")])
        self.reactor.advance(100)
        self.assertEqual(self.reactor.spawned_ids().count("chat-1"), 1)
        self.assertNotIn("chat-1", self.master.declared)

    def test_crashed_member_awaiting_restart(self) -> None:
        """A crashed server still linked is not restarted by the backoff once stopped."""
        self.reactor.process("chat-1").exit(1)
        result = self.results(self.master.stop_servers(["chat-1"]))
        self.assertEqual(self.minds["chat-1"].methods(), ["stop"])
        self.reactor.advance(1)
        self.assertEqual(self.reactor.spawned_ids().count("chat-1"), 1)
        self.avatars["chat-1"].logout()
        self.reactor.advance(0.05)
        self.assertEqual(result, [["chat-1"]])
        self.assertEqual(self.events("chat-2"), [("removed", "chat-1")])
        self.assertIsNone(self.supervisor.spec("chat-1"))

    def test_added_again_after_removal(self) -> None:
        """A removed id added again is a normal server: its loss is down, not removed."""
        self.master.stop_servers(["chat-1"])
        self.reactor.process("chat-1").exit(0)
        self.avatars["chat-1"].logout()
        AdminAvatar(self.master).perspective_add(pack_plain(self.infos["chat-1"].to_dict()))
        self.assertEqual(self.reactor.spawned_ids().count("chat-1"), 2)
        self.register("chat-1")
        self.avatars["chat-1"].logout()
        self.assertEqual(self.events("chat-2")[-1], ("down", "chat-1"))
        self.assertIn("chat-1", self.master.declared)

    def test_ids_not_running_are_just_forgotten(self) -> None:
        """An id with neither a process nor a link is dropped from declared at once."""
        self.reactor.process("connector-2").exit(0)
        self.avatars["connector-2"].logout()
        result = self.results(self.master.stop_servers(["connector-2"]))
        self.assertEqual(result, [["connector-2"]])
        self.assertNotIn("connector-2", self.master.declared)
        self.assertEqual(self.events("chat-1")[-1], ("removed", "connector-2"))


class StopMemberTests(MasterCase):
    """stop_servers of servers the master did not start (asked over their link)."""

    spawn = False

    def setUp(self) -> None:
        super().setUp()
        self.register_all()

    def test_member_asked_to_stop(self) -> None:
        """A server without a process here is asked to stop; done once its link is gone."""
        result = self.results(self.master.stop_servers(["chat-1"]))
        self.assertEqual(self.minds["chat-1"].methods()[-1], "stop")
        self.reactor.advance(1)
        self.assertEqual(result, [])
        self.avatars["chat-1"].logout()
        self.assertEqual(self.events("chat-2"), [("removed", "chat-1")])
        self.reactor.advance(0.05)
        self.assertEqual(result, [["chat-1"]])
        self.assertNotIn("chat-1", self.master.declared)
        self.assertEqual(self.events("chat-2"), [("removed", "chat-1")])

    def test_member_that_stays_is_given_up(self) -> None:
        """A server that never leaves is given up after stop_timeout."""
        result = self.results(self.master.stop_servers(["chat-1"]))
        self.reactor.advance(9.9)
        self.assertEqual(result, [])
        self.reactor.advance(0.1)
        self.assertEqual(result, [["chat-1"]])
        self.assertNotIn("chat-1", self.master.declared)
        self.reactor.advance(0.05)
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class StopClusterTests(MasterCase):
    """stop_cluster / stopService: frontends first, then backends."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.register_all()

    def signals(self) -> dict[str, list[str]]:
        return {sid: self.reactor.process(sid).signals for sid in ALL}

    def test_frontends_first(self) -> None:
        """Frontends get SIGTERM first; backends only after every frontend has ended."""
        result = self.results(self.master.stop_cluster())
        self.assertEqual(
            self.signals(),
            {"connector-1": ["TERM"], "connector-2": ["TERM"], "chat-1": [], "chat-2": []},
        )
        self.reactor.process("connector-1").exit(0)
        self.assertEqual(self.reactor.process("chat-1").signals, [])
        self.reactor.process("connector-2").exit(0)
        self.assertEqual(self.reactor.process("chat-1").signals, ["TERM"])
        self.assertEqual(self.reactor.process("chat-2").signals, ["TERM"])
        self.reactor.process("chat-1").exit(0)
        self.assertEqual(result, [])
        self.reactor.process("chat-2").exit(0)
        self.assertEqual(result, [None])

    def test_no_restart_during_the_stop(self) -> None:
        """A backend dying during the stop is not restarted; the stop still completes."""
        result = self.results(self.master.stop_cluster())
        self.reactor.process("chat-1").exit(1)
        self.avatars["chat-1"].logout()
        self.reactor.advance(100)
        for server_id in FRONTENDS:
            self.reactor.process(server_id).exit(0)
        self.reactor.process("chat-2").exit(0)
        self.assertEqual(result, [None])
        self.assertEqual(self.reactor.spawned_ids(), [*BACKENDS, *FRONTENDS])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_lost_links_during_the_stop_are_down(self) -> None:
        """Links lost during the stop publish down, not removed; servers stay declared."""
        self.master.stop_cluster()
        self.avatars["connector-1"].logout()
        self.assertEqual(self.events("chat-1"), [("down", "connector-1")])
        self.reactor.process("connector-1").exit(0)
        self.assertIn("connector-1", self.master.declared)

    def test_stop_service(self) -> None:
        """stopService stops the cluster in order, then the port; fires after all ended."""
        d = self.master.stopService()
        self.assertFalse(self.master.running)
        for server_id in [*FRONTENDS, *BACKENDS]:
            self.assertNoResult(d)
            self.reactor.process(server_id).exit(0)
        self.assertIsNone(self.successResultOf(d))
        self.assertIsNone(self.master.port)
        self.assertEqual(self.reactor.alive(), [])

    def test_second_stop_fires_at_once(self) -> None:
        """stop_cluster while already stopping fires at once and signals nothing more."""
        self.master.stop_cluster()
        self.successResultOf(self.master.stop_cluster())
        self.assertEqual(self.reactor.process("connector-1").signals, ["TERM"])


class KillTests(MasterCase):
    """kill_all: SIGKILL everything, restart nothing."""

    def test_kill_all(self) -> None:
        """kill_all SIGKILLs every running server, cancels pending restarts, restarts none."""
        self.master.startService()
        self.reactor.process("chat-1").exit(1)
        killed = self.master.kill_all()
        self.assertEqual(killed, ["chat-2", "connector-1", "connector-2"])
        for server_id in killed:
            self.assertEqual(self.reactor.process(server_id).signals, ["KILL"])
            self.reactor.process(server_id).die(9)
        self.reactor.advance(100)
        self.assertEqual(len(self.reactor.spawned), 4)
        self.assertTrue(self.master.stopping)


class ServerCommandTests(SynchronousTestCase):
    """server_command: how a server process is run."""

    def setUp(self) -> None:
        self.config = GameConfig(write_game(self))
        self.info = self.config.servers()["chat"][0]

    def test_declared_server(self) -> None:
        """A declared server runs twistd -n pomelo with --app/--env/--type/--id."""
        spec = server_command(self.config, self.info)
        self.assertEqual(
            spec.args,
            (
                sys.executable,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "-n",
                "--pidfile=",
                "pomelo",
                "--app",
                str(self.config.base_dir),
                "--env",
                "development",
                "--type",
                "chat",
                "--id",
                "chat-1",
            ),
        )
        self.assertEqual(spec.args[:3], TWISTD)
        self.assertEqual((spec.server_id, spec.executable), ("chat-1", sys.executable))
        self.assertEqual(spec.log_path, self.config.base_dir / "logs" / "chat-1.log")
        self.assertEqual(spec.path, str(self.config.base_dir))
        self.assertIsNone(spec.env)
        self.assertTrue(spec.auto_restart)

    def test_server_not_from_config(self) -> None:
        """A server not from the config also gets its entry as --server JSON."""
        info = ServerInfo(id="chat-3", type="chat", port=4252)
        spec = server_command(self.config, info, declared=False)
        self.assertEqual(spec.args[-6:-2], ("--type", "chat", "--id", "chat-3"))
        self.assertEqual(spec.args[-2], "--server")
        self.assertEqual(json.loads(spec.args[-1]), info.to_dict())
        self.assertFalse(spec.auto_restart)

    def test_log_level_passed_on(self) -> None:
        """A master told --log-level debug starts its servers so; info adds no option."""
        spec = server_command(self.config, self.info, log_level="debug")
        self.assertEqual(spec.args[-2:], ("--log-level", "debug"))
        self.assertNotIn(
            "--log-level", server_command(self.config, self.info, log_level="info").args
        )

    def test_build_master_passes_its_level(self) -> None:
        """build_master's log_level reaches the command of every server it spawns."""
        master = build_master(
            self.config, MemoryReactorClock(), on_listen_failure=lambda: None, log_level="warn"
        )
        spec = master.command(self.config, self.info, True)
        self.assertEqual(spec.args[-2:], ("--log-level", "warn"))


class AdminTests(MasterCase):
    """AdminAvatar: list, stop, add, restart and kill."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.admin = AdminAvatar(self.master)

    def rows(self, d: Deferred[bytes]) -> dict[str, dict[str, Any]]:
        rows = unpack_plain(self.successResultOf(d))
        return {row["id"]: row for row in rows}

    def test_list_rows(self) -> None:
        """list: the master first, then each declared server as up, starting or down."""
        self.reactor.advance(2)
        self.register("chat-1", pid=42)
        stats = pack_plain({"connections": 3, "uptime": 1.5})
        self.minds["chat-1"].answers["stats"] = lambda: succeed(stats)
        self.reactor.process("connector-2").exit(0)
        self.reactor.advance(1)
        raw = unpack_plain(self.successResultOf(self.admin.perspective_list()))
        self.assertEqual([row["id"] for row in raw], ["master-server-1", *ALL])
        rows = {row["id"]: row for row in raw}
        self.assertEqual(
            rows["master-server-1"],
            {
                "id": "master-server-1",
                "type": "master",
                "state": "up",
                "pid": os.getpid(),
                "host": "127.0.0.1",
                "port": MASTER_PORT,
                "clientPort": None,
                "uptime": 3.0,
                "connections": 1,
                "restarts": 0,
            },
        )
        self.assertEqual(
            rows["chat-1"],
            {
                "id": "chat-1",
                "type": "chat",
                "state": "up",
                "pid": 42,
                "host": "127.0.0.1",
                "port": 4250,
                "clientPort": None,
                "uptime": 1.5,
                "connections": 3,
                "restarts": 0,
            },
        )
        starting = rows["connector-1"]
        self.assertEqual(starting["state"], "starting")
        self.assertEqual(starting["pid"], self.reactor.process("connector-1").pid)
        self.assertEqual((starting["clientPort"], starting["uptime"]), (3010, None))
        self.assertIsNone(starting["connections"])
        self.assertEqual((rows["connector-2"]["state"], rows["connector-2"]["pid"]), ("down", None))
        self.assertEqual(self.minds["chat-1"].methods(), ["stats"])

    def test_list_counts_restarts(self) -> None:
        """list shows each server's automatic restarts, and stopping for a stopping master."""
        self.reactor.process("chat-2").exit(1)
        self.reactor.advance(0.5)
        self.master.stop_cluster()
        rows = self.rows(self.admin.perspective_list())
        self.assertEqual(rows["chat-2"]["restarts"], 1)
        self.assertEqual(rows["master-server-1"]["state"], "stopping")

    def test_list_gives_up_on_silent_stats(self) -> None:
        """A stats call that never answers is cancelled after STATS_TIMEOUT; list answers."""
        self.register("chat-1")
        self.register("chat-2")
        self.reactor.advance(2)
        cancelled: list[bool] = []
        silent: Deferred[bytes] = Deferred(lambda _: cancelled.append(True))
        self.minds["chat-1"].answers["stats"] = lambda: silent
        self.minds["chat-2"].answers["stats"] = lambda: succeed(pack_plain({"connections": 0}))
        d = self.admin.perspective_list()
        self.reactor.advance(STATS_TIMEOUT - 0.1)
        self.assertNoResult(d)
        self.reactor.advance(0.1)
        rows = self.rows(d)
        self.assertEqual((rows["chat-1"]["connections"], rows["chat-1"]["uptime"]), (None, 2.0))
        self.assertEqual(rows["chat-2"]["connections"], 0)
        self.assertEqual(cancelled, [True])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_list_survives_a_dead_link(self) -> None:
        """A member whose link is already dead still gets its row."""
        self.register("chat-1")

        def dead() -> Deferred[Any]:
            raise pb.DeadReferenceError("gone")

        self.minds["chat-1"].answers["stats"] = dead
        rows = self.rows(self.admin.perspective_list())
        self.assertEqual((rows["chat-1"]["state"], rows["chat-1"]["connections"]), ("up", None))

    def test_stop_everything(self) -> None:
        """stop([]) answers at once and schedules the master's stop_process for the next turn."""
        answer = self.admin.perspective_stop(pack_plain([]))
        self.assertEqual(unpack_plain(answer), {"stopping": "cluster"})  # type: ignore[arg-type]
        self.assertEqual(self.stop_process_calls, 0)
        self.reactor.advance(0)
        self.assertEqual(self.stop_process_calls, 1)

    def test_stop_named_servers(self) -> None:
        """stop([ids]) stops those servers for good and answers once they ended."""
        d = self.admin.perspective_stop(pack_plain(["chat-1"]))
        assert isinstance(d, Deferred)
        self.assertEqual(self.reactor.process("chat-1").signals, ["TERM"])
        self.assertNoResult(d)
        self.reactor.process("chat-1").exit(0)
        self.assertEqual(unpack_plain(self.successResultOf(d)), {"stopped": ["chat-1"]})
        self.assertNotIn("chat-1", self.master.declared)

    def test_stop_unknown_ids_refused(self) -> None:
        """stop of ids not in the cluster raises pb.Error naming them; nothing is signalled."""
        with self.assertRaises(pb.Error) as caught:
            self.admin.perspective_stop(pack_plain(["chat-1", "chat-7", "nope"]))
        self.assertIn("chat-7, nope", str(caught.exception))
        self.assertEqual(self.reactor.process("chat-1").signals, [])

    def test_stop_bad_arguments_refused(self) -> None:
        """stop refuses anything but msgpack bytes of a list of strings."""
        for payload in (["chat-1"], pack_plain("chat-1"), pack_plain([1]), b"\xc1"):
            self.assertRaises(pb.Error, self.admin.perspective_stop, payload)

    def test_add_spawns_a_new_server(self) -> None:
        """add spawns the entry with --server, declares it, and its registration is published."""
        self.register("chat-1")
        entry = {"type": "chat", "id": "chat-3", "host": "127.0.0.1", "port": 4252}
        answer = unpack_plain(self.admin.perspective_add(pack_plain(entry)))
        spawn = self.reactor.spawned[-1]
        self.assertEqual(answer, {"added": "chat-3", "pid": spawn.process.pid})
        self.assertEqual(spawn.server_id, "chat-3")
        info = ServerInfo(id="chat-3", type="chat", port=4252)
        self.assertEqual(spawn.args[-2:], ["--server", json.dumps(info.to_dict())])
        self.assertEqual(self.master.declared["chat-3"], info)
        self.register("chat-3", info=info)
        self.assertEqual(self.events("chat-1"), [("up", "chat-3")])

    def test_add_duplicate_refused(self) -> None:
        """add of an id already in the cluster is refused; nothing is spawned."""
        entry = {"type": "chat", "id": "chat-2", "port": 4299}
        with self.assertRaises(pb.Error) as caught:
            self.admin.perspective_add(pack_plain(entry))
        self.assertIn("exists already", str(caught.exception))
        self.assertEqual(len(self.reactor.spawned), 4)
        self.assertEqual(self.master.declared["chat-2"].port, 4251)

    def test_add_bad_entries_refused(self) -> None:
        """add refuses entries without a type or with invalid fields, and during a stop."""
        for entry in ({"id": "x-1"}, {"type": "chat"}, {"type": "chat", "id": "x", "port": -1}):
            self.assertRaises(pb.Error, self.admin.perspective_add, pack_plain(entry))
        self.master.stop_cluster()
        entry = {"type": "chat", "id": "chat-3", "port": 4252}
        self.assertRaises(pb.Error, self.admin.perspective_add, pack_plain(entry))
        self.assertNotIn("chat-3", self.master.declared)
        self.assertEqual(len(self.reactor.spawned), 4)

    def test_restart(self) -> None:
        """restart stops a started server (SIGTERM: it drains) and spawns it again; the
        answer, once the new process has registered, has the new pid."""
        old = self.reactor.process("chat-1")
        d = self.admin.perspective_restart("chat-1")
        self.assertEqual(old.signals, ["TERM"])
        self.assertNoResult(d)
        old.exit(0)
        new = self.reactor.process("chat-1")
        self.assertNotEqual(new.pid, old.pid)
        self.assertNoResult(d)
        self.register("chat-1", pid=new.pid)
        self.assertEqual(
            unpack_plain(self.successResultOf(d)), {"restarted": "chat-1", "pid": new.pid}
        )

    def test_restart_unknown_refused(self) -> None:
        """restart of an id the master did not start (or not a string) raises pb.Error."""
        self.assertRaises(pb.Error, self.admin.perspective_restart, "nope")
        self.assertRaises(pb.Error, self.admin.perspective_restart, b"chat-1")
        self.assertEqual(len(self.reactor.spawned), 4)

    def test_kill(self) -> None:
        """kill SIGKILLs every server it started and stops the master 0.2 s later."""
        answer = unpack_plain(self.admin.perspective_kill())
        self.assertEqual(answer, {"killed": sorted(ALL)})
        self.assertEqual([self.reactor.process(sid).signals for sid in ALL], [["KILL"]] * 4)
        self.reactor.advance(0.19)
        self.assertEqual(self.stop_process_calls, 0)
        self.reactor.advance(0.01)
        self.assertEqual(self.stop_process_calls, 1)


class ControlApiTests(MasterCase):
    """MasterService's control API (IClusterControl), which the avatars use."""

    def test_provides_the_control_api(self) -> None:
        """MasterService provides IClusterControl."""
        self.assertTrue(verifyObject(IClusterControl, self.master))

    def test_avatars_know_only_the_control_api(self) -> None:
        """cluster/avatars.py imports neither the master module nor anything of app/."""
        source = Path(avatars.__file__).read_text(encoding="utf-8")
        imported = [
            node.module or ""
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom)
        ]
        self.assertNotIn("master", imported)
        self.assertEqual([m for m in imported if m.startswith("app") or ".app" in m], [])

    def test_stop_of_a_member_ends_when_its_link_drops(self) -> None:
        """A server asked to stop over its link counts as stopped the moment its link
        drops (an event, no polling); no timer is left behind."""
        self.register_all()
        result = self.results(self.master.stop_servers(["chat-1"]))
        self.assertEqual(result, [])
        self.avatars["chat-1"].logout()
        self.assertEqual(result, [["chat-1"]])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_alive_times_out(self) -> None:
        """alive() of a member whose link never answers is False after the timeout, and a
        member that answers is True; no timer is left behind."""
        self.register("chat-1")
        self.register("chat-2")
        self.minds["chat-1"].answers["stats"] = lambda: Deferred()
        silent = self.results(self.master.alive("chat-1", 2.0))
        self.assertEqual(self.results(self.master.alive("chat-2", 2.0)), [True])
        self.reactor.advance(1.9)
        self.assertEqual(silent, [])
        self.reactor.advance(0.1)
        self.assertEqual(silent, [False])
        self.assertEqual(self.results(self.master.alive("nope")), [False])
        self.reactor.advance(0)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_stats_of_a_member(self) -> None:
        """stats() decodes what a member reports; None for a stranger or a silent link."""
        self.register("chat-1")
        report = pack_plain({"connections": 4})
        self.minds["chat-1"].answers["stats"] = lambda: succeed(report)
        self.assertEqual(self.results(self.master.stats("chat-1", 1.0)), [{"connections": 4}])
        self.assertEqual(self.results(self.master.stats("nope", 1.0)), [None])

    def test_refusals_are_command_refused(self) -> None:
        """Unknown ids, a taken id and a restart of a stranger raise CommandRefused."""
        self.assertRaises(CommandRefused, self.master.stop, ["nope"])
        self.assertRaises(CommandRefused, self.master.add, self.infos["chat-1"])
        self.assertRaises(CommandRefused, self.master.restart, "nope")
