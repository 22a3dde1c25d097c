"""The monitor component: registration with the master and the membership it publishes.

Most tests drive ``MonitorComponent`` and ``MonitorClient`` directly with a
fake master reference; the last class runs a real master's PB portal on a
``MemoryNetwork`` and real monitors logging in to it, on one Clock.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides
from zope.interface.verify import verifyObject

from pomelo_twisted.app.application import Application
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.cluster.monitor import MonitorClient, MonitorComponent
from pomelo_twisted.cluster.supervisor import Supervisor
from pomelo_twisted.discovery.membership import JOIN_WAIT
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig, ServerInfo
from pomelo_twisted.interfaces import IComponent
from pomelo_twisted.rpc import LocalRpcTransport
from pomelo_twisted.rpc.payload import pack_plain, unpack_plain
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.rpc.pbauth import make_portal
from pomelo_twisted.rpc.pbconnection import PersistentLogin
from pomelo_twisted.testing.network import MemoryNetwork

from .fakes import SECRET, SERVERS, FakeMind, ProcessReactor, write_game

INFOS = {
    entry["id"]: ServerInfo.from_entry(server_type, entry)
    for server_type, entries in SERVERS.items()
    for entry in entries
}
CHAT_1, CHAT_2 = INFOS["chat-1"], INFOS["chat-2"]
CONNECTOR_1 = INFOS["connector-1"]
MASTER_ENDPOINT = "tcp:host=127.0.0.1:port=3005"
MASTER_ADDRESS = "master"


def up(info: ServerInfo) -> dict[str, Any]:
    return {"event": "up", "server": info.to_dict()}


def ids(app: Application) -> list[str]:
    """The ids of every server ``app`` knows, sorted."""
    return sorted(info.id for info in app.all_servers())


class AfterStartProbe:
    """A component counting its after_start calls (provides IComponent via alsoProvides)."""

    name = "probe"

    def __init__(self) -> None:
        self.after_starts = 0
        alsoProvides(self, IComponent)

    def start(self) -> None:
        """Nothing to start."""

    def after_start(self) -> None:
        self.after_starts += 1

    def stop(self, force: bool) -> None:
        """Nothing to stop."""


class MonitorCase(SynchronousTestCase):
    """chat-1's Application (in-process RPC) with its monitor, on a Clock."""

    def setUp(self) -> None:
        self.clock = ProcessReactor()
        self.stops = 0
        self.app, self.monitor = self.make(CHAT_1, {"chat": [CHAT_1]})
        self.client = MonitorClient(self.monitor)

    def make(
        self, info: ServerInfo, servers: dict[str, list[ServerInfo]], rpc: Any = None
    ) -> tuple[Application, MonitorComponent]:
        app = Application(
            info,
            reactor=self.clock,
            rpc=rpc or LocalRpcTransport(self.clock),
            servers=servers,
        )
        monitor = MonitorComponent(
            app,
            MASTER_ENDPOINT,
            SECRET,
            stop_process=self.stop_process,
            rng=random.Random(1),
            pid=123,
        )
        return app, monitor

    def stop_process(self) -> None:
        self.stops += 1

    def master(self, answer: Deferred[Any]) -> FakeMind:
        """A fake master reference whose register call gives ``answer``."""
        master = FakeMind()
        master.answers["register"] = lambda payload: answer
        return master

    def answer(self, *infos: ServerInfo) -> Deferred[Any]:
        return succeed(pack_plain({"servers": [info.to_dict() for info in infos]}))


class ComponentTests(MonitorCase):
    """The component itself: interface and link lifecycle."""

    def test_provides_icomponent(self) -> None:
        """MonitorComponent is an IComponent named monitor."""
        self.assertTrue(verifyObject(IComponent, self.monitor))
        self.assertEqual(self.monitor.name, "monitor")
        self.assertEqual(self.monitor.connection.name, "chat-1")

    def test_connects_once_the_app_started(self) -> None:
        """start() connects only when the application's started fires; stop() leaves."""
        network = MemoryNetwork()
        self.monitor.connection = PersistentLogin(
            network.endpoint(MASTER_ADDRESS), "chat-1", SECRET, clock=self.clock, jitter=lambda: 0
        )
        self.monitor.start()
        self.assertEqual(network.attempts, 0)
        self.app.started.callback(None)
        self.assertEqual(network.attempts, 1)
        self.successResultOf(self.monitor.stop(False))
        self.assertEqual(self.monitor.connection.state, "stopped")
        self.clock.advance(60)
        self.assertEqual(network.attempts, 1)


