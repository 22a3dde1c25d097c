"""A libpitaya-speaking client against the example game as a real cluster, dictionary on."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks

from pomelo_twisted.protocol import PackageType, encode_package
from pomelo_twisted.testing.pitaya import PitayaClient, connect_pitaya

from ..e2e.cluster import ENTRY, ClusterCase
from ..e2e.test_example_game import Pushes
from .test_inflate import bomb

JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"


class PitayaClusterTests(ClusterCase):
    """pomelo_twisted.testing.pitaya through a connector of the example game."""

    @inlineCallbacks
    def test_libpitaya_chat_session(self) -> Any:
        """entry/join/send with zlib bodies and string routes, the onChat push by name
        (a stock client in the room gets it too), a forwarded error with 0x20 in pitaya's
        shape, and a compression bomb kicked naming max_inflated_body."""
        cluster = yield self.started()
        port = cluster.client_port("connector-server-1")
        endpoint = f"tcp:127.0.0.1:{port}"
        client: PitayaClient = yield connect_pitaya(reactor, endpoint)  # type: ignore[arg-type]
        self.addCleanup(client.close)
        self.assertEqual(sorted(client.reply["sys"]), ["heartbeat", "serializer"])
        stock = yield self.client(cluster, "connector-server-2", "bob", "lobby")
        joined = yield stock.request(JOIN, {"rid": "lobby"})
        self.assertEqual(joined["code"], 200)
        bob_pushes = Pushes(stock, "onChat")

        reply = yield client.request(ENTRY, {"uid": "alice", "rid": "lobby"})
        self.assertEqual(reply, ({"code": 200, "uid": "alice"}, False))
        reply = yield client.request(JOIN, {"rid": "lobby"})
        self.assertEqual(reply[0]["members"], ["bob", "alice"])
        content = "hello " * 60  # compressed by the client (flag 0x10)
        pushed = client.next_push("onChat")
        reply = yield client.request(SEND, {"rid": "lobby", "content": content})
        self.assertEqual(reply, ({"code": 200}, False))
        push = yield pushed
        self.assertEqual(push, {"rid": "lobby", "from": "alice", "content": content})
        yield bob_pushes.wait_for(1)
        self.assertEqual(bob_pushes.bodies, [push])
        self.assertEqual(client.errors, [])

        body, error = yield client.request(JOIN, {"rid": ""})
        self.assertTrue(error)
        self.assertEqual(body, {"code": "PIT-500", "msg": "rid required", "metadata": {}})
        body, error = yield client.request("chat.chatHandler.nothing", {})
        self.assertTrue(error)
        self.assertEqual(body["code"][:4], "PIT-")

        attacker: PitayaClient = yield connect_pitaya(reactor, endpoint)  # type: ignore[arg-type]
        route = ENTRY.encode()
        attacker.send_raw(
            encode_package(PackageType.DATA, b"\x10\x01" + bytes((len(route),)) + route + bomb())
        )
        yield attacker.closed
        self.assertEqual(len(attacker.kicks), 1)
        self.assertIn("max_inflated_body", attacker.kicks[0])
        # The others are unharmed.
        reply = yield client.request("chat.chatHandler.echo", {"n": 1})
        self.assertEqual(reply, ({"n": 1}, False))
        self.assertEqual(cluster.tracebacks(), {})
