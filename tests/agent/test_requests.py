"""Requests and notifies: exactly one response per request id, limits, errors."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.errors import RpcTimeout
from pomelo_twisted.protocol import (
    HandshakeAck,
    MessageType,
    Notify,
    PackageType,
    Request,
    encode_message,
    encode_package,
)
from pomelo_twisted.responses import EncodedBody
from pomelo_twisted.testing import echo_dictionary

from .helpers import connect

ECHO = "connector.entryHandler.echo"
PUSH = "connector.entryHandler.push"
FAIL = "connector.entryHandler.fail"
ERROR = "connector.entryHandler.error"


def raw_message(
    msg_type: MessageType, msg_id: int, route: str, body: bytes = b"{}", route_code: int = 0
) -> bytes:
    """A data package built by hand (for what ClientConnection refuses to send)."""
    message = encode_message(msg_type, msg_id, route, body, route_code=route_code)
    return encode_package(PackageType.DATA, message)


class BeforeAckTests(SynchronousTestCase):
    """Data before the handshake ack."""

    def test_request_before_ack_dropped_and_counted(self) -> None:
        """A request between handshake reply and ack gets no response and is counted."""
        conn = connect(ack=False)
        conn.feed(raw_message(MessageType.REQUEST, 1, ECHO))
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agents.metrics.dropped, {"message before the handshake ack": 1})
        self.assertEqual(conn.agents.metrics.requests, 0)
        conn.send(HandshakeAck())
        conn.written()
        conn.request(2, ECHO, {"after": "ack"})
        self.assertEqual(conn.responses(), [(2, {"after": "ack"})])
        self.assertTrue(conn.open)


class ResponseTests(SynchronousTestCase):
    """Every request with an id gets exactly one response."""

    def test_echo(self) -> None:
        """A plain request is answered at once with its id and the handler's result."""
        conn = connect()
        conn.request(1, ECHO, {"a": [1, 2]})
        self.assertEqual(conn.responses(), [(1, {"a": [1, 2]})])
        self.assertEqual(conn.agents.metrics.requests, 1)

    def test_string_and_compressed_routes(self) -> None:
        """A route sent as a string and as its dictionary code reach the same handler."""
        conn = connect()
        code = echo_dictionary().code_of(ECHO)
        conn.feed(raw_message(MessageType.REQUEST, 2, ECHO, b'{"x":2}'))
        conn.feed(raw_message(MessageType.REQUEST, 3, "", b'{"x":3}', route_code=code))
        self.assertEqual(conn.responses(), [(2, {"x": 2}), (3, {"x": 3})])

    def test_handler_exception_answers_500(self) -> None:
        """A handler exception is answered {"code":500,"msg":"internal server error"}."""
        conn = connect()
        conn.request(4, FAIL)
        self.assertEqual(conn.responses(), [(4, {"code": 500, "msg": "internal server error"})])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(conn.open)

    def test_handler_error_answers_its_code(self) -> None:
        """HandlerError(code, msg) is answered with that code and msg."""
        conn = connect()
        conn.request(5, ERROR, {"code": 403, "msg": "forbidden"})
        self.assertEqual(conn.responses(), [(5, {"code": 403, "msg": "forbidden"})])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_unknown_route_answers_500(self) -> None:
        """A route the handler does not know is answered with code 500 and a message."""
        conn = connect()
        conn.request(6, "connector.entryHandler.nosuch")
        self.assertEqual(
            conn.responses(),
            [(6, {"code": 500, "msg": "no handler for route connector.entryHandler.nosuch"})],
        )

    def test_unknown_route_code_answers_404(self) -> None:
        """A compressed route code not in the dictionary is answered 404 (no such route)."""
        conn = connect()
        conn.feed(raw_message(MessageType.REQUEST, 7, "", route_code=999))
        self.assertEqual(conn.responses(), [(7, {"code": 404, "msg": "unknown route code 999"})])
        self.assertTrue(conn.open)

    def test_unknown_route_code_notify_counted(self) -> None:
        """A notify with an unknown route code gets nothing back and is counted as dropped."""
        conn = connect()
        conn.feed(raw_message(MessageType.NOTIFY, 0, "", route_code=999))
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agents.metrics.dropped, {"notify with unknown route code": 1})

    def test_invalid_json_body_answers_400(self) -> None:
        """A body that is not valid JSON is answered with code 400; the handler is not called."""
        conn = connect()
        conn.send(Request(8, ECHO, b"{not json"))
        self.assertEqual(conn.responses(), [(8, {"code": 400, "msg": "body is not valid json"})])

    def test_empty_body_is_an_empty_object(self) -> None:
        """An empty body reaches the handler as {}."""
        conn = connect()
        conn.send(Request(9, ECHO, b""))
        self.assertEqual(conn.responses(), [(9, {})])

    def test_id_zero_is_a_notify(self) -> None:
        """A request with id 0 runs as a notify and is never answered."""
        conn = connect()
        conn.feed(raw_message(MessageType.REQUEST, 0, ECHO, b'{"n":1}'))
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.handler.notified, [(ECHO, {"n": 1})])
        self.assertEqual(conn.agents.metrics.notifies, 1)
        self.assertEqual(conn.agents.metrics.requests, 0)

    def test_notify_push(self) -> None:
        """A notify to *.push is not answered but pushes its body back on onPush."""
        conn = connect()
        conn.feed(raw_message(MessageType.NOTIFY, 0, PUSH, b'{"hi":1}'))
        (push,) = conn.events()
        self.assertEqual(
            (type(push).__name__, push.route, push.body), ("Push", "onPush", b'{"hi":1}')
        )

    def test_deferred_responses_out_of_order(self) -> None:
        """Unordered (``ordered=False``), delayed responses arrive in completion order,
        each with its request's id."""
        conn = connect(AgentConfig(ordered=False))
        conn.request(1, ECHO, {"delayMs": 300})
        conn.request(2, ECHO, {"delayMs": 100})
        conn.request(3, ECHO, {"delayMs": 200})
        conn.request(4, ECHO, {"now": True})
        self.assertEqual(conn.responses(), [(4, {"now": True})])
        conn.clock.advance(0.1)
        self.assertEqual(conn.responses(), [(2, {"delayMs": 100})])
        conn.clock.advance(0.1)
        self.assertEqual(conn.responses(), [(3, {"delayMs": 200})])
        conn.clock.advance(0.1)
        self.assertEqual(conn.responses(), [(1, {"delayMs": 300})])
        conn.clock.advance(10)
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.client.pending, 0)

    def test_response_after_close_dropped_and_counted(self) -> None:
        """A response completing after the client left is dropped, counted, and raises nothing."""
        conn = connect()
        conn.request(1, ECHO, {"delayMs": 100})
        conn.transport.loseConnection()
        self.assertEqual(conn.agent.close_reason, "client closed")
        conn.clock.advance(0.1)
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agents.metrics.responses_dropped, 1)
        self.assertEqual(conn.agents.metrics.closed, {"client closed": 1})


