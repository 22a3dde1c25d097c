"""The example game as a real cluster: master + 2 connectors + 2 chat servers on loopback."""

from __future__ import annotations

import os
import re
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import LoopingCall, deferLater

from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import default_route

from .cluster import ClusterCase
from .test_example_game import Pushes

JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
CHAT_ECHO = "chat.chatHandler.echo"
CHATS = [ServerInfo(id="chat-server-1", type="chat"), ServerInfo(id="chat-server-2", type="chat")]


def room_on(server_id: str) -> str:
    """A room id that the example's room routing sends to ``server_id``."""
    for n in range(1000):
        rid = f"room-{n}"
        if default_route(rid, CHATS) == server_id:
            return rid
    raise AssertionError("no room maps to " + server_id)


class ClusterTests(ClusterCase):
    """``pomelo-twisted start``, clients on both connectors, ``list`` and ``stop``."""

    @inlineCallbacks
    def test_cluster_serves_both_connectors_and_stops_in_order(self) -> Any:
        """start brings up 5 processes; a room spanning both connectors delivers each push
        once per member; forwarding works on both chat servers; list shows every server;
        stop stops frontends, then backends, then the master, each exiting 0, no traceback."""
        cluster = yield self.started()
        out, err, code = yield cluster.cli("list")
        self.assertEqual(code, 0, err)
        for server_id in cluster.server_ids():
            self.assertRegex(out, rf"{server_id}\s+\w+\s+up\s+\d+")
        self.assertIn("master-server-1", out)

        for chat in ("chat-server-1", "chat-server-2"):
            rid = room_on(chat)
            alice = yield self.client(cluster, "connector-server-1", f"alice-{chat}", rid)
            bob = yield self.client(cluster, "connector-server-2", f"bob-{chat}", rid)
            pushes = {"alice": Pushes(alice, "onChat"), "bob": Pushes(bob, "onChat")}
            joined = yield alice.request(JOIN, {"rid": rid})
            self.assertEqual(joined["members"], [f"alice-{chat}"])
            joined = yield bob.request(JOIN, {"rid": rid})
            self.assertEqual(joined["members"], [f"alice-{chat}", f"bob-{chat}"])
            for n, sender in enumerate((alice, bob, alice)):
                reply = yield sender.request(SEND, {"rid": rid, "content": f"m{n}"})
                self.assertEqual(reply, {"code": 200})
            yield gatherResults([p.wait_for(3) for p in pushes.values()])
            # A forwarded round trip after the last send: any duplicate push is in by now.
            echoed = yield bob.request(CHAT_ECHO, {"n": [1, "ü"]})
            self.assertEqual(echoed, {"n": [1, "ü"]})
            for name, received in pushes.items():
                contents = [body["content"] for body in received.bodies]
                self.assertEqual(contents, ["m0", "m1", "m2"], name)
            self.assertIn(f"server {chat}", cluster.log("master"))

        out, err, code = yield cluster.cli("stop")
        self.assertEqual(code, 0, err)
        exit_code = yield cluster.wait_exit()
        self.assertEqual(exit_code, 0)
        log = cluster.log()
        stopped = {
            m.group(1): m.start() for m in re.finditer(r"server (\S+) stopped \(code 0,", log)
        }
        self.assertEqual(sorted(stopped), sorted(cluster.server_ids()), log)
        first_backend_stop = log.index("stopping server chat-")
        self.assertLess(
            max(stopped["connector-server-1"], stopped["connector-server-2"]), first_backend_stop
        )
        self.assertIn("Main loop terminated", log)
        self.assertEqual(cluster.tracebacks(), {})

    @inlineCallbacks
    def test_kill_9_of_a_chat_server(self) -> Any:
        """kill -9 chat-server-1 under load: its requests get errors within 1 s, the master
        restarts it, requests succeed again within 5 s, no client connection dies."""
        cluster = yield self.started()
        rid = room_on("chat-server-1")
        clients = []
        for n, connector in enumerate(("connector-server-1", "connector-server-2")):
            client = yield self.client(cluster, connector, f"player-{n}", rid)
            clients.append(client)
        results: list[tuple[float, float, bool]] = []  # (sent, answered, ok)
        pending: list[Deferred[Any]] = []

        def tick() -> None:
            for client in clients:
                sent = reactor.seconds()
                d = client.request(CHAT_ECHO, {"t": sent}, timeout=15.0)

                def answered(body: Any, sent: float = sent) -> None:
                    ok = body == {"t": sent}
                    results.append((sent, reactor.seconds(), ok))

                d.addCallback(answered)
                pending.append(d)

        loop = LoopingCall(tick)
        loop.clock = reactor
        loop.start(0.05)
        yield deferLater(reactor, 0.5, lambda: None)
        pid = int(re.findall(r"started chat-server-1 \(chat\) as pid (\d+)", cluster.log())[-1])
        killed_at = reactor.seconds()
        os.kill(pid, signal.SIGKILL)
        deadline = killed_at + 8.0
        while reactor.seconds() < deadline:
            recovered = [r for r in results if r[0] > killed_at and r[2]]
            failed = [r for r in results if r[0] > killed_at and not r[2]]
            if failed and recovered and recovered[0][0] > failed[-1][0]:
                break
            yield deferLater(reactor, 0.1, lambda: None)
        loop.stop()
        yield gatherResults(pending)

        after = [r for r in results if r[0] >= killed_at]
        errors = [r for r in after if not r[2]]
        self.assertTrue(errors, "no request failed after the kill")
        self.assertLess(max(answered - sent for sent, answered, _ in errors), 1.0)
        first_ok = min(sent for sent, _, ok in after if ok and sent > errors[0][0])
        self.assertLess(first_ok - killed_at, 5.0)
        self.assertTrue(all(ok for sent, _, ok in after if sent > first_ok + 0.5))
        self.assertRegex(cluster.log(), r"server chat-server-1 exited with code None \(signal 9\)")
        self.assertEqual(len(re.findall(r"started connector-server-1", cluster.log())), 1)
        for client in clients:
            self.assertIsNone(client.close_reason)
        self.assertEqual(cluster.tracebacks(), {})
