"""failure_response: the one map from a request's failure to what its client is answered."""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import (
    BadRequest,
    CircuitOpen,
    HandlerError,
    PeerUnavailable,
    RequestTimeout,
    RouteNotFound,
    RpcError,
    RpcTimeout,
    ServerUnavailable,
)
from pomelo_twisted.responses import failure_response


def answer(exc: BaseException) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The body ``exc`` is answered with, and what was logged meanwhile."""
    with capturedLogs() as events:
        body = failure_response(Failure(exc), "chat.chatHandler.send")
    return body, list(events)


class FailureResponseTests(SynchronousTestCase):
    """Documented codes; no internal text to the client; details in the log at the right level."""

    def test_handler_errors_answer_their_own_code(self) -> None:
        """A game's HandlerError and the framework's kinds answer their code and message."""
        cases = [
            (HandlerError(409, "taken"), {"code": 409, "msg": "taken"}),
            (BadRequest("body is not valid json"), {"code": 400, "msg": "body is not valid json"}),
            (RouteNotFound("no route 'x.y.z'"), {"code": 404, "msg": "no route 'x.y.z'"}),
            (ServerUnavailable(), {"code": 503, "msg": "server unavailable"}),
            (RequestTimeout(), {"code": 504, "msg": "request timed out"}),
        ]
        for exc, expected in cases:
            body, _ = answer(exc)
            self.assertEqual(body, expected)

    def test_rpc_timeout_is_504_without_server_names(self) -> None:
        """A forwarded call's timeout answers 504; the server id stays in the log."""
        body, events = answer(RpcTimeout("rpc pomelo.sys.forward to 'chat-server-1' timed out"))
        self.assertEqual(body, {"code": 504, "msg": "request timed out"})
        self.assertNotIn("chat-server-1", str(body))
        self.assertTrue(any("chat-server-1" in str(e.get("error")) for e in events))

    def test_rpc_error_is_a_generic_500_logged_as_a_warning(self) -> None:
        """Another RPC failure answers a generic 500; the log has the details, at warn."""
        body, events = answer(RpcError("connection refused by 10.0.0.7:4250"))
        self.assertEqual(body, {"code": 500, "msg": "internal server error"})
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])

    def test_peer_unavailable_is_503(self) -> None:
        """A call that could not be sent (peer down, breaker open) answers 503, logged at
        warn with the server id, which the client never sees."""
        for exc in (
            PeerUnavailable("rpc chatRemote.send to server 'chat-server-1': the server is down"),
            CircuitOpen("rpc chatRemote.send to server 'chat-server-1': the breaker is open"),
        ):
            body, events = answer(exc)
            self.assertEqual(body, {"code": 503, "msg": "server unavailable"})
            self.assertNotIn("chat-server-1", str(body))
            self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])

    def test_cancelled_request(self) -> None:
        """A cancelled request answers 500 'request cancelled', logged at debug only."""
        body, events = answer(CancelledError())
        self.assertEqual(body, {"code": 500, "msg": "request cancelled"})
        self.assertEqual([e["log_level"] for e in events], [LogLevel.debug])

    def test_handler_bug_is_an_error_not_critical(self) -> None:
        """A handler's exception answers a generic 500 and logs its traceback at error level
        (critical is for a server that cannot run)."""
        body, events = answer(KeyError("secret internal detail"))
        self.assertEqual(body, {"code": 500, "msg": "internal server error"})
        self.assertNotIn("secret", str(body))
        self.assertEqual([e["log_level"] for e in events], [LogLevel.error])
        self.assertIn("log_failure", events[0])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