class RateLimitTests(SynchronousTestCase):
    """The per-connection token bucket (``request_rate`` / ``request_burst``)."""

    def test_burst_then_429_then_refill(self) -> None:
        """Beyond the burst requests get 429; tokens come back at ``request_rate`` per second."""
        conn = connect(AgentConfig(request_rate=2, request_burst=3, heartbeat=None))
        for msg_id in range(1, 5):
            conn.request(msg_id, ECHO, {"n": msg_id})
        limited = {"code": 429, "msg": "request rate limit exceeded"}
        self.assertEqual(
            conn.responses(), [(1, {"n": 1}), (2, {"n": 2}), (3, {"n": 3}), (4, limited)]
        )
        self.assertEqual(conn.agents.metrics.rate_limited, 1)
        conn.clock.advance(0.25)  # half a token
        conn.request(5, ECHO)
        self.assertEqual(conn.responses(), [(5, limited)])
        conn.clock.advance(0.25)  # one token (the refused request spent none)
        conn.request(6, ECHO)
        conn.request(7, ECHO)
        self.assertEqual(conn.responses(), [(6, {}), (7, limited)])
        conn.clock.advance(100)  # refill caps at the burst
        for msg_id in range(8, 12):
            conn.request(msg_id, ECHO)
        self.assertEqual([body for _, body in conn.responses()], [{}, {}, {}, limited])
        self.assertEqual(conn.agents.metrics.rate_limited, 4)
        self.assertTrue(conn.open)

    def test_notifies_over_the_limit_dropped(self) -> None:
        """Notifies share the bucket; one over the limit is dropped and counted."""
        conn = connect(AgentConfig(request_rate=1, request_burst=1, heartbeat=None))
        conn.feed(raw_message(MessageType.NOTIFY, 0, ECHO, b'{"n":1}'))
        conn.feed(raw_message(MessageType.NOTIFY, 0, ECHO, b'{"n":2}'))
        self.assertEqual(conn.handler.notified, [(ECHO, {"n": 1})])
        self.assertEqual(conn.agents.metrics.dropped, {"notify over the rate limit": 1})

    def test_no_limit_when_rate_is_none(self) -> None:
        """``request_rate=None`` admits any number of requests."""
        conn = connect(AgentConfig(request_rate=None, request_burst=1, heartbeat=None))
        for msg_id in range(1, 51):
            conn.request(msg_id, ECHO)
        self.assertEqual(len(conn.responses()), 50)
        self.assertEqual(conn.agents.metrics.rate_limited, 0)