class RegistrationTests(MonitorCase):
    """_register: what is sent, and what the answer does to the membership."""

    def test_register_payload(self) -> None:
        """The monitor registers its own ServerInfo and pid."""
        master = self.master(self.answer(CHAT_1))
        self.successResultOf(self.monitor._register(master))  # type: ignore[arg-type]
        self.assertEqual(
            master.calls, [("register", (pack_plain({"server": CHAT_1.to_dict(), "pid": 123}),))]
        )
        self.assertEqual(self.monitor.registered, 1)

    def test_membership_from_the_answer(self) -> None:
        """Servers the master lists are added (or updated); ones it does not are dropped."""
        stale = ServerInfo(id="chat-9", type="chat", port=4259)
        self.app.add_server(stale)
        moved = ServerInfo(id="chat-2", type="chat", port=5555)
        self.app.add_server(CHAT_2)
        answer = self.answer(CONNECTOR_1, CHAT_1, moved)
        self.successResultOf(self.monitor._register(self.master(answer)))  # type: ignore[arg-type]
        self.assertEqual(ids(self.app), ["chat-1", "chat-2", "connector-1"])
        self.assertEqual(self.app.servers_of("chat")[1].port, 5555)
        self.assertEqual(self.app.servers_of("connector"), [CONNECTOR_1])

    def test_answer_without_itself(self) -> None:
        """The server never drops itself, even when the master's answer omits it."""
        answer = self.answer(CHAT_2)
        self.successResultOf(self.monitor._register(self.master(answer)))  # type: ignore[arg-type]
        self.assertEqual(ids(self.app), ["chat-1", "chat-2"])

    def test_malformed_answer(self) -> None:
        """An answer that is not a server list is logged as an error and changes nothing."""
        for answer in (None, pack_plain(["chat-2"]), pack_plain({"servers": "chat-2"})):
            with capturedLogs() as events:
                d = self.monitor._register(self.master(succeed(answer)))  # type: ignore[arg-type]
            self.successResultOf(d)
            self.assertEqual([e["log_level"] for e in events], [LogLevel.error])
        self.assertEqual(self.monitor.registered, 0)
        self.assertEqual(ids(self.app), ["chat-1"])

    def test_refused_registration(self) -> None:
        """A refused registration is logged as critical and recorded in refused."""
        message = "a server with id 'chat-1' is registered already (pid 9)"
        master = self.master(fail(pb.Error(message)))
        with capturedLogs() as events:
            d = self.monitor._register(master)  # type: ignore[arg-type]
        self.successResultOf(d)
        self.assertEqual(self.monitor.refused, message)
        self.assertEqual(self.monitor.registered, 0)
        critical = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual([(e["server"], e["error"]) for e in critical], [("chat-1", message)])

    def test_connection_closed_during_registration(self) -> None:
        """The master closing the link before answering (a restart) refuses nothing: one
        info line, the server keeps running and registers at the next login."""
        lost = pb.PBConnectionLost(Failure(ConnectionDone("Connection was closed cleanly.")))
        with capturedLogs() as events:
            d = self.monitor._register(self.master(fail(lost)))  # type: ignore[arg-type]
        self.successResultOf(d)
        self.assertEqual(self.monitor.refused, "")
        self.assertEqual([e["log_level"] for e in events], [LogLevel.info])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class MembershipTests(MonitorCase):
    """membership(event): up, down, removed, and events to ignore."""

    def test_up_adds_a_server(self) -> None:
        """up adds a server the application did not know."""
        self.monitor.membership(up(CHAT_2))
        self.assertEqual(self.app.servers_of("chat"), [CHAT_1, CHAT_2])

    def test_up_updates_a_known_server(self) -> None:
        """up of a known server replaces its entry (a new address)."""
        self.app.add_server(CHAT_2)
        moved = ServerInfo(id="chat-2", type="chat", host="10.0.0.2", port=5555)
        self.monitor.membership(up(moved))
        self.assertEqual(self.app.servers_of("chat"), [CHAT_1, moved])

    def test_removed_drops_a_server(self) -> None:
        """removed drops the server from the membership."""
        self.app.add_server(CHAT_2)
        self.monitor.membership({"event": "removed", "server": CHAT_2.to_dict()})
        self.assertEqual(ids(self.app), ["chat-1"])

    def test_down_keeps_a_server(self) -> None:
        """down keeps the server (calls to it fail fast until it is back)."""
        self.app.add_server(CHAT_2)
        self.monitor.membership({"event": "down", "server": CHAT_2.to_dict()})
        self.assertEqual(ids(self.app), ["chat-1", "chat-2"])

    def test_events_about_itself_ignored(self) -> None:
        """Events about the server itself change nothing."""
        moved = ServerInfo(id="chat-1", type="chat", port=5555)
        self.monitor.membership(up(moved))
        self.monitor.membership({"event": "removed", "server": CHAT_1.to_dict()})
        self.assertEqual(self.app.servers_of("chat"), [CHAT_1])
        self.assertEqual(self.app.server, CHAT_1)

    def test_malformed_events_ignored(self) -> None:
        """Events that are not dicts or carry no valid server entry are ignored."""
        entry = CHAT_2.to_dict()
        for event in (
            None,
            ["up", entry],
            {"event": "up"},
            {"event": "up", "server": {**entry, "type": None}},
        ):
            self.monitor.membership(event)
        self.monitor.membership({"event": "up", "server": {**entry, "port": "x"}})
        self.assertEqual(len(self.flushLoggedErrors(ConfigError)), 1)
        self.assertEqual(ids(self.app), ["chat-1"])

    def test_remote_membership(self) -> None:
        """MonitorClient.remote_membership applies msgpack events and refuses anything else."""
        self.client.remote_membership(pack_plain(up(CHAT_2)))
        self.assertEqual(ids(self.app), ["chat-1", "chat-2"])
        self.assertRaises(pb.Error, self.client.remote_membership, up(CONNECTOR_1))
        self.assertEqual(ids(self.app), ["chat-1", "chat-2"])


