"""Drain and restart in a real cluster: kicks with the reason, rooms kept, nothing lost."""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import LoopingCall, deferLater

from pomelo_twisted.client import connect

from .cluster import ClusterCase
from .test_cluster import CHAT_ECHO, JOIN, SEND, room_on


class DrainClusterTests(ClusterCase):
    """``pomelo-twisted drain`` and ``restart`` of a running example cluster."""

    @inlineCallbacks
    def test_drain_of_a_connector_kicks_with_the_reason(self) -> Any:
        """drain connector-server-1: its client is kicked with "server restarting", the
        process exits 0, the master logs nothing above info about it, and new clients
        are refused on its port."""
        cluster = yield self.started()
        kicks: list[str] = []
        client = yield self.client(cluster, "connector-server-1", "dora", "room-d")
        client.on_kick(kicks.append)
        out, err, code = yield cluster.cli("drain", "connector-server-1", "--grace", "2")
        self.assertEqual((code, err), (0, ""), out)
        self.assertIn("drained connector-server-1: 1 clients kicked", out)
        reason = yield client.closed
        self.assertEqual(kicks, ["server restarting"])
        self.assertIn("server restarting", reason)
        yield cluster.wait_for_log(r"server connector-server-1 stopped \(code 0, signal None\)")
        listing, _, _ = yield cluster.cli("list")
        self.assertNotIn("connector-server-1", listing)
        port = cluster.client_port("connector-server-1")
        refused = connect(reactor, f"tcp:127.0.0.1:{port}", timeout=2.0)
        yield self.assertFailure(refused, Exception)
        server_log = cluster.log("connector-server-1")
        self.assertIn("no longer accepting clients", server_log)
        for name in ["master", *cluster.server_ids()]:
            self.assertNotRegex(cluster.log(name), r"#(warn|error|critical)\]", name)
        self.assertEqual(cluster.tracebacks(), {})

    @inlineCallbacks
    def test_restart_of_a_chat_server_keeps_its_room_and_fails_nothing(self) -> Any:
        """restart chat-server-1 while two players on two connectors send to a room it
        serves: every request answers ok, the room keeps both members (a push after the
        restart reaches both), and no client is disconnected."""
        cluster = yield self.started()
        rid = room_on("chat-server-1")
        alice = yield self.client(cluster, "connector-server-1", "alice", rid)
        bob = yield self.client(cluster, "connector-server-2", "bob", rid)
        yield alice.request(JOIN, {"rid": rid})
        joined = yield bob.request(JOIN, {"rid": rid})
        self.assertEqual(joined["members"], ["alice", "bob"])
        results: list[bool] = []
        pending: list[Deferred[Any]] = []

        def tick() -> None:
            for client in (alice, bob):
                d = client.request(CHAT_ECHO, {"n": len(pending)}, timeout=20.0)
                d.addCallbacks(
                    lambda body: results.append("n" in body), lambda f: results.append(False)
                )
                pending.append(d)

        loop = LoopingCall(tick)
        loop.clock = reactor
        loop.start(0.05)
        yield deferLater(reactor, 0.3, lambda: None)
        out, err, code = yield cluster.cli("restart", "chat-server-1")
        self.assertEqual((code, err), (0, ""), out)
        yield deferLater(reactor, 0.3, lambda: None)
        loop.stop()
        yield gatherResults(pending)
        self.assertTrue(results)
        self.assertEqual(
            results.count(False), 0, f"{results.count(False)} of {len(results)} failed"
        )
        pushed = {name: Deferred() for name in ("alice", "bob")}
        for name, client in (("alice", alice), ("bob", bob)):
            client.on("onChat", lambda msg, d=pushed[name]: d.called or d.callback(msg))
        yield alice.request(SEND, {"rid": rid, "content": "still here?"})
        heard = yield gatherResults(list(pushed.values())).addTimeout(10, reactor)
        self.assertEqual([m["content"] for m in heard], ["still here?", "still here?"])
        self.assertIsNone(alice.close_reason)
        self.assertIsNone(bob.close_reason)
        chat_log = cluster.log("chat-server-1")
        self.assertIn("took over channels from its previous incarnation", chat_log)
        self.assertEqual(len(re.findall(r"started server chat-server-1 ", cluster.log())), 2)
        self.assertIn("server chat-server-1 serves again", cluster.log())
        self.assertEqual(cluster.tracebacks(), {})
        for name in ["master", *cluster.server_ids()]:
            self.assertNotRegex(cluster.log(name), r"#(warn|error|critical)\]", name)

    @inlineCallbacks
    def test_rolling_restart_of_the_connectors(self) -> Any:
        """restart --rolling connector: each connector in turn kicks its client with
        "server restarting" and serves again (a new client enters through it); exit 0."""
        cluster = yield self.started()
        kicks: list[str] = []
        for n, connector in enumerate(("connector-server-1", "connector-server-2")):
            client = yield self.client(cluster, connector, f"carl-{n}", "room-c")
            client.on_kick(kicks.append)
        out, err, code = yield cluster.cli("restart", "--rolling", "connector")
        self.assertEqual((code, err), (0, ""), out)
        self.assertEqual(len(re.findall(r"restarted connector-server-\d \(pid \d+\)", out)), 2)
        self.assertEqual(kicks, ["server restarting", "server restarting"])
        for n, connector in enumerate(("connector-server-1", "connector-server-2")):
            yield self.client(cluster, connector, f"dave-{n}", "room-c")
        self.assertEqual(cluster.tracebacks(), {})
        for name in ["master", *cluster.server_ids()]:
            self.assertNotRegex(cluster.log(name), r"#(warn|error|critical)\]", name)
