"""The forward hop: body bytes undecoded at the frontend, the session as a delta, and what
the client is answered when the hop fails (in-process RPC on a Clock)."""

from __future__ import annotations

from typing import Any

import msgpack
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.app.application import Application
from pomelo_twisted.app.build import build_application
from pomelo_twisted.app.forward import FORWARD, SESSION_NEEDED
from pomelo_twisted.app.frontend import FrontendHandler
from pomelo_twisted.errors import HandlerError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.interfaces import IConnectionHandler
from pomelo_twisted.responses import EncodedBody
from pomelo_twisted.rpc import LocalRpcTransport
from pomelo_twisted.serializers import JsonSerializer, MsgpackSerializer
from pomelo_twisted.session import BackendSession, Session

from ..sessions.fakes import FakeAgent

CONNECTOR = ServerInfo(
    id="connector-1", type="connector", port=4150, client_port=3010, frontend=True
)
CHAT = ServerInfo(id="chat-1", type="chat", port=4250)
ECHO = "chat.chatHandler.echo"


def decoded(answer: bytes) -> Any:
    """The JSON value of an answer (orjson takes no bytes subclass: EncodedBody)."""
    return JsonSerializer().decode(bytes(answer))


class CountingJson(JsonSerializer):
    """JSON, counting what the frontend decodes and encodes."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = {"decode": 0, "encode": 0}

    def encode(self, obj: object) -> bytes:
        self.counts["encode"] += 1
        return super().encode(obj)

    def decode(self, data: bytes) -> object:
        self.counts["decode"] += 1
        return super().decode(data)


class ChatHandler:
    """Answers what it saw of the request; ``hang`` never answers."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, str | None, dict[str, Any]]] = []

    def echo(self, session: Any, msg: Any) -> Any:
        self.seen.append((msg, session.uid, dict(session.settings)))
        return {"echo": msg, "room": session.get("room")}

    def refuse(self, session: Any, msg: Any) -> Any:
        raise HandlerError(42, "refused")

    def hang(self, session: Any, msg: Any) -> Deferred[Any]:
        return Deferred()

    def meddle(self, session: Any, msg: Any) -> Any:
        """Changes the session's settings locally (never synced)."""
        session.set("room", "mine")
        return session.get("room")


