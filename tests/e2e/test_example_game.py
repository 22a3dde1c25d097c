"""End to end: ``twistd -n pomelo --app example_game --type all`` as a real process.

Every example route is driven with the Python client over TCP and over WebSocket
against one shared server process (started by the first test, stopped at exit: trial
has no class fixtures). After each test the server's log may hold no traceback but
those of the fail requests sent so far. The shutdown test runs a process of its own.
"""

from __future__ import annotations

import atexit
import itertools
from typing import Any, ClassVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from pomelo_twisted.client import PomeloClient, connect

from .game import GameProcess, log_problems, traceback_entries

ENTRY = "connector.entryHandler.entry"
ECHO = "connector.entryHandler.echo"
KICK = "connector.entryHandler.kick"
FAIL = "connector.entryHandler.fail"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
CHAT_ECHO = "chat.chatHandler.echo"
WAIT = 5.0  # bound on waiting for a push or a close
UTF8_BODY = {"text": "héllo 世界 🎮", "nested": {"n": [1, 2.5, None, True, "ü"]}}

_ids = itertools.count(1)
_shared: list[GameProcess] = []


@inlineCallbacks
def shared_game() -> Any:
    """The module's server process: started on first use, stopped at exit."""
    if not _shared:
        game = GameProcess()
        atexit.register(game.stop)
        _shared.append(game)
        game.start()
    yield _shared[0].wait_ready()
    return _shared[0]


class Pushes:
    """The bodies pushed to one client on a route, with a bounded wait for a count."""

    def __init__(self, client: PomeloClient, route: str) -> None:
        self.bodies: list[Any] = []
        self._waiters: list[tuple[int, Deferred[None]]] = []
        client.on(route, self._received)

    def _received(self, body: Any) -> None:
        self.bodies.append(body)
        for count, d in list(self._waiters):
            if len(self.bodies) >= count:
                self._waiters.remove((count, d))
                d.callback(None)

    def wait_for(self, count: int) -> Deferred[None]:
        """Fire once ``count`` pushes arrived; fail with a timeout after ``WAIT`` seconds."""
        d: Deferred[None] = Deferred()
        if len(self.bodies) >= count:
            d.callback(None)
        else:
            self._waiters.append((count, d))
            d.addTimeout(WAIT, reactor)
        return d


