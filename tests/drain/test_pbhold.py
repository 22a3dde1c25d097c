"""Holding calls in the PB transport while a peer restarts (MemoryNetwork, Clock)."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from pomelo_twisted.discovery.interfaces import MembershipEvent
from pomelo_twisted.discovery.membership import apply_event
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc.remotes import RemoteDispatcher
from tests.rpc.helpers import ChatRemote
from tests.rpc.test_pb import CHAT, PbCase


class TransportHoldTests(PbCase):
    """A restarting peer's calls wait for its next incarnation instead of failing."""

    def setUp(self) -> None:
        super().setUp()
        self.join()

    def restart_chat(self) -> ChatRemote:
        """chat-1's process ends (its connections drop) and a new one serves its address."""
        self.network.unlisten(CHAT.rpc_client_endpoint)
        self.network.drop(CHAT.rpc_client_endpoint)
        self.flush()
        remote = ChatRemote("chat-1 again")
        dispatcher = RemoteDispatcher()
        dispatcher.add("chatRemote", remote)
        new = self.transport("chat-1")
        new.register("chat-1", dispatcher)
        self.serve(new, CHAT)
        return remote

    def test_held_call_reaches_the_next_incarnation(self) -> None:
        """A call made while chat-1 restarts is sent once its new process logs in, and
        is answered by it; nothing fails meanwhile."""
        settled = self.connector.holds.hold("chat-1", settle=1.0)
        self.assertEqual(self.successResultOf(settled), 0)
        d = self.call("record", "hello")
        self.assertNoResult(d)
        remote = self.restart_chat()
        self.assertNoResult(d)
        self.connector.reconnect("chat-1")
        self.clock.advance(2.0)
        self.flush()
        self.assertEqual(self.successResultOf(d), "chat-1 again")
        self.assertEqual(remote.received, [("record", ("hello",))])
        self.assertEqual(self.connector.holds.holding(), [])
        self.assertEqual(self.call("record").result, "chat-1 again")

    def test_hold_waits_for_the_calls_in_flight(self) -> None:
        """hold answers once the calls sent before it are answered (in_flight is 0)."""
        pending = self.call("later")
        self.assertEqual(self.connector.in_flight("chat-1"), 1)
        self.assertEqual(self.connector.in_flight(), 1)
        settled = self.connector.holds.hold("chat-1", settle=5.0)
        self.clock.advance(1.0)
        self.assertNoResult(settled)
        self.remote.pending[0].callback("done")
        self.flush()
        self.clock.advance(0.01)
        self.assertEqual(self.successResultOf(pending), "done")
        self.assertEqual(self.successResultOf(settled), 0)

    def test_removed_peer_ends_the_hold(self) -> None:
        """A restarting peer removed meanwhile: its held calls fail as unknown, at once."""
        self.connector.holds.hold("chat-1", settle=1.0)
        d = self.call("record")
        self.connector.remove_peer("chat-1")
        self.flush()
        failure = self.failureResultOf(d)
        self.assertIn("unknown server", failure.getErrorMessage())


class FakeServer:
    """What apply_event needs of connector-1 (an Application)."""

    def __init__(self, case: PbCase) -> None:
        self.server_id = "connector-1"
        self.rpc_transport = case.connector
        self.clock = case.clock
        self.servers: dict[str, list[ServerInfo]] = {"chat": [CHAT]}

    def servers_of(self, server_type: str) -> list[ServerInfo]:
        return self.servers.setdefault(server_type, [])

    def all_servers(self) -> list[ServerInfo]:
        return [s for group in self.servers.values() for s in group]

    def add_server(self, info: ServerInfo) -> None:
        group = self.servers_of(info.type)
        if info not in group:
            group.append(info)

    def remove_server(self, server_id: str) -> ServerInfo | None:
        for group in self.servers.values():
            for info in group:
                if info.id == server_id:
                    group.remove(info)
                    self.rpc_transport.remove_peer(server_id)
                    return info
        return None


class MembershipTests(PbCase):
    """The draining and restarting events, applied to a server."""

    def setUp(self) -> None:
        super().setUp()
        self.join()
        self.server = FakeServer(self)

    def apply(self, kind: str) -> Deferred[int] | None:
        return apply_event(self.server, MembershipEvent(kind, CHAT), 2.0)  # type: ignore[arg-type]

    def test_restarting_holds_and_answers(self) -> None:
        """restarting: chat-1 stays routed to, its calls are held; the answer is the
        count of calls still in flight to it (0); a later down keeps the hold."""
        settled = self.apply("restarting")
        assert settled is not None
        self.assertEqual(self.successResultOf(settled), 0)
        self.assertEqual(self.server.servers_of("chat"), [CHAT])
        self.assertEqual(self.connector.holds.holding(), ["chat-1"])
        self.assertIsNone(self.apply("down"))
        self.assertEqual(self.connector.holds.holding(), ["chat-1"])

    def test_draining_stops_new_forwards_only(self) -> None:
        """draining: chat-1 is no longer routed to, but its link stays (pushes, calls in
        flight); nothing is held; removed later closes the link."""
        settled = self.apply("draining")
        assert settled is not None
        self.assertEqual(self.successResultOf(settled), 0)
        self.assertEqual(self.server.servers_of("chat"), [])
        self.assertEqual(self.connector.peer_state("chat-1"), "up")
        self.assertEqual(self.connector.holds.holding(), [])
        self.assertEqual(self.successResultOf(self.call("record")), "chat-1")
        self.apply("removed")
        self.assertIsNone(self.connector.peer_state("chat-1"))
