"""Request ids: each client request starts a call context that follows it across RPC
hops, and the access log (one line per request, off unless at debug)."""

from __future__ import annotations

import io
import json
import random
from types import SimpleNamespace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogEvent, Logger, LogLevel, LogPublisher, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.callcontext import CALL_CONTEXT
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.instruments import Instruments, ObservedHandler
from pomelo_twisted.interfaces import IRequestHooks, IRpcHooks
from pomelo_twisted.logs.beginning import ACCESS_NAMESPACE
from pomelo_twisted.logs.jsonlog import JsonLogObserver
from pomelo_twisted.logs.requestlog import RequestLog, install_request_log, outcome_code
from pomelo_twisted.rpc import LocalRpcTransport, RemoteDispatcher

FORWARD = ("pomelo.sys", "forward")


def agent(sid: int = 4, uid: str | None = "u1") -> Any:
    """What the hooks read of a connection: its sid and its session's uid."""
    return SimpleNamespace(sid=sid, session=SimpleNamespace(uid=uid))


class Captured(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[LogEvent] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def access_lines(self) -> list[LogEvent]:
        return [e for e in self.events if e.get("log_namespace") == ACCESS_NAMESPACE]


class RequestIdTests(Captured):
    """The call context of a client request."""

    def test_provides_both_hooks(self) -> None:
        """RequestLog is an IRequestHooks and an IRpcHooks."""
        hooks = RequestLog("connector-1", self.clock, random.Random(1))
        self.assertTrue(verifyObject(IRequestHooks, hooks))
        self.assertTrue(verifyObject(IRpcHooks, hooks))

    def test_context_of_a_request(self) -> None:
        """rid (server id, run tag, counter: unique), route, sid and uid; items of a
        context already current (a traceparent) are kept."""
        hooks = RequestLog("connector-1", self.clock, random.Random(1))
        first, end = hooks.request_started(agent(), "chat.h.send", False, {"traceparent": "t"})
        second, _ = hooks.request_started(agent(5, None), "chat.h.join", True, None)
        assert first is not None and second is not None
        self.assertIsNone(end)
        self.assertRegex(first["rid"], r"^connector-1\.[0-9a-f]{8}\.1$")
        self.assertEqual(second["rid"], first["rid"][:-1] + "2")
        self.assertEqual(
            first,
            {
                "traceparent": "t",
                "rid": first["rid"],
                "route": "chat.h.send",
                "sid": "4",
                "uid": "u1",
            },
        )
        self.assertNotIn("uid", second)
        other = RequestLog("connector-1", self.clock, random.Random(2))
        self.assertNotEqual(other.request_started(agent(), "r", False, None)[0], first)

    def test_no_access_log_when_off(self) -> None:
        """Access off: no end, no serve hook work, no line."""
        hooks = RequestLog("connector-1", self.clock, random.Random(1))
        self.assertEqual(hooks.serve_started("c", *FORWARD, {"rid": "x"}), ({"rid": "x"}, None))
        self.assertEqual(hooks.call_started("chat-1", "s", "m", None), (None, None))
        self.assertEqual(self.access_lines(), [])


class AccessLogTests(Captured):
    """One debug line per request on the frontend and per forward on the backend."""

    def test_frontend_line(self) -> None:
        """route, code and milliseconds (on the clock), with the request's context."""
        hooks = RequestLog("connector-1", self.clock, random.Random(1), access=True)
        context, end = hooks.request_started(agent(), "chat.h.send", False, None)
        assert end is not None
        self.clock.advance(0.25)
        end({"code": 500, "msg": "no"})
        (line,) = self.access_lines()
        self.assertEqual(line["log_level"], LogLevel.debug)
        self.assertEqual((line["route"], line["code"], line["ms"]), ("chat.h.send", "500", 250.0))
        self.assertIs(line["call_context"], context)

    def test_outcome_codes(self) -> None:
        """A body's int code, ok otherwise, failed for a failure."""
        self.assertEqual(outcome_code({"code": 200}), "200")
        self.assertEqual(outcome_code({"ok": 1}), "ok")
        self.assertEqual(outcome_code(None), "ok")
        self.assertEqual(outcome_code(Failure(ValueError())), "failed")

    def test_backend_line_for_forwards_only(self) -> None:
        """A forwarded request served logs its route and peer; other calls log nothing."""
        hooks = RequestLog("chat-1", self.clock, random.Random(1), access=True)
        context = {"rid": "r-1", "route": "chat.h.send"}
        self.assertEqual(hooks.serve_started("connector-1", "chat", "m", context)[1], None)
        _, end = hooks.serve_started("connector-1", *FORWARD, context)
        assert end is not None
        self.clock.advance(0.002)
        end(None)
        (line,) = self.access_lines()
        self.assertEqual(
            (line["route"], line["peer"], line["outcome"]), ("chat.h.send", "connector-1", "ok")
        )
        self.assertEqual(line["call_context"], context)

    def test_install(self) -> None:
        """A frontend gets the request hooks; the RPC hooks only with the access log."""
        frontend = ServerInfo(id="c-1", type="connector", host="h", port=1, frontend=True)
        backend = ServerInfo(id="chat-1", type="chat", host="h", port=2)
        for server, access, requests, rpc in [
            (frontend, False, True, False),
            (backend, False, False, False),
            (backend, True, False, True),
        ]:
            instruments = Instruments(object())
            install_request_log(instruments, server, self.clock, random.Random(1), access, FORWARD)
            self.assertEqual(
                (instruments.requests is not None, instruments.rpc is not None), (requests, rpc)
            )


class Teller:
    """A backend remote logging one line."""

    def __init__(self, log: Logger) -> None:
        self.log = log

    def tell(self) -> str:
        self.log.info("told")
        return "ok"


class Frontend:
    """A frontend handler forwarding each request to chat-1's ``teller``."""

    def __init__(self, transport: LocalRpcTransport) -> None:
        self.transport = transport

    def request(self, agent: Any, route: str, body: bytes) -> Deferred[Any]:
        return self.transport.call("chat-1", "teller", "tell", (), 5.0)


class FollowedTests(SynchronousTestCase):
    """A request can be followed from the frontend to the backend by its rid."""

    def test_backend_line_carries_the_frontend_rid(self) -> None:
        """The backend's JSON line, logged within the call, carries the request's rid."""
        clock = Clock()
        out = io.StringIO()
        observer = JsonLogObserver(out, "chat-1", "chat")
        transport = LocalRpcTransport(clock)
        dispatcher = RemoteDispatcher()
        dispatcher.add("teller", Teller(Logger(observer=LogPublisher(observer))))
        transport.register("chat-1", dispatcher)
        hooks = RequestLog("connector-1", clock, random.Random(1))
        handler: Any = ObservedHandler(Frontend(transport), hooks)  # type: ignore[arg-type]
        d = handler.request(agent(), "chat.teller.tell", b"{}")
        clock.advance(0)
        self.assertEqual(self.successResultOf(d), "ok")
        (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
        self.assertRegex(line["rid"], r"^connector-1\.[0-9a-f]{8}\.1$")
        self.assertEqual((line["route"], line["sid"], line["uid"]), ("chat.teller.tell", "4", "u1"))
        self.assertIsNone(CALL_CONTEXT.get())