class ExampleGameMixin:
    """Every example route over one transport; subclasses choose it."""

    transport: ClassVar[str]

    @inlineCallbacks
    def setUp(self) -> Any:
        self.game = yield shared_game()

    def tearDown(self) -> None:
        problems = log_problems(self.game.log(), self.game.fail_requests)
        self.assertEqual(problems, [])  # type: ignore[attr-defined]

    def target(self) -> str:
        return self.game.tcp_target if self.transport == "tcp" else self.game.ws_target

    @inlineCallbacks
    def client(self) -> Any:
        client: PomeloClient = yield connect(reactor, self.target(), timeout=5.0)
        self.addCleanup(client.close)  # type: ignore[attr-defined]
        return client

    def uid(self) -> str:
        return f"{self.transport}-user-{next(_ids)}"

    @inlineCallbacks
    def entered(self) -> Any:
        """A connected client bound to a fresh uid: ``(client, uid)``."""
        client = yield self.client()
        uid = self.uid()
        reply = yield client.request(ENTRY, {"uid": uid})
        self.assertEqual(reply, {"code": 200, "uid": uid})  # type: ignore[attr-defined]
        return client, uid

    @inlineCallbacks
    def test_entry_binds_uid(self) -> Any:
        """entry answers {code: 200, uid}; the handshake carried the onChat dictionary."""
        client = yield self.client()
        uid = self.uid()
        reply = yield client.request(ENTRY, {"uid": uid})
        self.assertEqual(reply, {"code": 200, "uid": uid})  # type: ignore[attr-defined]
        self.assertIn("onChat", client.dictionary)  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_echo_utf8(self) -> Any:
        """connector echo returns a UTF-8 body (accents, CJK, emoji, nesting) unchanged."""
        client = yield self.client()
        reply = yield client.request(ECHO, UTF8_BODY)
        self.assertEqual(reply, UTF8_BODY)  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_echo_delays_complete_in_arrival_order(self) -> Any:
        """Echoes delayed 300/200/100 ms sent together complete in the order sent (the
        connector keeps each player's order)."""
        client = yield self.client()
        completed: list[int] = []

        def done(reply: Any, index: int) -> Any:
            completed.append(index)
            return reply

        bodies = [{"i": i, "delayMs": delay} for i, delay in enumerate((300, 200, 100))]
        requests = [
            client.request(ECHO, body).addCallback(done, i) for i, body in enumerate(bodies)
        ]
        replies = yield DeferredList(requests, fireOnOneErrback=True, consumeErrors=True)
        self.assertEqual([reply for _ok, reply in replies], bodies)  # type: ignore[attr-defined]
        self.assertEqual(completed, [0, 1, 2])  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_kick_reason_reaches_client(self) -> Any:
        """kick answers {code: 200, kicking: true}, then a kick with the reason ends the session."""
        client = yield self.client()
        kicked: Deferred[str] = Deferred()
        client.on_kick(kicked.callback)
        reason = f"bye {self.transport}"
        reply = yield client.request(KICK, {"reason": reason})
        self.assertEqual(reply, {"code": 200, "kicking": True})  # type: ignore[attr-defined]
        got = yield kicked.addTimeout(WAIT, reactor)
        self.assertEqual(got, reason)  # type: ignore[attr-defined]
        closed = yield client.closed.addTimeout(WAIT, reactor)
        self.assertEqual(closed, f"kicked: {reason}")  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_fail_answers_500_and_connection_survives(self) -> Any:
        """fail is answered {code: 500, msg}, logged once, and the connection stays usable."""
        client = yield self.client()
        self.game.fail_requests += 1
        reply = yield client.request(FAIL, {})
        self.assertEqual(reply.get("code"), 500)  # type: ignore[attr-defined]
        self.assertIsInstance(reply.get("msg"), str)  # type: ignore[attr-defined]
        problems = log_problems(self.game.log(), self.game.fail_requests)
        self.assertEqual(problems, [])  # type: ignore[attr-defined]
        again = yield client.request(ECHO, {"still": "up"})
        self.assertEqual(again, {"still": "up"})  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_unknown_routes_answered_404(self) -> Any:
        """An unknown server type or handler method is answered with code 404, no traceback."""
        client = yield self.client()
        for route in ("nosuch.handler.method", "connector.entryHandler.nosuch"):
            reply = yield client.request(route, {})
            self.assertEqual(reply.get("code"), 404, route)  # type: ignore[attr-defined]
        again = yield client.request(ECHO, {"still": "up"})
        self.assertEqual(again, {"still": "up"})  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_chat_echo_through_backend(self) -> Any:
        """chat echo is forwarded to the chat backend and returns the body unchanged."""
        client = yield self.client()
        reply = yield client.request(CHAT_ECHO, UTF8_BODY)
        self.assertEqual(reply, UTF8_BODY)  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_chat_push_reaches_every_member_once(self) -> Any:
        """send (request, then notify) pushes onChat exactly once to each member, sender too."""
        alice, alice_uid = yield self.entered()
        bob, bob_uid = yield self.entered()
        pushes = {"alice": Pushes(alice, "onChat"), "bob": Pushes(bob, "onChat")}
        rid = f"room-{self.uid()}"
        joined = yield alice.request(JOIN, {"rid": rid})
        self.assertEqual(  # type: ignore[attr-defined]
            joined, {"code": 200, "rid": rid, "members": [alice_uid]}
        )
        joined = yield bob.request(JOIN, {"rid": rid})
        self.assertEqual(joined["code"], 200)  # type: ignore[attr-defined]
        self.assertEqual(sorted(joined["members"]), sorted([alice_uid, bob_uid]))  # type: ignore[attr-defined]

        reply = yield alice.request(SEND, {"rid": rid, "content": "hi 👋"})
        self.assertEqual(reply, {"code": 200})  # type: ignore[attr-defined]
        for each in pushes.values():
            yield each.wait_for(1)
        first = {"rid": rid, "from": alice_uid, "content": "hi 👋"}
        self.assertEqual(  # type: ignore[attr-defined]
            {name: each.bodies for name, each in pushes.items()},
            {"alice": [first], "bob": [first]},
        )

        bob.notify(SEND, {"rid": rid, "content": "ho"})
        for each in pushes.values():
            yield each.wait_for(2)
        # A round trip on each connection: a duplicate push sent earlier would be in by now.
        for client in (alice, bob):
            yield client.request(ECHO, {})
        second = {"rid": rid, "from": bob_uid, "content": "ho"}
        self.assertEqual(  # type: ignore[attr-defined]
            {name: each.bodies for name, each in pushes.items()},
            {"alice": [first, second], "bob": [first, second]},
        )

    @inlineCallbacks
    def test_disconnect_leaves_channel(self) -> Any:
        """Closing a connection removes its uid from the room; later pushes reach the others."""
        alice, alice_uid = yield self.entered()
        bob, bob_uid = yield self.entered()
        rid = f"room-{self.uid()}"
        yield alice.request(JOIN, {"rid": rid})
        joined = yield bob.request(JOIN, {"rid": rid})
        self.assertEqual(sorted(joined["members"]), sorted([alice_uid, bob_uid]))  # type: ignore[attr-defined]
        yield bob.close()
        # The leave travels by RPC after the close: poll, bounded.
        deadline = reactor.seconds() + 2.0
        while True:
            joined = yield alice.request(JOIN, {"rid": rid})
            if bob_uid not in joined["members"] or reactor.seconds() >= deadline:
                break
            yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(  # type: ignore[attr-defined]
            joined, {"code": 200, "rid": rid, "members": [alice_uid]}
        )
        pushes = Pushes(alice, "onChat")
        reply = yield alice.request(SEND, {"rid": rid, "content": "alone"})
        self.assertEqual(reply, {"code": 200})  # type: ignore[attr-defined]
        yield pushes.wait_for(1)
        self.assertEqual(  # type: ignore[attr-defined]
            pushes.bodies, [{"rid": rid, "from": alice_uid, "content": "alone"}]
        )


