"""Paths across servers, in a game with two connectors and two chat servers (twofront):
channel push grouping, push route compression, BackendSession bind/push, single session,
the serial filter, the error handler and filter order through the Application."""

from __future__ import annotations

from typing import Any

from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client.errors import ConnectionClosed
from pomelo_twisted.protocol import MessageType
from pomelo_twisted.session.service import ANOTHER_LOGIN
from pomelo_twisted.testing import GameConnection, GameHarness

from .helpers import TWOFRONT, RpcCounter, WireCapture, start_game

ENTRY = "connector.entryHandler.entry"
ECHO = "connector.entryHandler.echo"
HANG = "connector.entryHandler.hang"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
PUSH_CALL = "pomelo.sys", "push"


def login(game: GameHarness, frontend_id: str, uid: str) -> GameConnection:
    """A client of ``frontend_id`` bound to ``uid``."""
    conn = game.connect(frontend_id)
    body = conn.call(ENTRY, {"uid": uid})
    assert body == {"code": 200, "uid": uid}, body
    return conn


class ChannelPushTests(SynchronousTestCase):
    """A room with members on both connectors, every join routed to chat-1."""

    def setUp(self) -> None:
        self.game = start_game(self, TWOFRONT)
        for frontend_id in ("connector-1", "connector-2"):
            self.game.app(frontend_id).route("chat", lambda session, servers: "chat-1")
        self.members = {
            "a": login(self.game, "connector-1", "a"),
            "b": login(self.game, "connector-1", "b"),
            "c": login(self.game, "connector-2", "c"),
            "d": login(self.game, "connector-2", "d"),
        }
        for conn in self.members.values():
            self.assertEqual(conn.call(JOIN, {"rid": "room"})["code"], 200)
        self.received = {uid: conn.collect("onChat") for uid, conn in self.members.items()}
        self.rpc = RpcCounter(self.game.app("chat-1").rpc_transport)

    def push_calls(self) -> dict[str, list[list[Any]]]:
        """The push calls made since setUp: frontend id -> the args of each call."""
        calls: dict[str, list[list[Any]]] = {}
        for server_id, service, method, args in self.rpc.calls:
            if (service, method) == PUSH_CALL:
                calls.setdefault(server_id, []).append(args)
        return calls

    def test_one_push_call_per_frontend(self) -> None:
        """A channel push makes exactly one pomelo.sys push call per frontend holding
        members, carrying that frontend's uids; every member receives it once."""
        self.assertEqual(
            self.members["a"].call(SEND, {"rid": "room", "content": "hi"}), {"code": 200}
        )
        push = {"from": "a", "content": "hi"}
        self.assertEqual(
            self.push_calls(),
            {
                "connector-1": [["onChat", push, ["a", "b"]]],
                "connector-2": [["onChat", push, ["c", "d"]]],
            },
        )
        self.assertEqual(self.received, {uid: [push] for uid in "abcd"})

    def test_each_push_is_one_call_per_frontend(self) -> None:
        """Two pushes: two calls per frontend, two messages per member."""
        self.members["c"].call(SEND, {"rid": "room", "content": "1"})
        self.members["b"].call(SEND, {"rid": "room", "content": "2"})
        counts = self.rpc.counts()
        self.assertEqual(counts[("connector-1", *PUSH_CALL)], 2)
        self.assertEqual(counts[("connector-2", *PUSH_CALL)], 2)
        for uid in "abcd":
            self.assertEqual([m["content"] for m in self.received[uid]], ["1", "2"])

    def test_frontend_without_members_gets_no_call(self) -> None:
        """Once connector-1's members have left, a push calls connector-2 only."""
        self.members["a"].disconnect()
        self.members["b"].disconnect()
        self.rpc.clear()
        self.members["c"].call(SEND, {"rid": "room", "content": "left?"})
        self.assertEqual(list(self.push_calls()), ["connector-2"])
        self.assertEqual(len(self.received["d"]), 1)

    def test_push_route_is_compressed(self) -> None:
        """The onChat push reaches the client with flag 0x07 and the dictionary code of
        onChat, not the route string."""
        wire = WireCapture(self.members["c"])
        self.members["a"].call(SEND, {"rid": "room", "content": "zip"})
        code = self.game.app("connector-2").dictionary.code_of("onChat")  # type: ignore[union-attr]
        self.assertGreater(code, 0)
        self.assertEqual(self.members["c"].client.dictionary["onChat"], code)
        pushes = [body for kind, body in wire.packages if body[:1] == b"\x07"]
        self.assertEqual(len(pushes), 1)
        self.assertEqual(pushes[0][1:3], code.to_bytes(2, "big"))
        self.assertNotIn(b"onChat", b"".join(wire.raw))
        (message,) = wire.of_type(MessageType.PUSH)
        self.assertEqual((message.route_code, message.route), (code, ""))
        self.assertEqual(self.received["c"], [{"from": "a", "content": "zip"}])


