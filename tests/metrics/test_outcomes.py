"""The outcome label of a request or an RPC, from what it ended with."""

from __future__ import annotations

import json

import msgpack
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError, PeerUnavailable, RpcError, RpcTimeout
from pomelo_twisted.metrics.outcomes import call_outcome, encoded_code, request_outcome
from pomelo_twisted.responses import EncodedBody


def failed(exc: Exception) -> Failure:
    try:
        raise exc
    except Exception:
        return Failure()


class RequestOutcomeTests(SynchronousTestCase):
    """request_outcome: ok or the error code the client was answered."""

    def test_plain_bodies(self) -> None:
        """A dict without a code, with 200, or None is ok; another int code is that code."""
        self.assertEqual(request_outcome({"text": "hi"}), "ok")
        self.assertEqual(request_outcome({"code": 200, "uid": "a"}), "ok")
        self.assertEqual(request_outcome(None), "ok")
        self.assertEqual(request_outcome({"code": 500, "msg": "no"}), "500")
        self.assertEqual(request_outcome({"code": "weird"}), "ok")

    def test_failures_coded_as_the_client_is_answered(self) -> None:
        """A HandlerError gives its code, an RPC timeout 504, a peer down 503, else 500."""
        self.assertEqual(request_outcome(failed(HandlerError(404, "x"))), "404")
        self.assertEqual(request_outcome(failed(HandlerError(1001, "game"))), "1001")
        self.assertEqual(request_outcome(failed(RpcTimeout("t"))), "504")
        self.assertEqual(request_outcome(failed(PeerUnavailable("p"))), "503")
        self.assertEqual(request_outcome(failed(RpcError("e"))), "500")
        self.assertEqual(request_outcome(failed(ValueError("bug"))), "500")

    def test_forwarded_json_bodies(self) -> None:
        """A forwarded JSON answer is read from its leading code only."""
        for body, expected in (
            ({"code": 500, "msg": "x"}, "500"),
            ({"code": 200}, "ok"),
            ({"rid": "1"}, "ok"),
            ({"code": 65535}, "65535"),
        ):
            encoded = EncodedBody(json.dumps(body, separators=(",", ":")).encode())
            self.assertEqual(request_outcome(encoded), expected, body)
        self.assertEqual(encoded_code(b'{ "code" : 404, "msg": "x"}'), "404")
        self.assertEqual(encoded_code(b""), "ok")
        self.assertEqual(encoded_code(b"[1]"), "ok")

    def test_forwarded_msgpack_bodies(self) -> None:
        """A forwarded msgpack answer is read from its leading code, in every int width."""
        for code, expected in ((5, "5"), (200, "ok"), (250, "250"), (504, "504"), (1001, "1001")):
            body = EncodedBody(msgpack.packb({"code": code, "msg": "m"}))
            self.assertEqual(request_outcome(body), expected, code)
        self.assertEqual(encoded_code(msgpack.packb({"rid": 1})), "ok")
        self.assertEqual(encoded_code(msgpack.packb({"code": "x"})), "ok")


class CallOutcomeTests(SynchronousTestCase):
    """call_outcome: ok, timeout or error."""

    def test_outcomes(self) -> None:
        """None is ok, an RpcTimeout a timeout, anything else an error."""
        self.assertEqual(call_outcome(None), "ok")
        self.assertEqual(call_outcome(failed(RpcTimeout("t"))), "timeout")
        self.assertEqual(call_outcome(failed(PeerUnavailable("p"))), "error")
        self.assertEqual(call_outcome(failed(ValueError("v"))), "error")