class GameTCPTests(ExampleGameMixin, TestCase):
    """The example game over raw TCP."""

    transport = "tcp"


class GameWebSocketTests(ExampleGameMixin, TestCase):
    """The example game over WebSocket (same hybrid port)."""

    transport = "ws"


class ShutdownTests(TestCase):
    """SIGTERM on a process of its own (sorted and defined last)."""

    @inlineCallbacks
    def test_sigterm_stops_cleanly(self) -> Any:
        """SIGTERM with a client connected: the client is closed, exit 0, no stray traceback."""
        game = GameProcess()
        self.addCleanup(game.stop)
        game.start()
        yield game.wait_ready()
        client: PomeloClient = yield connect(reactor, game.tcp_target, timeout=5.0)
        self.addCleanup(client.close)
        reply = yield client.request(ENTRY, {"uid": "shutdown-user"})
        self.assertEqual(reply, {"code": 200, "uid": "shutdown-user"})
        game.fail_requests += 1
        reply = yield client.request(FAIL, {})
        self.assertEqual(reply.get("code"), 500)

        game.terminate()
        code = yield game.wait_exit()
        yield client.closed.addTimeout(WAIT, reactor)
        log = game.log()
        self.assertEqual(code, 0, log)
        self.assertEqual(log_problems(log, game.fail_requests), [], log)
        self.assertEqual(len(traceback_entries(log)), 1, log)
        self.assertIn("Main loop terminated", log)