class NetworkTransportTests(MonitorCase):
    """With a network RPC transport, membership events drive its peer connections."""

    def setUp(self) -> None:
        super().setUp()
        self.network = MemoryNetwork()
        self.transport = PbRpcTransport(
            self.clock,
            "connector-1",
            SECRET,
            rng=random.Random(7),
            connect=lambda info: self.network.endpoint(info.rpc_client_endpoint),
        )
        self.app, self.monitor = self.make(
            CONNECTOR_1, {"connector": [CONNECTOR_1]}, rpc=self.transport
        )

    def test_up_reconnects_at_once(self) -> None:
        """up of a peer that was down asks the transport to connect now, not after the backoff."""
        self.monitor.membership(up(CHAT_1))
        self.network.flush()
        self.assertEqual(self.transport.peer_state("chat-1"), "down")
        chat = PbRpcTransport(self.clock, "chat-1", SECRET, rng=random.Random(8))
        self.network.listen(CHAT_1.rpc_client_endpoint, chat.server_factory())
        self.network.flush()
        self.assertEqual(self.transport.peer_state("chat-1"), "down")
        self.monitor.membership(up(CHAT_1))
        self.network.flush()
        self.assertEqual(self.transport.peer_state("chat-1"), "up")

    def test_a_joining_server_is_routed_to_once_its_link_is_up(self) -> None:
        """A server that joins is connected to first: nothing routes to it until its link
        is up, then it is routed to (no request reaches a server that cannot take it)."""
        self.monitor.membership(up(CHAT_1))
        self.network.flush()
        self.assertEqual(self.transport.peer_state("chat-1"), "down")
        self.assertEqual(ids(self.app), ["connector-1"])
        chat = PbRpcTransport(self.clock, "chat-1", SECRET, rng=random.Random(8))
        self.network.listen(CHAT_1.rpc_client_endpoint, chat.server_factory())
        self.clock.advance(1)
        self.network.flush()
        self.assertEqual(self.transport.peer_state("chat-1"), "up")
        self.assertEqual(ids(self.app), ["chat-1", "connector-1"])

    def test_a_join_whose_link_never_comes_is_routed_after_the_wait(self) -> None:
        """After JOIN_WAIT seconds without a link the joining server is routed to anyway
        (its calls fail fast, as for any server that is down)."""
        self.monitor.membership(up(CHAT_1))
        self.clock.advance(JOIN_WAIT - 0.1)
        self.assertEqual(ids(self.app), ["connector-1"])
        self.clock.advance(0.1)
        self.assertEqual(ids(self.app), ["chat-1", "connector-1"])

    def test_when_peer_up(self) -> None:
        """when_peer_up: True at once for an up peer, False for an unknown one or one
        removed while waited for."""
        self.assertFalse(self.successResultOf(self.transport.when_peer_up("chat-1", 5)))
        self.transport.add_peer(CHAT_1)
        waited = self.transport.when_peer_up("chat-1", 5)
        self.assertNoResult(waited)
        self.transport.remove_peer("chat-1")
        self.assertFalse(self.successResultOf(waited))

    def test_removed_forgets_the_peer(self) -> None:
        """removed drops the peer from the transport too."""
        self.monitor.membership(up(CHAT_1))
        self.monitor.membership({"event": "removed", "server": CHAT_1.to_dict()})
        self.assertIsNone(self.transport.peer_state("chat-1"))
        self.assertEqual(ids(self.app), ["connector-1"])

    def test_stats_show_peers(self) -> None:
        """stats lists the transport's peers and the frontend's client connections."""
        self.monitor.membership(up(CHAT_1))
        self.network.flush()
        self.clock.advance(3)
        stats = unpack_plain(MonitorClient(self.monitor).remote_stats())
        self.assertEqual(
            stats, {"pid": 123, "uptime": 3.0, "connections": 0, "peers": {"chat-1": "down"}}
        )


