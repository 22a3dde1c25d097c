"""Requests and notifies of the client core against a fake server."""

from __future__ import annotations

import msgpack
from twisted.internet.defer import CancelledError
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client import (
    MAX_REQUEST_ID,
    ClientError,
    ConnectionClosed,
    PomeloClient,
    RequestTimeout,
)
from pomelo_twisted.errors import SerializationError
from pomelo_twisted.protocol import Notify, Request, Response, decode_message
from pomelo_twisted.protocol.packet import PackageDecoder

from .helpers import DICTIONARY, FakeServer


class RequestTests(SynchronousTestCase):
    """request(): ids, mapping responses back, timeouts and closing."""

    def setUp(self) -> None:
        self.fake = FakeServer(self, request_timeout=10.0)
        self.client = self.fake.handshake()

    def requests(self) -> list[Request]:
        events = self.fake.receive()
        self.assertTrue(all(isinstance(e, Request) for e in events), events)
        return [e for e in events if isinstance(e, Request)]

    def respond(self, msg_id: int, body: object) -> None:
        self.fake.send(Response(msg_id, self.fake.json.encode(body)))

    def test_ids_start_at_one(self) -> None:
        """Request ids start at 1 and count up; route and body reach the server."""
        self.client.request("a.b.c", {"n": 1})
        self.client.request("a.b.d", [1, 2])
        [first, second] = self.requests()
        self.assertEqual((first.id, first.route, first.body), (1, "a.b.c", b'{"n":1}'))
        self.assertEqual((second.id, second.route, second.body), (2, "a.b.d", b"[1,2]"))

    def test_out_of_order_responses(self) -> None:
        """Each response fires the request with its id, whatever the order of arrival."""
        ds = [self.client.request("a.b.c", {"n": n}) for n in range(3)]
        self.requests()
        self.respond(3, "third")
        self.respond(1, "first")
        self.assertEqual(self.successResultOf(ds[0]), "first")
        self.assertNoResult(ds[1])
        self.assertEqual(self.successResultOf(ds[2]), "third")
        self.respond(2, "second")
        self.assertEqual(self.successResultOf(ds[1]), "second")
        self.assertEqual(self.client.pending_requests, 0)

    def test_two_hundred_in_flight(self) -> None:
        """200 requests in flight, answered in reverse in one chunk, each get their own body."""
        ds = [self.client.request("a.b.c", {"n": n}) for n in range(200)]
        reqs = self.requests()
        self.assertEqual([r.id for r in reqs], list(range(1, 201)))
        self.assertEqual(self.client.pending_requests, 200)
        self.fake.send(*(Response(r.id, b'{"echo":%d}' % r.id) for r in reversed(reqs)))
        self.assertEqual(
            [self.successResultOf(d) for d in ds], [{"echo": i} for i in range(1, 201)]
        )
        self.assertEqual(self.client.pending_requests, 0)

    def test_error_body_is_a_result(self) -> None:
        """A {"code": 500} body is delivered as the result, not as a failure."""
        d = self.client.request("nosuch.a.b", {})
        self.respond(1, {"code": 500, "msg": "no handler"})
        self.assertEqual(self.successResultOf(d), {"code": 500, "msg": "no handler"})

    def test_empty_response_body(self) -> None:
        """An empty response body decodes as {}."""
        d = self.client.request("a.b.c", {})
        self.fake.send(Response(1, b""))
        self.assertEqual(self.successResultOf(d), {})

    def test_request_timeout(self) -> None:
        """No response within request_timeout errbacks RequestTimeout naming route, id, seconds."""
        d = self.client.request("slow.handler.method", {})
        self.fake.clock.advance(10 - 2**-10)
        self.assertNoResult(d)
        self.fake.clock.advance(2**-10)
        error = self.failureResultOf(d, RequestTimeout).value
        self.assertEqual((error.route, error.id, error.seconds), ("slow.handler.method", 1, 10.0))
        message = str(error)
        for part in ("slow.handler.method", "1", "10 s"):
            self.assertIn(part, message)
        self.assertEqual(self.client.pending_requests, 0)

    def test_late_response_ignored(self) -> None:
        """A response arriving after its request timed out is ignored; the client goes on."""
        d = self.client.request("slow.handler.method", {})
        self.fake.clock.advance(10)
        self.failureResultOf(d, RequestTimeout)
        self.respond(1, "late")
        self.assertTrue(self.client.connected)
        d2 = self.client.request("a.b.c", {})
        self.respond(2, "on time")
        self.assertEqual(self.successResultOf(d2), "on time")

    def test_per_request_timeout(self) -> None:
        """A request's own timeout overrides the default; 0 means never."""
        short = self.client.request("a.b.c", {}, timeout=1.5)
        never = self.client.request("a.b.c", {}, timeout=0)
        self.fake.clock.advance(1.5)
        self.assertEqual(self.failureResultOf(short, RequestTimeout).value.seconds, 1.5)
        self.fake.clock.advance(1000)
        self.assertNoResult(never)
        self.respond(2, "finally")
        self.assertEqual(self.successResultOf(never), "finally")

    def test_no_default_timeout(self) -> None:
        """request_timeout=None leaves requests waiting and schedules no timer."""
        fake = FakeServer(self, request_timeout=None)
        d = fake.handshake().request("a.b.c", {})
        self.assertEqual(fake.clock.getDelayedCalls(), [])
        self.assertNoResult(d)

    def test_response_cancels_timer(self) -> None:
        """A response cancels the request's timer."""
        d = self.client.request("a.b.c", {})
        self.respond(1, "ok")
        self.successResultOf(d)
        self.assertEqual(self.fake.clock.getDelayedCalls(), [])

    def test_cancel_request(self) -> None:
        """Cancelling a request's Deferred forgets it; its response is then ignored."""
        d = self.client.request("a.b.c", {})
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.fake.clock.getDelayedCalls(), [])
        self.respond(1, "ignored")
        self.assertTrue(self.client.connected)

    def test_connection_lost_fails_pending(self) -> None:
        """Requests in flight errback ConnectionClosed(reason) when the connection goes."""
        ds = [self.client.request("a.b.c", {}) for _ in range(3)]
        self.fake.lose()
        for d in ds:
            self.assertEqual(
                self.failureResultOf(d, ConnectionClosed).value.reason, "connection closed"
            )
        self.assertEqual(self.fake.clock.getDelayedCalls(), [])

    def test_request_after_close(self) -> None:
        """A request after the connection closed fails at once with ConnectionClosed."""
        self.client.close()
        error = self.failureResultOf(self.client.request("a.b.c", {}), ConnectionClosed).value
        self.assertEqual(error.reason, "closed by client")
        self.assertRaises(ConnectionClosed, self.client.notify, "a.b.c", {})

    def test_request_before_handshake(self) -> None:
        """A request before the handshake is done fails with ClientError."""
        fake = FakeServer(self)
        fake.connect()
        self.failureResultOf(fake.client.request("a.b.c", {}), ClientError)
        self.assertRaises(ClientError, fake.client.notify, "a.b.c", {})

    def test_ids_wrap_and_skip_in_flight(self) -> None:
        """Ids wrap to 1 after MAX_REQUEST_ID (< 2**31-1), skipping ids still in flight."""
        self.assertEqual(MAX_REQUEST_ID, 2**31 - 2)
        self.client.request("a.b.c", {})  # id 1, stays in flight
        self.client.request("a.b.c", {})  # id 2, stays in flight
        self.client._requests._last_id = MAX_REQUEST_ID - 1
        self.client.request("a.b.c", {})
        self.client.request("a.b.c", {})
        self.assertEqual([r.id for r in self.requests()], [1, 2, MAX_REQUEST_ID, 3])

    def test_unencodable_body_raises(self) -> None:
        """A body the serializer cannot encode raises at once and sends nothing."""
        self.assertRaises(SerializationError, self.client.request, "a.b.c", {"x": object()})
        self.assertEqual(self.fake.written(), b"")
        self.assertEqual(self.client.pending_requests, 0)

    def test_notify(self) -> None:
        """notify() sends a notify message with the encoded body and expects no response."""
        self.client.notify("chat.chatHandler.typing", {"on": True})
        self.assertEqual(self.fake.receive(), [Notify("chat.chatHandler.typing", b'{"on":true}')])
        self.assertEqual(self.client.pending_requests, 0)
        self.assertEqual(self.fake.clock.getDelayedCalls(), [])


