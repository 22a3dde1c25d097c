"""Routing a frontend's requests to backends over the PB transport (in memory, on a Clock)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.application import Application
from pomelo_twisted.app.build import build_application
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.protocol import encode_push
from pomelo_twisted.rpc import default_route
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.serializers import JsonSerializer
from pomelo_twisted.session.backend import BackendSession
from pomelo_twisted.testing.network import MemoryNetwork

SECRET = b"routing-secret"
CONNECTOR = ServerInfo(
    id="connector-1", type="connector", port=4150, client_port=3010, frontend=True
)
CHATS = [
    ServerInfo(id="chat-1", type="chat", port=4250),
    ServerInfo(id="chat-2", type="chat", port=4251),
]
ECHO = "chat.chatHandler.echo"


class ChatHandler:
    """Answers which chat server ran the request."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    def echo(self, session: Any, msg: Any) -> dict[str, Any]:
        return {"server": self.server_id, "uid": session.uid, "msg": msg}


class FakeSession:
    """The frontend session of one client, as the dispatcher and the router see it."""

    def __init__(self, uid: str) -> None:
        self.id = 1
        self.uid = uid
        self.frontend_id = CONNECTOR.id
        self.settings: dict[str, Any] = {}
        self.settings_version = 0
        self.backend_versions: dict[str, int] | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def export(self) -> dict[str, Any]:
        return {"id": self.id, "uid": self.uid, "frontend_id": self.frontend_id, "settings": {}}


def uid_on(server_id: str, servers: list[ServerInfo]) -> str:
    """A uid that the default route sends to ``server_id`` among ``servers``."""
    return next(uid for n in range(1000) if default_route(uid := f"user-{n}", servers) == server_id)


class ClusterCase(SynchronousTestCase):
    """A connector and two chat servers, each with its own PbRpcTransport."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.network = MemoryNetwork()
        self.apps: dict[str, Application] = {}
        servers = {"connector": [CONNECTOR], "chat": list(CHATS)}
        for info in (CONNECTOR, *CHATS):
            self.apps[info.id] = self.build(info, servers)
        self.network.flush()
        self.connector = self.apps[CONNECTOR.id]
        # The connector started first and found the chats down: its backoff brings them up.
        for _ in range(10):
            self.clock.advance(0.2)
            self.network.flush()
        self.assertEqual(set(self.connector.rpc_transport.peers().values()), {"up"})  # type: ignore[attr-defined]

    def build(self, info: ServerInfo, servers: dict[str, list[ServerInfo]]) -> Application:
        addresses = {s.rpc_endpoint: s.rpc_client_endpoint for s in (CONNECTOR, *CHATS)}
        addresses[info.rpc_endpoint] = info.rpc_client_endpoint
        transport = PbRpcTransport(
            self.clock,
            info.id,
            SECRET,
            rng=random.Random(3),
            connect=lambda peer: self.network.endpoint(peer.rpc_client_endpoint),
            server_endpoint=lambda endpoint: self.network.server_endpoint(addresses[endpoint]),
        )
        app = build_application(
            info, reactor=self.clock, rpc=transport, servers=servers, config=None
        )
        if info.type == "chat":
            app.register_handler(ChatHandler(info.id), "chatHandler")
        self.successResultOf(app.components["rpc_server"].start())  # type: ignore[arg-type]
        return app

    def flush(self) -> None:
        """Run the ends of reactor turns (RPC batches and answers leave then) and move
        every byte, until neither has anything left to do without time passing."""
        for _ in range(100):
            self.network.flush()
            now = self.clock.seconds()
            if not any(call.getTime() <= now for call in self.clock.getDelayedCalls()):
                return
            self.clock.advance(0)
        raise AssertionError("the network does not settle")

    def request(self, uid: str, msg: Any = "hi") -> Any:
        d = self.connector.dispatcher.dispatch(ECHO, msg, FakeSession(uid))
        self.flush()
        return self.successResultOf(d)


class ClusterRoutingTests(ClusterCase):
    """Where the frontend forwards requests as the membership changes."""

    def test_requests_go_where_the_route_sends_them(self) -> None:
        """Each uid's request is answered by the chat server its route picks (both serve)."""
        for chat in CHATS:
            uid = uid_on(chat.id, CHATS)
            self.assertEqual(self.request(uid), {"server": chat.id, "uid": uid, "msg": "hi"})

    def test_a_down_server_answers_its_requests_with_an_error_at_once(self) -> None:
        """A crashed backend stays routed: its requests get a 503 at once (its id only in
        the log), others still work."""
        self.network.unlisten(CHATS[0].rpc_client_endpoint)
        self.network.drop(CHATS[0].rpc_client_endpoint)
        self.network.flush()
        d = self.connector.dispatcher.dispatch(ECHO, "hi", FakeSession(uid_on("chat-1", CHATS)))
        answer = self.successResultOf(d)  # no clock turn, no network: it failed fast
        self.assertEqual(answer, {"code": 503, "msg": "server unavailable"})
        other = uid_on("chat-2", CHATS)
        self.assertEqual(self.request(other)["server"], "chat-2")
        self.flushLoggedErrors()

    def test_a_server_back_up_is_used_again(self) -> None:
        """Once the backend listens again and the master says up, its requests succeed."""
        self.network.unlisten(CHATS[0].rpc_client_endpoint)
        self.network.drop(CHATS[0].rpc_client_endpoint)
        self.network.flush()
        uid = uid_on("chat-1", CHATS)
        self.assertEqual(self.request(uid)["code"], 503)
        chat = self.apps["chat-1"]
        self.network.listen(
            CHATS[0].rpc_client_endpoint,
            chat.rpc_transport.server_factory(),  # type: ignore[attr-defined]
        )
        self.connector.rpc_transport.reconnect("chat-1")  # type: ignore[attr-defined]
        self.network.flush()
        self.assertEqual(self.request(uid)["server"], "chat-1")

    def test_a_removed_server_is_routed_around(self) -> None:
        """A server removed from the membership no longer receives requests."""
        uid = uid_on("chat-1", CHATS)
        self.connector.remove_server("chat-1")
        self.network.flush()
        self.assertEqual(self.request(uid)["server"], "chat-2")
        self.assertIsNone(self.connector.rpc_transport.peer_state("chat-1"))  # type: ignore[attr-defined]

    def test_an_added_server_is_connected_and_routed_to(self) -> None:
        """A server added to the membership is connected to and takes its share."""
        chat3 = ServerInfo(id="chat-3", type="chat", port=4252)
        servers = {"connector": [CONNECTOR], "chat": [*CHATS, chat3]}
        self.apps["chat-3"] = self.build(chat3, servers)
        self.connector.add_server(chat3)
        self.network.flush()
        self.assertEqual(self.connector.rpc_transport.peer_state("chat-3"), "up")  # type: ignore[attr-defined]
        uid = uid_on("chat-3", [*CHATS, chat3])
        self.assertEqual(self.request(uid)["server"], "chat-3")