class ForwardCase(SynchronousTestCase):
    """A connector and a chat server in one process; a client session on the connector."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = LocalRpcTransport(self.clock)
        self.servers = {"connector": [CONNECTOR], "chat": [CHAT]}
        self.connector = self.build(CONNECTOR, self.servers)
        self.handler = ChatHandler()
        self.chat = self.start_chat()
        self.calls: list[list[Any]] = []
        call = self.transport.call

        def recording(server_id: str, service: str, method: str, args: Any, timeout: float) -> Any:
            if method == FORWARD:
                self.calls.append(list(args))
            return call(server_id, service, method, args, timeout)

        self.patch(self.transport, "call", recording)
        self.frontend = FrontendHandler(self.connector)
        self.serializer = CountingJson()
        self.agent: Any = FakeAgent(1, self.serializer)
        assert self.connector.session_service is not None
        self.session: Session = self.connector.session_service.create(self.agent)
        self.agent.session = self.session

    def build(self, info: ServerInfo, servers: dict[str, list[ServerInfo]]) -> Application:
        app = build_application(
            info, reactor=self.clock, rpc=self.transport, servers=servers, config=None
        )
        self.transport.register(info.id, app.remotes)
        return app

    def start_chat(self) -> Application:
        """A (new) chat server process serving ``self.handler``."""
        chat = self.build(CHAT, self.servers)
        chat.register_handler(self.handler, "chatHandler")
        return chat

    def request(self, route: str, body: bytes, notify: bool = False) -> Any:
        """What the frontend answers the client, once the hop is done."""
        call = self.frontend.notify if notify else self.frontend.request
        result = call(self.agent, route, body)
        self.clock.advance(0)
        self.clock.advance(0)
        return self.successResultOf(result) if isinstance(result, Deferred) else result

    def settings_sent(self) -> list[Any]:
        """The settings each forward call carried (None: only sid, uid and version)."""
        return [args[4] for args in self.calls]


class BodyTests(ForwardCase):
    """The client's bytes go to the backend and its answer comes back, undecoded here."""

    def test_handler_verified(self) -> None:
        """FrontendHandler provides IConnectionHandler (request and notify take bytes)."""
        self.assertTrue(verifyObject(IConnectionHandler, self.frontend))

    def test_body_is_not_decoded_at_the_frontend(self) -> None:
        """A forwarded request is neither decoded nor encoded on the frontend: the backend
        answers bytes in the client's serializer, written as an EncodedBody."""
        answer = self.request(ECHO, b'{"a":1}')
        self.assertIsInstance(answer, EncodedBody)
        self.assertEqual(answer, b'{"echo":{"a":1},"room":null}')
        self.assertEqual(self.serializer.counts, {"decode": 0, "encode": 0})
        self.assertEqual(self.handler.seen, [({"a": 1}, None, {})])
        [args] = self.calls
        self.assertEqual(args[5:], [ECHO, "json", b'{"a":1}', False])

    def test_msgpack_client(self) -> None:
        """A msgpack client's body is decoded and answered in msgpack by the backend."""
        self.agent.serializer = MsgpackSerializer()
        answer = self.request(ECHO, msgpack.packb([1, "x"]))
        self.assertEqual(msgpack.unpackb(answer), {"echo": [1, "x"], "room": None})

    def test_local_route_is_decoded_here(self) -> None:
        """A route of the frontend's own type is decoded with the agent's serializer."""
        self.connector.register_handler(ChatHandler(), "entryHandler")
        answer = self.request("connector.entryHandler.echo", b'{"b":2}')
        self.assertEqual(answer, {"echo": {"b": 2}, "room": None})
        self.assertEqual(self.serializer.counts["decode"], 1)
        self.assertEqual(self.calls, [])

    def test_bad_bodies_answer_400(self) -> None:
        """A body that is not valid JSON is answered 400, locally or by the backend."""
        self.connector.register_handler(ChatHandler(), "entryHandler")
        self.assertRaises(
            HandlerError, self.frontend.request, self.agent, "connector.entryHandler.echo", b"{x"
        )
        answer = self.request(ECHO, b"{x")
        self.assertEqual(decoded(answer), {"code": 400, "msg": "body is not valid json"})

    def test_backend_failures_are_encoded_there(self) -> None:
        """A backend's HandlerError and unknown method are error bodies it encodes."""
        refused = self.request("chat.chatHandler.refuse", b"{}")
        self.assertEqual(decoded(refused), {"code": 42, "msg": "refused"})
        missing = self.request("chat.chatHandler.nope", b"{}")
        self.assertEqual(decoded(missing)["code"], 404)

    def test_notify_is_forwarded(self) -> None:
        """A notify reaches the backend handler; nothing is answered."""
        self.assertIsNone(self.request(ECHO, b'{"n":1}', notify=True))
        self.assertEqual(self.handler.seen, [({"n": 1}, None, {})])
        self.assertTrue(self.calls[0][8])


