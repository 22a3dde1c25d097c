"""Our Python client against the real pinus 1.7.4 chat server, over TCP and WebSocket.

Run with ``make test-interop`` (``POMELO_INTEROP=1``); skipped otherwise.
"""

from __future__ import annotations

import atexit
import itertools
from typing import Any, ClassVar

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.trial.unittest import SkipTest, TestCase

from pomelo_twisted.client import PomeloClient, connect

from .pinus import PinusPeer, skip_reason

pytestmark = pytest.mark.interop

_uids = itertools.count(1)
_peer: list[PinusPeer] = []


def shared_peer() -> PinusPeer:
    """One pinus peer for the whole run (trial has no class fixtures), stopped at exit."""
    if not _peer:
        peer = PinusPeer()
        peer.start()
        atexit.register(peer.stop)
        _peer.append(peer)
    return _peer[0]


class PinusInteropMixin:
    """The same checks over one transport; subclasses choose it."""

    transport: ClassVar[str]

    def setUp(self) -> None:
        reason = skip_reason()
        if reason is not None:
            raise SkipTest(reason)
        self.peer = shared_peer()

    def target(self) -> str:
        return self.peer.tcp_target if self.transport == "tcp" else self.peer.ws_target

    @inlineCallbacks
    def client(self) -> Any:
        client: PomeloClient = yield connect(reactor, self.target(), timeout=5.0)
        self.addCleanup(client.close)  # type: ignore[attr-defined]
        return client

    def uid(self) -> str:
        return f"{self.transport}-user-{next(_uids)}"

    @inlineCallbacks
    def test_entry_binds_uid(self) -> Any:
        """entry binds the session and answers {code: 200, uid}; the dictionary arrived."""
        client = yield self.client()
        uid = self.uid()
        reply = yield client.request("connector.entryHandler.entry", {"uid": uid})
        self.assertEqual(reply, {"code": 200, "uid": uid})  # type: ignore[attr-defined]
        self.assertIn("onChat", client.dictionary)  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_echo_utf8(self) -> Any:
        """A UTF-8 body (accents, CJK, emoji) comes back unchanged through a compressed route."""
        client = yield self.client()
        body = {"text": "héllo 世界 🎮", "n": [1, 2.5, None, True]}
        reply = yield client.request("connector.entryHandler.echo", body)
        self.assertEqual(reply, body)  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_out_of_order_completion(self) -> Any:
        """8 requests in flight complete out of order (delayMs), each with its own body."""
        client = yield self.client()
        completed: list[int] = []

        def done(reply: Any, index: int) -> Any:
            completed.append(index)
            return reply

        requests = []
        for index in range(8):
            body = {"i": index, "delayMs": 40 * (8 - index)}
            d = client.request("connector.entryHandler.echo", body)
            requests.append(d.addCallback(done, index))
        replies = yield DeferredList(requests, fireOnOneErrback=True, consumeErrors=True)
        bodies = [reply for _ok, reply in replies]
        self.assertEqual(  # type: ignore[attr-defined]
            bodies, [{"i": i, "delayMs": 40 * (8 - i)} for i in range(8)]
        )
        self.assertEqual(completed, list(reversed(range(8))))  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_chat_push_once_per_member(self) -> Any:
        """join + send: every member (sender included) gets each onChat push exactly once."""
        alice = yield self.client()
        bob = yield self.client()
        rid = f"room-{self.uid()}"
        received: dict[str, list[Any]] = {"alice": [], "bob": []}
        seen_both: Deferred[None] = Deferred()

        def on_chat(name: str) -> Any:
            def record(msg: Any) -> None:
                received[name].append(msg)
                if all(len(v) >= 2 for v in received.values()) and not seen_both.called:
                    seen_both.callback(None)

            return record

        alice.on("onChat", on_chat("alice"))
        bob.on("onChat", on_chat("bob"))
        uids = {}
        for name, client in (("alice", alice), ("bob", bob)):
            uids[name] = self.uid()
            yield client.request("connector.entryHandler.entry", {"uid": uids[name]})
            joined = yield client.request("chat.chatHandler.join", {"rid": rid})
            self.assertEqual(joined["code"], 200)  # type: ignore[attr-defined]
        self.assertEqual(  # type: ignore[attr-defined]
            sorted(joined["members"]), sorted(uids.values())
        )
        first = yield alice.request("chat.chatHandler.send", {"rid": rid, "content": "hi"})
        self.assertEqual(first, {"code": 200})  # type: ignore[attr-defined]
        yield bob.request("chat.chatHandler.send", {"rid": rid, "content": "ho"})
        yield seen_both
        expected = [
            {"rid": rid, "from": uids["alice"], "content": "hi"},
            {"rid": rid, "from": uids["bob"], "content": "ho"},
        ]
        self.assertEqual(received, {"alice": expected, "bob": expected})  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_fail_gives_error_response(self) -> Any:
        """A handler that throws is answered with code 500 and the connection stays usable."""
        client = yield self.client()
        reply = yield client.request("connector.entryHandler.fail", {})
        self.assertEqual(reply.get("code"), 500)  # type: ignore[attr-defined]
        again = yield client.request("connector.entryHandler.echo", {"still": "up"})
        self.assertEqual(again, {"still": "up"})  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_kick_reaches_client(self) -> Any:
        """The kick route answers, then the kick package's reason reaches on_kick."""
        client = yield self.client()
        kicked: Deferred[str] = Deferred()
        client.on_kick(kicked.callback)
        reply = yield client.request("connector.entryHandler.kick", {"reason": "bye now"})
        self.assertEqual(reply, {"code": 200, "kicking": True})  # type: ignore[attr-defined]
        reason = yield kicked
        self.assertEqual(reason, "bye now")  # type: ignore[attr-defined]


class PinusTCPTests(PinusInteropMixin, TestCase):
    """Against pinus over raw TCP."""

    transport = "tcp"


class PinusWebSocketTests(PinusInteropMixin, TestCase):
    """Against pinus over WebSocket (same hybrid port)."""

    transport = "ws"
