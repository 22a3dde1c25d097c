"""The example chat game in memory: every route of example_game, as specified."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.globalchannels import FakeRedis, GlobalChannelService
from pomelo_twisted.protocol import MessageType, PackageType
from pomelo_twisted.session.backend import BackendSession
from pomelo_twisted.testing import GameConnection

from .helpers import EXAMPLE_GAME, RpcCounter, WireCapture, start_game

ENTRY = "connector.entryHandler.entry"
ECHO = "connector.entryHandler.echo"
KICK = "connector.entryHandler.kick"
FAIL = "connector.entryHandler.fail"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
CHAT_ECHO = "chat.chatHandler.echo"
WHERE = "chat.chatHandler.where"
ANNOUNCE = "chat.chatHandler.announce"


class ExampleGameTests(SynchronousTestCase):
    """Clients of the example game's connector, through the GameHarness."""

    def setUp(self) -> None:
        self.game = start_game(self, EXAMPLE_GAME)
        self.connector = self.game.app("connector-server-1")
        # Sessions that entered without a room route to the lobby's chat server.
        self.chat = self.game.app("chat-server-2")

    def login(self, uid: str) -> GameConnection:
        conn = self.game.connect()
        self.assertEqual(conn.call(ENTRY, {"uid": uid}), {"code": 200, "uid": uid})
        return conn

    def test_handlers_discovered_with_camel_case_routes(self) -> None:
        """Handler files are discovered per server type and named by their file stem."""
        self.assertEqual(
            sorted(self.connector.handler_routes()),
            [ECHO, ENTRY, FAIL, KICK],
        )
        self.assertEqual(
            sorted(self.chat.handler_routes()), [ANNOUNCE, CHAT_ECHO, JOIN, SEND, WHERE]
        )
        self.assertEqual([name for name, _ in self.chat.remotes.objects()], ["chatRemote"])

    def test_entry_binds_the_session(self) -> None:
        """entry answers {code: 200, uid} and binds the frontend session to the uid."""
        conn = self.login("alice")
        sessions = self.connector.session_service.get_by_uid("alice")
        self.assertEqual([s.id for s in sessions], [conn.agent.sid])
        self.assertEqual(conn.call(ENTRY, {"uid": "alice"}), {"code": 200, "uid": "alice"})

    def test_second_entry_with_another_uid_fails(self) -> None:
        """A second entry with another uid on the same session answers 500; the first
        binding stays."""
        conn = self.login("alice")
        body = conn.call(ENTRY, {"uid": "bob"})
        self.assertEqual(body["code"], 500)
        self.assertIn("alice", body["msg"])
        self.assertEqual(self.connector.session_service.uids(), ["alice"])

    def test_entry_without_uid_fails(self) -> None:
        """entry without a uid answers the handler's HandlerError."""
        conn = self.game.connect()
        self.assertEqual(conn.call(ENTRY, {}), {"code": 500, "msg": "uid required"})

    def test_echo_returns_the_body(self) -> None:
        """echo answers the body unchanged."""
        conn = self.game.connect()
        body = {"text": "hé", "n": [1, 2.5, None], "nested": {"ok": True}}
        self.assertEqual(conn.call(ECHO, body), body)

    def test_echo_delay_waits_on_the_clock(self) -> None:
        """echo with delayMs answers only once the clock has moved that far."""
        conn = self.game.connect()
        d = conn.request(ECHO, {"delayMs": 250, "x": 1})
        self.game.advance(0.249)
        self.assertNoResult(d)
        self.game.advance(0.001)
        self.assertEqual(self.successResultOf(d), {"delayMs": 250, "x": 1})

    def test_kick(self) -> None:
        """kick answers {code: 200, kicking: true}, then the client gets the kick with the
        reason and the connection closes."""
        conn = self.login("alice")
        events: list[Any] = []
        conn.client.on_kick(lambda reason: events.append(("kick", reason)))
        wire = WireCapture(conn)
        conn.client.request(KICK, {"reason": "bye now"}).addCallback(
            lambda body: events.append(("response", body))
        )
        self.game.settle()
        self.assertEqual(
            events, [("response", {"code": 200, "kicking": True}), ("kick", "bye now")]
        )
        self.assertEqual(conn.kicks, ["bye now"])
        self.assertEqual([kind for kind, _ in wire.packages], [PackageType.DATA, PackageType.KICK])
        self.assertFalse(conn.client.connected)
        self.assertEqual(self.successResultOf(conn.client.closed), "kicked: bye now")
        self.assertEqual(len(self.connector.session_service), 0)
        self.assertEqual(self.connector.session_service.uids(), [])

    def test_fail_answers_500_and_the_connection_stays(self) -> None:
        """fail answers 500 (the exception is logged) and the connection stays usable."""
        conn = self.game.connect()
        self.assertEqual(conn.call(FAIL), {"code": 500, "msg": "internal server error"})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(conn.client.connected)
        self.assertEqual(conn.call(ECHO, {"still": "here"}), {"still": "here"})

    def test_join_answers_the_members(self) -> None:
        """join answers {code: 200, rid, members} with the members in join order."""
        alice, bob = self.login("alice"), self.login("bob")
        self.assertEqual(
            alice.call(JOIN, {"rid": "lobby"}), {"code": 200, "rid": "lobby", "members": ["alice"]}
        )
        self.assertEqual(
            bob.call(JOIN, {"rid": "lobby"}),
            {"code": 200, "rid": "lobby", "members": ["alice", "bob"]},
        )

    def test_join_before_entry_fails(self) -> None:
        """join on a session with no uid answers 500 'call connector.entryHandler.entry first'."""
        conn = self.game.connect()
        self.assertEqual(
            conn.call(JOIN, {"rid": "lobby"}),
            {"code": 500, "msg": "call connector.entryHandler.entry first"},
        )

    def test_send_pushes_to_every_member_before_answering(self) -> None:
        """send pushes onChat {rid, from, content} to every member, the sender included,
        and the sender gets the push before the {code: 200} response."""
        alice, bob = self.login("alice"), self.login("bob")
        alice.call(JOIN, {"rid": "lobby"})
        bob.call(JOIN, {"rid": "lobby"})
        events: list[Any] = []
        alice.client.on("onChat", lambda body: events.append(("push", body)))
        bob_got = bob.collect("onChat")
        alice.client.request(SEND, {"rid": "lobby", "content": "hello"}).addCallback(
            lambda body: events.append(("response", body))
        )
        self.game.settle()
        push = {"rid": "lobby", "from": "alice", "content": "hello"}
        self.assertEqual(events, [("push", push), ("response", {"code": 200})])
        self.assertEqual(bob_got, [push])

    def test_send_to_an_unknown_room_fails(self) -> None:
        """send to a room nobody joined answers 500 naming the room."""
        conn = self.login("alice")
        self.assertEqual(
            conn.call(SEND, {"rid": "nowhere", "content": "x"}),
            {"code": 500, "msg": "no such room: nowhere"},
        )

    def test_send_as_notify_pushes_and_answers_nothing(self) -> None:
        """send as a notify pushes to every member and no response reaches the sender."""
        alice, bob = self.login("alice"), self.login("bob")
        alice.call(JOIN, {"rid": "lobby"})
        bob.call(JOIN, {"rid": "lobby"})
        wire = WireCapture(alice)
        alice_got, bob_got = alice.collect("onChat"), bob.collect("onChat")
        alice.notify(SEND, {"rid": "lobby", "content": "psst"})
        push = {"rid": "lobby", "from": "alice", "content": "psst"}
        self.assertEqual(alice_got, [push])
        self.assertEqual(bob_got, [push])
        self.assertEqual([m.type for m in wire.messages()], [MessageType.PUSH])
        self.assertEqual(alice.client.pending_requests, 0)

    def test_chat_echo_is_forwarded(self) -> None:
        """chat.chatHandler.echo is forwarded to the chat server, whose dispatcher runs it
        with a BackendSession copy of the frontend session."""
        seen: list[tuple[str, str, Any]] = []
        self.chat.before(lambda ctx: seen.append((ctx.route, type(ctx.session), ctx.session.uid)))
        conn = self.login("alice")
        self.assertEqual(conn.call(CHAT_ECHO, {"a": [1, 2]}), {"a": [1, 2]})
        self.assertEqual(seen, [(CHAT_ECHO, BackendSession, "alice")])

    def test_where_names_the_chat_server_of_the_room(self) -> None:
        """where answers the id of the chat server that serves the session's room."""
        conn = self.login("alice")
        self.assertEqual(conn.call(WHERE, {}), {"code": 200, "server": "chat-server-2"})

    def test_announce_without_redis_fails_naming_the_cause(self) -> None:
        """Without config/redis.json, announce answers 500 naming the missing file."""
        conn = self.login("alice")
        body = conn.call(ANNOUNCE, {"content": "hi"})
        self.assertEqual(body["code"], 500)
        self.assertIn("config/redis.json", body["msg"])

    def test_disconnect_leaves_every_channel(self) -> None:
        """Closing a connection removes its uid from every channel through chatRemote.leave."""
        calls = RpcCounter(self.connector.rpc_transport)
        alice, bob = self.login("alice"), self.login("bob")
        alice.call(JOIN, {"rid": "lobby"})
        alice.call(JOIN, {"rid": "solo"})
        bob.call(JOIN, {"rid": "lobby"})
        alice.disconnect()
        self.assertEqual(calls.counts()[("chat-server-1", "chatRemote", "leave")], 1)
        carol = self.login("carol")
        self.assertEqual(
            carol.call(JOIN, {"rid": "lobby"}),
            {"code": 200, "rid": "lobby", "members": ["bob", "carol"]},
        )
        self.assertIsNone(self.chat.channel_service.get("solo"))

    def test_bad_routes_are_answered_once(self) -> None:
        """An unknown method, handler or server type, or an invalid route, is answered
        exactly once with code 404 and a message; the connection stays usable."""
        conn = self.game.connect()
        wire = WireCapture(conn)
        cases = {
            "connector.entryHandler.nope": "no method 'nope'",
            "connector.nope.entry": "no handler 'nope'",
            "chat.chatHandler.nope": "no method 'nope'",
            "chat.nope.join": "no handler 'nope'",
            "area.areaHandler.move": "no route 'area.areaHandler.move'",
            "connector.entryHandler": "no route",
            "connector..echo": "no route",
        }
        for route, words in cases.items():
            body = conn.call(route, {})
            self.assertEqual(body["code"], 404, route)
            self.assertIn(words, body["msg"], route)
        self.assertEqual(len(wire.of_type(MessageType.RESPONSE)), len(cases))
        self.assertEqual(conn.call(ECHO, {"ok": 1}), {"ok": 1})