class BackendSessionTests(SynchronousTestCase):
    """A backend handler's session.bind / session.push reach the frontend Session."""

    def setUp(self) -> None:
        self.game = start_game(self, TWOFRONT)
        self.conn = self.game.connect("connector-2")
        self.sessions = self.game.app("connector-2").session_service
        assert self.sessions is not None

    def frontend_session(self) -> Any:
        return self.sessions.get(self.conn.agent.sid)

    def test_backend_bind_reaches_the_frontend(self) -> None:
        """session.bind on a backend binds the frontend session (and its uid index)."""
        body = self.conn.call("chat.chatHandler.login", {"uid": "zed"})
        self.assertEqual(body, {"code": 200, "uid": "zed"})
        self.assertEqual(self.frontend_session().uid, "zed")
        self.assertEqual(self.sessions.get_by_uid("zed"), [self.frontend_session()])
        self.assertEqual(self.conn.call("chat.chatHandler.whoami")["uid"], "zed")

    def test_backend_bind_to_another_uid_fails(self) -> None:
        """A backend bind of a session bound to another uid answers 500; nothing changes."""
        self.conn.call(ENTRY, {"uid": "amy"})
        body = self.conn.call("chat.chatHandler.login", {"uid": "zed"})
        self.assertEqual(body["code"], 500)
        self.assertEqual(self.sessions.uids(), ["amy"])

    def test_backend_push_reaches_the_frontend(self) -> None:
        """session.set + session.push on a backend store the setting on the frontend
        Session, and the next forwarded request carries it."""
        self.conn.call(ENTRY, {"uid": "amy"})
        body = self.conn.call("chat.chatHandler.remember", {"key": "k", "value": [1, "v"]})
        self.assertEqual(body, {"code": 200})
        self.assertEqual(self.frontend_session().settings, {"k": [1, "v"]})
        self.assertEqual(self.conn.call("chat.chatHandler.whoami")["settings"], {"k": [1, "v"]})


class SingleSessionTests(SynchronousTestCase):
    """The single_session setting of a frontend."""

    def test_second_login_kicks_the_first(self) -> None:
        """With single_session, a second login with the same uid kicks the first session
        with the reason 'another login'."""
        game = start_game(self, TWOFRONT, settings={"single_session": True})
        first = login(game, "connector-1", "sam")
        second = login(game, "connector-1", "sam")
        self.assertEqual(first.kicks, [ANOTHER_LOGIN])
        self.assertEqual(ANOTHER_LOGIN, "another login")
        self.assertFalse(first.client.connected)
        self.assertTrue(second.client.connected)
        sessions = game.app("connector-1").session_service
        assert sessions is not None
        self.assertEqual([s.id for s in sessions.get_by_uid("sam")], [second.agent.sid])
        self.assertEqual(second.call(ECHO, {"ok": True}), {"ok": True})

    def test_without_single_session_both_stay(self) -> None:
        """Without the setting a uid may have several sessions."""
        game = start_game(self, TWOFRONT)
        first = login(game, "connector-1", "sam")
        second = login(game, "connector-1", "sam")
        self.assertEqual(first.kicks, [])
        self.assertTrue(first.client.connected and second.client.connected)
        sessions = game.app("connector-1").session_service
        assert sessions is not None
        self.assertEqual(len(sessions.get_by_uid("sam")), 2)