class ClientTests(MonitorCase):
    """MonitorClient: what the master may call."""

    def test_remote_stop_on_the_next_turn(self) -> None:
        """remote_stop answers first and calls stop_process on the next clock turn."""
        self.client.remote_stop()
        self.assertEqual(self.stops, 0)
        self.clock.advance(0)
        self.assertEqual(self.stops, 1)

    def test_remote_stats(self) -> None:
        """remote_stats answers pid, uptime and connections as msgpack bytes."""
        self.clock.advance(2.5)
        stats = unpack_plain(self.client.remote_stats())
        self.assertEqual(stats, {"pid": 123, "uptime": 2.5, "connections": 0, "peers": {}})

    def test_remote_after_start(self) -> None:
        """remote_after_start runs the components' after_start once, firing with None."""
        probe = AfterStartProbe()
        self.app.load(probe)  # type: ignore[arg-type]
        self.assertIsNone(self.successResultOf(self.client.remote_after_start()))
        self.assertIsNone(self.successResultOf(self.client.remote_after_start()))
        self.assertEqual(probe.after_starts, 1)


class FullPathCase(SynchronousTestCase):
    """A real master portal on a MemoryNetwork; monitors log in over PB and register."""

    def setUp(self) -> None:
        self.reactor = ProcessReactor()
        self.network = MemoryNetwork()
        self.config = GameConfig(write_game(self))
        self.master = MasterService(
            self.reactor, self.config, SECRET, supervisor=Supervisor(self.reactor), spawn=False
        )  # spawn=False: nothing is probed or spawned
        factory = pb.PBServerFactory(make_portal(SECRET, self.master.portal_avatar))
        self.network.listen(MASTER_ADDRESS, factory)
        self.apps: dict[str, Application] = {}
        self.monitors: dict[str, MonitorComponent] = {}
        self.probes: dict[str, AfterStartProbe] = {}
        self.stops: list[str] = []

    def join(self, info: ServerInfo, pid: int = 500) -> MonitorComponent:
        """Start ``info``'s Application with its monitor logging in to the master."""
        app = Application(
            info,
            reactor=self.reactor,
            rpc=LocalRpcTransport(self.reactor),
            servers={info.type: [info]},
        )
        monitor = MonitorComponent(
            app,
            MASTER_ENDPOINT,
            SECRET,
            stop_process=lambda: self.stops.append(info.id),
            rng=random.Random(1),
            pid=pid,
        )
        monitor.connection = PersistentLogin(
            self.network.endpoint(MASTER_ADDRESS),
            info.id,
            SECRET,
            clock=self.reactor,
            jitter=lambda: 0.0,
            mind=MonitorClient(monitor),
            on_up=monitor._register,
        )
        probe = AfterStartProbe()
        app.load(monitor)
        app.load(probe)  # type: ignore[arg-type]
        app.startService()
        self.network.flush()
        self.apps.setdefault(info.id, app)
        self.monitors.setdefault(info.id, monitor)
        self.probes.setdefault(info.id, probe)
        return monitor