class RoomRouteTests(SynchronousTestCase):
    """The example places rooms on chat servers with the ``route`` setting's function."""

    def test_rooms_follow_the_route_setting(self) -> None:
        """With route=consistent-hash a room goes where the hash ring puts its name;
        without it, where crc32 mod n does; no room: the lobby's server."""
        from pomelo_twisted.gameconfig import ServerInfo
        from pomelo_twisted.loading import import_file
        from pomelo_twisted.rpc import consistent_hash_route, default_route

        module = import_file(EXAMPLE_GAME / "app.py", "example_app_route_")
        servers = [ServerInfo(id=f"chat-server-{i}", type="chat") for i in range(1, 4)]
        ring = consistent_hash_route()
        hashed, plain = module.rooms_placed_by(ring), module.rooms_placed_by(default_route)
        rooms = [f"room-{i}" for i in range(200)]
        session = {"rid": None}
        for rid in rooms:
            session["rid"] = rid
            self.assertEqual(hashed(session, servers), ring(rid, servers))
            self.assertEqual(plain(session, servers), default_route(rid, servers))
        self.assertTrue(any(ring(r, servers) != default_route(r, servers) for r in rooms))
        self.assertEqual(plain({}, servers), default_route(module.LOBBY, servers))


class WorldChannelTests(SynchronousTestCase):
    """The global channel "world" of the example, on a FakeRedis shared by every server."""

    def setUp(self) -> None:
        self.game = start_game(self, EXAMPLE_GAME)
        self.redis = FakeRedis(self.game.clock)
        self.world: dict[str, GlobalChannelService] = {}
        for server_id, app in self.game.apps.items():
            service = GlobalChannelService(self.redis, app.rpc_call, "test")
            app.components["global_channels"] = service
            self.world[server_id] = service

    def login(self, uid: str, frontend: str) -> GameConnection:
        conn = self.game.connect(frontend)
        self.assertEqual(conn.call(ENTRY, {"uid": uid}), {"code": 200, "uid": uid})
        return conn

    def members(self) -> dict[str, list[str]]:
        found: list[dict[str, list[str]]] = []
        self.world["chat-server-1"].members_by_frontend("world").addCallback(found.append)
        self.game.settle()
        return {frontend: sorted(uids) for frontend, uids in found[0].items()}

    def test_entry_joins_and_close_leaves_the_world(self) -> None:
        """Every player who enters joins "world" on its frontend; closing leaves it."""
        alice = self.login("alice", "connector-server-1")
        self.login("bob", "connector-server-2")
        self.assertEqual(
            self.members(), {"connector-server-1": ["alice"], "connector-server-2": ["bob"]}
        )
        alice.disconnect()
        self.game.settle()
        self.assertEqual(self.members(), {"connector-server-2": ["bob"]})

    def test_announce_pushes_once_per_member_one_rpc_per_frontend(self) -> None:
        """announce pushes onAnnounce to every member once, with one push RPC per frontend,
        and answers the frontends reached and the service's counters."""
        conns = {
            uid: self.login(uid, frontend)
            for uid, frontend in (
                ("alice", "connector-server-1"),
                ("bob", "connector-server-1"),
                ("carol", "connector-server-2"),
            )
        }
        got = {uid: conn.collect("onAnnounce") for uid, conn in conns.items()}
        reply = conns["alice"].call(ANNOUNCE, {"content": "hi"})
        self.game.settle()
        server = reply["server"]
        self.assertEqual(reply["frontends"], 2)
        self.assertEqual(
            reply["stats"],
            {"pushes": 1, "rpcs": 2, "rpc_errors": 0, "pushed_uids": 3, "redis_errors": 0},
        )
        body = {"from": "alice", "content": "hi", "server": server}
        self.assertEqual(got, {"alice": [body], "bob": [body], "carol": [body]})