class CompressionAndSerializerTests(SynchronousTestCase):
    """Route compression from the dictionary and the msgpack serializer."""

    def test_routes_compressed_with_use_dict(self) -> None:
        """With useDict, routes in the dictionary travel as 2-byte codes."""
        fake = FakeServer(self)
        client = fake.handshake(dictionary=DICTIONARY, use_dict=True)
        client.request("chat.chatHandler.send", {})
        client.notify("unknown.route.here", {})
        [request, notify] = PackageDecoder().feed(fake.written())
        self.assertEqual(
            decode_message(request.body).route_code, DICTIONARY.code_of("chat.chatHandler.send")
        )
        self.assertEqual(decode_message(notify.body).route, "unknown.route.here")

    def test_msgpack_bodies(self) -> None:
        """With sys.serializer msgpack, request bodies are packed and responses unpacked."""
        fake = FakeServer(self)
        client = fake.handshake(serializer="msgpack")
        d = client.request("a.b.c", {"n": b"\x00\x01"})
        [request] = fake.receive()
        assert isinstance(request, Request)
        self.assertEqual(msgpack.unpackb(request.body), {"n": b"\x00\x01"})
        fake.send(Response(1, msgpack.packb({"ok": [1, 2]})))
        self.assertEqual(self.successResultOf(d), {"ok": [1, 2]})

    def test_undecodable_response(self) -> None:
        """A response body the serializer cannot decode errbacks that request only."""
        fake = FakeServer(self)
        client: PomeloClient = fake.handshake()
        d = client.request("a.b.c", {})
        fake.send(Response(1, b"{not json"))
        self.failureResultOf(d, SerializationError)
        self.assertTrue(client.connected)