class FullPathTests(FullPathCase):
    """Registration, membership and stop over PB (see FullPathCase)."""

    def test_registration(self) -> None:
        """A monitor logs in, registers, and learns every declared server."""
        monitor = self.join(CHAT_1, pid=501)
        self.assertEqual(monitor.connection.state, "up")
        self.assertEqual(monitor.registered, 1)
        self.assertEqual(list(self.master.members), ["chat-1"])
        self.assertEqual(self.master.members["chat-1"].pid, 501)
        self.assertEqual(ids(self.apps["chat-1"]), sorted(INFOS))

    def test_published_events_reach_the_monitors(self) -> None:
        """up, down and removed published by the master reach the other monitors."""
        self.join(CHAT_1)
        moved = ServerInfo(
            id="connector-1", type="connector", port=4999, client_port=3010, frontend=True
        )
        self.join(moved)
        chat = self.apps["chat-1"]
        self.assertEqual(chat.servers_of("connector")[0], moved)
        with capturedLogs() as events:
            self.monitors["connector-1"].stop(False)
            self.network.flush()
        self.assertNotIn("connector-1", self.master.members)
        kinds = [(e["other"], e["kind"]) for e in events if e.get("other")]
        self.assertEqual(kinds, [("connector-1", "down")])
        self.assertIn("connector-1", ids(chat))
        self.master.stop_servers(["connector-1"])
        self.network.flush()
        self.assertNotIn("connector-1", ids(chat))

    def test_after_start_over_pb(self) -> None:
        """Once every declared server registered, each runs after_start once."""
        for info in INFOS.values():
            self.join(info)
        self.assertEqual(sorted(self.master.members), sorted(INFOS))
        self.reactor.advance(0)
        self.network.flush()
        self.assertEqual(
            {sid: p.after_starts for sid, p in self.probes.items()}, dict.fromkeys(INFOS, 1)
        )
        self.successResultOf(self.master.cluster_started)

    def test_duplicate_id_refused_over_pb(self) -> None:
        """A second server under a registered id is refused; its monitor records why."""
        self.join(CHAT_1, pid=501)
        with capturedLogs() as events:
            twin = self.join(CHAT_1, pid=502)
        self.assertIn("registered already", twin.refused)
        self.assertIn(LogLevel.critical, [e["log_level"] for e in events])
        self.assertEqual(self.master.members["chat-1"].pid, 501)

    def test_stop_from_the_master(self) -> None:
        """The master's stop reaches the monitor; its departure is published as removed."""
        self.join(CHAT_1)
        self.join(CONNECTOR_1)
        d = self.master.stop_servers(["chat-1"])
        self.network.flush()
        self.reactor.advance(0)
        self.assertEqual(self.stops, ["chat-1"])
        self.assertNoResult(d)
        self.monitors["chat-1"].stop(False)
        self.network.flush()
        self.reactor.advance(0.05)
        self.network.flush()
        self.assertEqual(self.successResultOf(d), ["chat-1"])
        self.assertNotIn("chat-1", ids(self.apps["connector-1"]))
        self.assertNotIn("chat-1", self.master.declared)

    def test_reconnects_and_registers_again(self) -> None:
        """A dropped link is published as down; the monitor reconnects and registers again."""
        self.join(CHAT_1)
        self.join(CHAT_2)
        self.network.drop(MASTER_ADDRESS)
        self.network.flush()
        self.assertEqual(self.master.members, {})
        self.assertEqual([m.connection.state for m in self.monitors.values()], ["down"] * 2)
        self.reactor.advance(0.2)  # past the first retry (0.1 s * 1.5, no jitter)
        self.network.flush()
        self.assertEqual(sorted(self.master.members), ["chat-1", "chat-2"])
        self.assertEqual([m.registered for m in self.monitors.values()], [2, 2])

    def test_admin_list_over_pb(self) -> None:
        """An admin login lists the cluster with each member's stats from its monitor."""
        self.join(CHAT_1, pid=501)
        self.join(CONNECTOR_1, pid=502)
        self.reactor.advance(4)
        admins: list[pb.RemoteReference] = []
        admin = PersistentLogin(
            self.network.endpoint(MASTER_ADDRESS),
            "admin",
            SECRET,
            clock=self.reactor,
            jitter=lambda: 0.0,
            on_up=admins.append,
        )
        admin.start()
        self.network.flush()
        d = admins[0].callRemote("list")
        self.network.flush()
        rows = {row["id"]: row for row in unpack_plain(self.successResultOf(d))}
        self.assertEqual(rows["master-server-1"]["connections"], 2)
        self.assertEqual(
            [
                (rows[i]["state"], rows[i]["pid"], rows[i]["connections"], rows[i]["uptime"])
                for i in ("chat-1", "connector-1", "chat-2")
            ],
            [("up", 501, 0, 4.0), ("up", 502, 0, 4.0), ("down", None, None, None)],
        )
        self.assertEqual(self.reactor.getDelayedCalls(), [])