class SessionDeltaTests(ForwardCase):
    """The session's settings travel only when the backend has not seen their version."""

    def test_settings_only_when_changed(self) -> None:
        """The first request carries the settings, the next ones only sid, uid and
        version, until a setting changes."""
        self.successResultOf(self.session.bind("amy"))
        self.session.set("room", "lobby")
        for _ in range(3):
            self.request(ECHO, b"1")
        self.session.set("room", "hall")
        self.request(ECHO, b"2")
        self.request(ECHO, b"3")
        self.assertEqual(
            self.settings_sent(), [{"room": "lobby"}, None, None, {"room": "hall"}, None]
        )
        self.assertEqual(
            [seen[1:] for seen in self.handler.seen][-2:], [("amy", {"room": "hall"})] * 2
        )
        self.assertEqual([args[2] for args in self.calls], ["amy"] * 5)

    def test_change_in_place_reaches_the_backend(self) -> None:
        """Settings changed in place on the frontend still reach the next request."""
        self.request(ECHO, b"1")
        self.session.settings["room"] = "attic"
        self.request(ECHO, b"2")
        self.assertEqual(self.handler.seen[-1][2], {"room": "attic"})
        self.assertEqual(self.settings_sent(), [{}, {"room": "attic"}])

    def test_backend_miss_resends_the_settings_once(self) -> None:
        """A backend that lost the settings (restart, eviction) answers SESSION_NEEDED;
        the frontend sends the same request again with them, once, and it is served."""
        self.session.set("room", "lobby")
        self.request(ECHO, b"1")
        self.transport.unregister(CHAT.id)
        self.chat = self.start_chat()  # the backend restarted: its cache is empty
        answer = self.request(ECHO, b"2")
        self.assertEqual(decoded(answer), {"echo": 2, "room": "lobby"})
        self.assertEqual(self.settings_sent(), [{"room": "lobby"}, None, {"room": "lobby"}])
        self.assertEqual(len(self.handler.seen), 2)
        self.request(ECHO, b"3")
        self.assertEqual(self.settings_sent()[-1], None)

    def test_backend_sync_reaches_the_next_request(self) -> None:
        """Settings a backend syncs to the frontend travel with the next request."""
        self.request(ECHO, b"1")
        backend = BackendSession(self.session.export(), self.chat.rpc_call)
        backend.set("room", "synced")
        d = backend.sync("room")
        self.clock.advance(0)
        self.clock.advance(0)
        self.successResultOf(d)
        self.request(ECHO, b"2")
        self.assertEqual(self.handler.seen[-1][2], {"room": "synced"})

    def test_handler_changes_stay_in_its_request(self) -> None:
        """A backend handler's set() changes its own copy, not the next request's."""

        self.session.set("room", "lobby")
        self.assertEqual(self.request("chat.chatHandler.meddle", b"{}"), b'"mine"')
        self.request(ECHO, b"1")
        self.assertEqual(self.handler.seen[-1][2], {"room": "lobby"})
        self.assertEqual(self.settings_sent()[-1], None)

    def test_direct_answer_marker(self) -> None:
        """The backend answers SESSION_NEEDED for a version it does not hold."""
        args = ("connector-1", 9, None, 3, None, ECHO, "json", b"{}", False)
        self.assertEqual(self.chat.remotes.invoke("pomelo.sys", FORWARD, args), SESSION_NEEDED)
        self.assertEqual(self.handler.seen, [])


class FailureTests(ForwardCase):
    """What the client is answered when the hop itself fails: no internal text."""

    def test_timeout_answers_504(self) -> None:
        """A forwarded call past its deadline answers 504 'request timed out'."""
        self.connector.set("rpc_timeout", 2.0)
        d = self.frontend.request(self.agent, "chat.chatHandler.hang", b"{}")
        self.clock.advance(0)
        self.clock.advance(2)
        self.assertEqual(self.successResultOf(d), {"code": 504, "msg": "request timed out"})

    def test_peer_down_answers_503(self) -> None:
        """A backend that is down answers 503 'server unavailable', its id only logged."""
        self.transport.unregister(CHAT.id)
        answer = self.request(ECHO, b"{}")
        self.assertEqual(answer, {"code": 503, "msg": "server unavailable"})

    def test_failed_hops_warn_once_per_interval_per_server(self) -> None:
        """100 hops to a down backend: one warning, then one with the count after 10 s."""
        lines: list[Any] = []
        globalLogPublisher.addObserver(lines.append)
        self.addCleanup(globalLogPublisher.removeObserver, lines.append)
        self.transport.unregister(CHAT.id)
        for _ in range(100):
            self.assertEqual(self.request(ECHO, b"{}"), {"code": 503, "msg": "server unavailable"})
        self.clock.advance(10)
        self.request(ECHO, b"{}")
        warned = [e for e in lines if "forwarding" in e.get("log_format", "")]
        self.assertEqual(len(warned), 2)
        self.assertEqual(warned[1]["repeats"], 99)
        self.assertEqual(warned[1]["server"], CHAT.id)

    def test_no_server_of_the_type(self) -> None:
        """A type the cluster has no server of now is 503; a type it never had is 404."""
        self.assertEqual(
            self.request("area.h.m", b"{}"), {"code": 404, "msg": "no route 'area.h.m'"}
        )
        self.connector.servers["chat"] = []
        self.assertEqual(self.request(ECHO, b"{}"), {"code": 503, "msg": "server unavailable"})

    def test_error_handler_decides_forward_failures(self) -> None:
        """The frontend's error handler shapes the body of a hop that failed here."""
        seen: list[tuple[str, Any]] = []

        def shape(context: Any, failure: Failure) -> Any:
            seen.append((context.route, context.msg))
            return {"code": 599}

        self.connector.set_error_handler(shape)
        self.transport.unregister(CHAT.id)
        self.assertEqual(self.request(ECHO, b'{"m":1}'), {"code": 599})
        self.assertEqual(seen, [(ECHO, {"m": 1})])
