"""A serializer per client, end to end: a msgpack client and a JSON client on the same
connector port of a real cluster (a copy of the example game) chat with each other."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks

from pomelo_twisted.client import PomeloClient, connect

from .cluster import ENTRY, ClusterCase
from .test_cluster import JOIN, SEND, room_on
from .test_example_game import Pushes


class SerializerPerClientTests(ClusterCase):
    """The serializer is chosen per connection in its handshake, not per frontend."""

    @inlineCallbacks
    def client(
        self, cluster: Any, connector: str, uid: str, rid: str, ws: bool = False, **options: Any
    ) -> Any:
        """A client of ``connector`` (over WebSocket with ``ws``; ``options`` for
        ``connect``) logged in as ``uid``."""
        port = cluster.client_port(connector)
        target = f"ws://127.0.0.1:{port}/" if ws else f"tcp:127.0.0.1:{port}"
        client: PomeloClient = yield connect(reactor, target, timeout=5.0, **options)
        self.addCleanup(client.close)
        reply = yield client.request(ENTRY, {"uid": uid, "rid": rid})
        self.assertEqual(reply, {"code": 200, "uid": uid})
        return client

    @inlineCallbacks
    def test_msgpack_and_json_clients_chat_on_one_port(self) -> Any:
        """A msgpack client (TCP) and a JSON client (WebSocket) of one connector port both
        complete entry/join/send and each gets the other's onChat push in its own
        serializer, through the forward hop and the chat server's channel push; a third
        client on the other connector (JSON) gets the same pushes. Error answers come in
        each client's serializer too."""
        cluster = yield self.started()
        rid = room_on("chat-server-2")
        packed = yield self.client(cluster, "connector-server-1", "mia", rid, serializer="msgpack")
        plain = yield self.client(cluster, "connector-server-1", "joe", rid, ws=True)
        remote = yield self.client(cluster, "connector-server-2", "kim", rid)
        self.assertEqual(packed.serializer.name, "msgpack")
        self.assertEqual(plain.serializer.name, "json")

        # What reaches each client, raw: a msgpack body cannot pass for JSON, nor back.
        raw: dict[str, list[bytes]] = {"mia": [], "joe": []}
        for name, client in (("mia", packed), ("joe", plain)):
            decode = client.serializer.decode

            def keep(body: bytes, into: list[bytes] = raw[name], decode: Any = decode) -> Any:
                into.append(body)
                return decode(body)

            client.serializer.decode = keep  # type: ignore[method-assign]

        pushes = {
            "mia": Pushes(packed, "onChat"),
            "joe": Pushes(plain, "onChat"),
            "kim": Pushes(remote, "onChat"),
        }
        members = []
        for name, client in (("mia", packed), ("joe", plain), ("kim", remote)):
            members.append(name)
            joined = yield client.request(JOIN, {"rid": rid})
            self.assertEqual(joined, {"code": 200, "rid": rid, "members": members})
        sent = [(packed, "mia", "héllo from msgpack"), (plain, "joe", "hi from json")]
        for client, _, content in sent:
            self.assertEqual(
                (yield client.request(SEND, {"rid": rid, "content": content})), {"code": 200}
            )
        for pushed in pushes.values():
            yield pushed.wait_for(2)
            self.assertEqual(
                pushed.bodies,
                [{"rid": rid, "from": uid, "content": content} for _, uid, content in sent],
            )
        # Errors too: the backend's (a handler error) and the frontend's (no such route).
        for client in (packed, plain):
            self.assertEqual((yield client.request(JOIN, {})), {"code": 500, "msg": "rid required"})
            missing = yield client.request("chat.chatHandler.nothing", {})
            self.assertEqual(missing["code"], 404)
        self.assertTrue(raw["mia"] and raw["joe"])
        for body in raw["joe"]:
            json.loads(body)  # every body the JSON client got is JSON
        for body in raw["mia"]:
            with self.assertRaises(ValueError):  # and none of the msgpack client's is
                json.loads(body)
        self.assertEqual(cluster.tracebacks(), {})