class FakeAgent:
    """The connection under a frontend session: records pushes and kicks."""

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.working = True
        self.serializer = JsonSerializer()
        self.connection = SimpleNamespace(dictionary=None)
        self.push_format = (self.serializer, None)
        self.pushed: list[tuple[str, object]] = []
        self.encoded: list[bytes] = []
        self.kicked: list[str] = []

    def push(self, route: str, msg: object) -> bool:
        self.pushed.append((route, msg))
        return True

    def prepare_push(self, route: str, msg: object) -> bytes:
        return encode_push(route, self.serializer.encode(msg))

    def push_prepared(self, package: bytes) -> bool:
        self.encoded.append(package)
        return True

    def kick(self, reason: str = "kick") -> None:
        self.kicked.append(reason)

    def close(self, reason: str = "close") -> None:
        self.working = False


class SystemCallTests(ClusterCase):
    """A backend's session calls and channel pushes travel back to the frontend over PB."""

    def session(self, uid: str) -> tuple[Any, FakeAgent]:
        """A real frontend session on connector-1, bound to ``uid``."""
        service = self.connector.session_service
        assert service is not None
        agent = FakeAgent(sid=len(service) + 1)
        session = service.create(agent)
        self.successResultOf(service.bind(session.id, uid))
        return session, agent

    def test_backend_session_sync_and_kick_reach_the_frontend(self) -> None:
        """BackendSession.sync stores settings and kick kicks, through pomelo.sys over PB."""
        session, agent = self.session("alice")
        chat = self.apps["chat-1"]
        backend = BackendSession(session.export(), chat.rpc_call)
        backend.set("room", "lobby")
        d = backend.sync("room")
        self.flush()
        self.successResultOf(d)
        self.assertEqual(session.get("room"), "lobby")
        d = backend.kick("bye")
        self.flush()
        self.successResultOf(d)
        self.assertEqual(agent.kicked, ["bye"])

    def test_channel_push_is_one_call_per_frontend(self) -> None:
        """A push to 3 members on one frontend is one PB call carrying all three uids."""
        agents = [self.session(uid)[1] for uid in ("a", "b", "c")]
        chat = self.apps["chat-1"]
        channel = chat.channel_service.get("room", create=True)
        for uid in ("a", "b", "c"):
            channel.add(uid, CONNECTOR.id)
        before = chat.rpc_transport.counters(CONNECTOR.id).calls  # type: ignore[attr-defined]
        d = channel.push("onChat", {"content": "hi"})
        self.flush()
        self.successResultOf(d)
        after = chat.rpc_transport.counters(CONNECTOR.id).calls  # type: ignore[attr-defined]
        self.assertEqual(after - before, 1)
        self.assertEqual([len(agent.encoded) for agent in agents], [1, 1, 1])
        self.assertEqual(len({agent.encoded[0] for agent in agents}), 1)  # encoded once