class ConnectorFilterTests(SynchronousTestCase):
    """The fixture's SerialFilter, the error handler and filter order on a live connector."""

    def setUp(self) -> None:
        self.game = start_game(self, TWOFRONT)
        self.connector = self.game.app("connector-1")
        self.conn = self.game.connect("connector-1")

    def test_serial_filter_answers_in_arrival_order(self) -> None:
        """Requests of one session with delays 30, 20, 10 ms run one after another and are
        answered in arrival order."""
        answered: list[tuple[int, float]] = []
        for delay in (30, 20, 10):
            self.conn.client.request(ECHO, {"delayMs": delay}).addCallback(
                lambda body: answered.append((body["delayMs"], round(self.game.clock.seconds(), 3)))
            )
        self.game.settle()
        serial = self.connector.get("serial_filter")
        self.assertEqual(serial.queued(self.conn.agent.session), 3)
        for _ in range(10):
            self.game.advance(0.01)
        self.assertEqual(answered, [(30, 0.03), (20, 0.05), (10, 0.06)])
        self.assertEqual(len(serial), 0)

    def test_serial_filter_is_per_session(self) -> None:
        """Another session's request does not wait for a slow one."""
        other = self.game.connect("connector-1")
        slow = self.conn.request(ECHO, {"delayMs": 50})
        self.assertEqual(other.call(ECHO, {"fast": 1}), {"fast": 1})
        self.assertNoResult(slow)
        self.game.advance(0.05)
        self.successResultOf(slow)

    def test_serial_timeout_releases_a_stuck_request(self) -> None:
        """A request that never answers holds the session's turn for the filter's timeout
        (1 s) only; then the next request runs."""
        log_events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(log_events.append)
        self.addCleanup(globalLogPublisher.removeObserver, log_events.append)
        stuck = self.conn.request(HANG)
        stuck.addErrback(lambda failure: failure.trap(ConnectionClosed))  # at game.stop
        after = self.conn.request(ECHO, {"n": 2})
        self.game.advance(0.999)
        self.assertNoResult(after)
        self.game.advance(0.001)
        self.assertEqual(self.successResultOf(after), {"n": 2})
        self.assertNoResult(stuck)
        warnings = [formatEvent(e) for e in log_events if "held its turn" in formatEvent(e)]
        self.assertEqual(len(warnings), 1)
        self.assertIn(HANG, warnings[0])

    def test_error_handler_shapes_the_error_body(self) -> None:
        """app.set_error_handler decides the body of a failed request on that server only;
        a backend's own handler shapes its forwarded failures."""

        def shape(context: Any, failure: Failure) -> dict[str, Any]:
            return {"code": 418, "route": context.route, "error": failure.getErrorMessage()}

        self.connector.set_error_handler(shape)
        self.assertEqual(
            self.conn.call(ENTRY, {}),
            {"code": 418, "route": ENTRY, "error": "500: uid required"},
        )
        body = self.conn.call("connector.entryHandler.nope")
        self.assertEqual((body["code"], body["route"]), (418, "connector.entryHandler.nope"))
        other = self.game.connect("connector-2")
        self.assertEqual(other.call(ENTRY, {}), {"code": 500, "msg": "uid required"})
        for chat_id in ("chat-1", "chat-2"):
            self.game.app(chat_id).set_error_handler(
                lambda context, failure, chat_id=chat_id: {"code": 501, "by": chat_id}
            )
        body = self.conn.call("chat.chatHandler.nope")
        self.assertEqual(body["code"], 501)
        self.assertIn(body["by"], ("chat-1", "chat-2"))

    def test_global_filters_run_before_type_filters(self) -> None:
        """app.before/after: global filters run first, then those selected for the server
        type (the fixture's serial filter first among them), whatever the order added."""
        order: list[str] = []
        self.connector.before(lambda ctx: order.append("type-before"), "connector")
        self.connector.before(lambda ctx: order.append("global-before"))
        self.connector.after(lambda ctx, response: order.append("type-after"), "connector")
        self.connector.after(lambda ctx, response: order.append("global-after"))
        self.connector.before(lambda ctx: order.append("chat-only"), "chat")
        serial = self.connector.get("serial_filter")
        chain = self.connector.dispatcher.before_filters("connector")
        self.assertEqual(len(chain), 3)
        self.assertEqual(chain[1], serial.before)
        self.assertEqual(self.conn.call(ECHO, {"x": 1}), {"x": 1})
        self.assertEqual(order, ["global-before", "type-before", "global-after", "type-after"])
