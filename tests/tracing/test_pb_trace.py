"""One trace across servers over Perspective Broker (in memory, on a Clock): each
server's spans come from its own provider."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pomelo_twisted.app.application import Application
from pomelo_twisted.app.build import build_application
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.instruments import ObservedHandler
from pomelo_twisted.interfaces import IConnectionHandler
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.serializers import JsonSerializer
from pomelo_twisted.testing.network import MemoryNetwork
from pomelo_twisted.testing.tracing import memory_tracing, span_tree

from ..app.test_cluster_routing import FakeSession

SECRET = b"tracing-secret"
CONNECTOR = ServerInfo(
    id="connector-1", type="connector", port=4150, client_port=3010, frontend=True
)
CHAT = ServerInfo(id="chat-1", type="chat", port=4250)
ROUTE = "chat.chatHandler.ping"


class ChatHandler:
    """Calls back the frontend (as a push does) before answering."""

    def __init__(self, app: Application) -> None:
        self.app = app

    async def ping(self, session: Any, msg: Any) -> dict[str, Any]:
        await self.app.rpc_call(CONNECTOR.id, "probe", "seen", (session.uid,))
        return {"code": 200}


class Probe:
    """The frontend's remote the chat calls."""

    def seen(self, uid: str) -> str:
        return uid


@implementer(IConnectionHandler)
class Frontend:
    """A frontend's connection handler reduced to dispatching a request."""

    def __init__(self, app: Application) -> None:
        self.app = app

    def handshake(self, agent: Any, handshake: Any) -> object:
        return None

    def connected(self, agent: Any) -> None:
        pass

    def disconnected(self, agent: Any, reason: str) -> None:
        pass

    def request(self, agent: Any, route: str, body: bytes) -> Deferred[Any]:
        return self.app.dispatcher.dispatch(route, {}, agent.session)

    def notify(self, agent: Any, route: str, body: bytes) -> object:
        return None


class PbTraceTests(SynchronousTestCase):
    """A connector and a chat server, each with its own PbRpcTransport and provider."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.network = MemoryNetwork()
        self.setup, self.exporter = memory_tracing()
        servers = {"connector": [CONNECTOR], "chat": [CHAT]}
        self.apps = {info.id: self.build(info, servers) for info in (CONNECTOR, CHAT)}
        self.apps[CHAT.id].register_handler(ChatHandler(self.apps[CHAT.id]), "chatHandler")
        self.apps[CONNECTOR.id].register_remote(Probe(), "probe")
        for _ in range(10):
            self.clock.advance(0.2)
            self.network.flush()

    def build(self, info: ServerInfo, servers: dict[str, list[ServerInfo]]) -> Application:
        addresses = {s.rpc_endpoint: s.rpc_client_endpoint for s in (CONNECTOR, CHAT)}
        transport = PbRpcTransport(
            self.clock,
            info.id,
            SECRET,
            rng=random.Random(3),
            connect=lambda peer: self.network.endpoint(peer.rpc_client_endpoint),
            server_endpoint=lambda endpoint: self.network.server_endpoint(addresses[endpoint]),
        )
        app = build_application(
            info,
            reactor=self.clock,
            rpc=transport,
            servers=servers,
            config=None,
            tracing=self.setup,
        )
        self.successResultOf(app.components["rpc_server"].start())  # type: ignore[union-attr]
        self.addCleanup(app.components["tracing"].provider.shutdown)  # type: ignore[union-attr]
        return app

    def flush(self) -> None:
        for _ in range(100):
            self.network.flush()
            now = self.clock.seconds()
            if not any(call.getTime() <= now for call in self.clock.getDelayedCalls()):
                return
            self.clock.advance(0)
        raise AssertionError("the network does not settle")

    def test_one_trace_with_each_span_on_its_server(self) -> None:
        """frontend SERVER > forward CLIENT > forward SERVER > handler > call back
        CLIENT > SERVER, one trace; each span's resource names the server that made it."""
        connector = self.apps[CONNECTOR.id]
        hooks = connector.instruments.requests
        assert hooks is not None
        handler = ObservedHandler(Frontend(connector), hooks)
        agent = SimpleNamespace(sid=1, session=FakeSession("ann"), serializer=JsonSerializer())
        d = handler.request(agent, ROUTE, b"{}")
        self.flush()
        self.assertEqual(self.successResultOf(d), {"code": 200})  # type: ignore[arg-type]
        spans = self.exporter.get_finished_spans()
        self.assertEqual(len({s.context.trace_id for s in spans}), 1)
        self.assertEqual(
            span_tree(spans),
            [
                (0, "SERVER", ROUTE),
                (1, "CLIENT", "pomelo.sys/forward"),
                (2, "SERVER", "pomelo.sys/forward"),
                (3, "INTERNAL", ROUTE),
                (4, "CLIENT", "probe/seen"),
                (5, "SERVER", "probe/seen"),
            ],
        )
        where = {(s.kind.name, s.name): s.resource.attributes["service.instance.id"] for s in spans}
        self.assertEqual(
            where,
            {
                ("SERVER", ROUTE): CONNECTOR.id,
                ("CLIENT", "pomelo.sys/forward"): CONNECTOR.id,
                ("SERVER", "pomelo.sys/forward"): CHAT.id,
                ("INTERNAL", ROUTE): CHAT.id,
                ("CLIENT", "probe/seen"): CHAT.id,
                ("SERVER", "probe/seen"): CONNECTOR.id,
            },
        )
        served = [s for s in spans if s.kind.name == "SERVER" and s.name.startswith("p")]
        self.assertEqual(
            sorted(s.attributes["pomelo.peer"] for s in served), [CHAT.id, CONNECTOR.id]
        )
