"""End to end: a chat client's connection dies mid-chat and its session resumes.

A copy of the example game runs as a real cluster. Alice connects to a connector
through a TCP proxy in this process (the network between them) with the resuming
client; Bob chats in the same room through the other connector. The proxy kills
Alice's connection mid-run, once aborting the connector's socket first (the server
sees the drop first) and once the client's (the client sees it first); whatever was in
flight in the proxy is lost. Alice must get every one of Bob's messages exactly once and
in order, and the room must never have seen her leave.
"""

from __future__ import annotations

from random import Random
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import deferLater

from pomelo_twisted.client import ResumingClient, connect_resumable
from pomelo_twisted.testing.dropproxy import DroppingProxy

from .cluster import ENTRY, ClusterCase

JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
ROOM = "resume-room"
WAIT = 15.0  # bound on waiting for the pushes after a drop


class ResumeClusterTests(ClusterCase):
    """Alice's session survives connection drops while Bob chats."""

    def test_chat_survives_drops_from_either_side(self) -> Any:
        """Over TCP, every message sent while Alice reconnects reaches her once, in
        order; the room kept her (Bob's join lists her; her pushes never stopped)."""
        return self.chat_through_drops("tcp:127.0.0.1:{port}", (True, False))

    def test_websocket_session_resumes(self) -> Any:
        """The same over WebSocket (the hybrid port), one drop."""
        return self.chat_through_drops("ws://127.0.0.1:{port}/", (False,))

    @inlineCallbacks
    def chat_through_drops(self, target: str, drops: tuple[bool, ...]) -> Any:
        """Alice on ``target`` (through the proxy) while Bob chats; her connection is
        killed once per item of ``drops`` (True: the server's socket first)."""
        cluster = yield self.started()
        network = DroppingProxy("127.0.0.1", cluster.client_port("connector-server-1"))
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(network)
        self.addCleanup(port.stopListening)
        address = target.format(port=port.getHost().port)
        alice: ResumingClient = yield connect_resumable(
            reactor, address, Random(5), initial_delay=0.05, max_delay=0.5, timeout=5.0
        )
        self.addCleanup(alice.close)
        resumed: list[ResumingClient] = []
        failed: list[str] = []
        alice.on_reconnect(resumed.append)
        alice.on_resume_failed(failed.append)
        got: list[int] = []
        alice.on("onChat", lambda body: got.append(int(body["content"])))
        reply = yield alice.request(ENTRY, {"uid": "alice", "rid": ROOM})
        self.assertEqual(reply["code"], 200)
        yield alice.request(JOIN, {"rid": ROOM})
        bob = yield self.client(cluster, "connector-server-2", "bob", ROOM)
        yield bob.request(JOIN, {"rid": ROOM})

        sent = 0
        for server_side_first in drops:
            for _ in range(5):
                sent += 1
                yield bob.request(SEND, {"rid": ROOM, "content": str(sent)})
            network.kill(server_side_first=server_side_first)
            members = yield bob.request(JOIN, {"rid": ROOM})
            self.assertIn("alice", members["members"])  # parked, not gone
            for _ in range(10):  # while Alice is away: on the dead socket or parked
                sent += 1
                yield bob.request(SEND, {"rid": ROOM, "content": str(sent)})
            yield self.wait_for(lambda n=sent: len(got) >= n and alice.connected)
        for _ in range(3):
            sent += 1
            yield bob.request(SEND, {"rid": ROOM, "content": str(sent)})
        yield self.wait_for(lambda: len(got) >= sent)

        self.assertEqual(got, list(range(1, sent + 1)))
        self.assertEqual((len(resumed), failed), (len(drops), []))
        self.assertEqual(len(network.connections), len(drops) + 1)
        members = yield bob.request(JOIN, {"rid": ROOM})
        self.assertIn("alice", members["members"])
        reply = yield alice.request(ENTRY, {"uid": "alice", "rid": ROOM})
        self.assertEqual(reply["code"], 200)  # the same session: still bound to alice
        self.assertEqual(cluster.tracebacks(), {})

    @inlineCallbacks
    def wait_for(self, condition: Any) -> Any:
        """Fire once ``condition()`` holds; fail after WAIT seconds."""
        deadline = reactor.seconds() + WAIT
        while not condition():
            if reactor.seconds() > deadline:
                raise AssertionError(f"not met after {WAIT:g} s")
            yield deferLater(reactor, 0.02, lambda: None)