class InflightTests(SynchronousTestCase):
    """``max_inflight``: requests of one connection being handled at once."""

    def test_over_max_inflight_answers_503(self) -> None:
        """With two slow requests pending a third is answered 503; once done, requests work
        (unordered; queued requests count too: tests/agent/test_ordering.py)."""
        conn = connect(AgentConfig(max_inflight=2, heartbeat=None, ordered=False))
        conn.request(1, ECHO, {"delayMs": 100})
        conn.request(2, ECHO, {"delayMs": 100})
        conn.request(3, ECHO)
        self.assertEqual(
            conn.responses(), [(3, {"code": 503, "msg": "too many requests in flight"})]
        )
        conn.clock.advance(0.1)
        self.assertEqual(sorted(i for i, _ in conn.responses()), [1, 2])
        conn.request(4, ECHO, {"delayMs": 100})
        conn.request(5, ECHO, {"delayMs": 100})
        conn.clock.advance(0.1)
        self.assertEqual(sorted(i for i, _ in conn.responses()), [4, 5])


class RawBodyTests(SynchronousTestCase):
    """The raw-body contract: the agent hands bodies over undecoded and writes results."""

    def test_handler_gets_the_body_bytes(self) -> None:
        """request and notify get the body as the client sent it, bytes, undecoded."""
        conn = connect()
        seen: list[tuple[str, object]] = []
        conn.handler.request = lambda agent, route, body: seen.append((route, body)) or {}  # type: ignore[method-assign]
        conn.handler.notify = lambda agent, route, body: seen.append((route, body))  # type: ignore[method-assign]
        conn.send(Request(1, ECHO, b'{"a": 1}'))
        conn.send(Notify(ECHO, b"not json"))
        self.assertEqual(seen, [(ECHO, b'{"a": 1}'), (ECHO, b"not json")])

    def test_encoded_body_written_as_is(self) -> None:
        """An EncodedBody result goes out unchanged, at once or later."""
        conn = connect()
        later: Deferred[object] = Deferred()
        results = iter([EncodedBody(b'{"ready":1}'), later])
        conn.handler.request = lambda agent, route, body: next(results)  # type: ignore[method-assign]
        conn.send(Request(1, ECHO, b"{}"))
        conn.send(Request(2, ECHO, b"{}"))
        later.callback(EncodedBody(b'{"later":2}'))
        self.assertEqual(conn.responses(), [(1, {"ready": 1}), (2, {"later": 2})])

    def test_coroutine_and_failure_response(self) -> None:
        """A coroutine's result is answered; a failure goes through failure_response."""
        conn = connect()

        async def answer(agent: object, route: str, body: bytes) -> object:
            if body == b"{}":
                return {"ok": True}
            raise RpcTimeout("chat-1 did not answer")

        conn.handler.request = answer  # type: ignore[method-assign]
        conn.send(Request(1, ECHO, b"{}"))
        conn.send(Request(2, ECHO, b"[]"))
        self.assertEqual(
            conn.responses(),
            [(1, {"ok": True}), (2, {"code": 504, "msg": "request timed out"})],
        )
