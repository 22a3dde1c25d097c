"""Pushes, kicks and the end of a connection, against a fake server."""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionLost
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client import ConnectionClosed
from pomelo_twisted.protocol import Kick, Push, Response

from .helpers import DICTIONARY, FakeServer


class PushTests(SynchronousTestCase):
    """on()/off(): push callbacks by route."""

    def setUp(self) -> None:
        self.fake = FakeServer(self)
        self.client = self.fake.handshake(dictionary=DICTIONARY, use_dict=True)

    def test_push_string_route(self) -> None:
        """A push on a route outside the dictionary reaches every callback for that route."""
        first: list[Any] = []
        second: list[Any] = []
        self.client.on("onMove", first.append)
        self.client.on("onMove", second.append)
        self.client.on("onOther", self.fail)
        self.fake.send(Push("onMove", b'{"x":1}'))
        self.assertEqual((first, second), ([{"x": 1}], [{"x": 1}]))

    def test_push_compressed_route(self) -> None:
        """A push whose route travels as a dictionary code is delivered under its name."""
        got: list[Any] = []
        self.client.on("onChat", got.append)
        data = self.fake.server.send(Push("onChat", b'{"msg":"hi"}'))
        self.assertEqual(data[4] & 0x01, 1)  # the route is compressed on the wire
        self.fake.protocol.dataReceived(data)
        self.assertEqual(got, [{"msg": "hi"}])

    def test_off(self) -> None:
        """off() removes one callback; removing an unknown one is not an error."""
        got: list[Any] = []
        self.client.on("onMove", got.append)
        self.client.on("onMove", self.fail)
        self.client.off("onMove", self.fail)
        self.client.off("onMove", self.fail)
        self.client.off("nothing", got.append)
        self.fake.send(Push("onMove", b"1"))
        self.assertEqual(got, [1])

    def test_any_push_callback_sees_every_route(self) -> None:
        """on_any_push gets (route, body) of every push, after the route's own callbacks."""
        order: list[Any] = []
        self.client.on("onMove", lambda body: order.append(("route", body)))
        self.client.on_any_push(lambda route, body: order.append((route, body)))
        self.client.on_any_push(lambda route, body: 1 / 0)
        self.fake.send(Push("onMove", b"1"), Push("onChat", b'{"msg":"hi"}'))
        self.assertEqual(order, [("route", 1), ("onMove", 1), ("onChat", {"msg": "hi"})])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)
        self.assertTrue(self.client.connected)

    def test_push_without_callback(self) -> None:
        """A push nobody listens to is dropped; the connection stays up."""
        self.fake.send(Push("onNobody", b"{}"))
        self.assertTrue(self.client.connected)

    def test_failing_callback(self) -> None:
        """A callback that raises is logged; the other callbacks still run."""
        got: list[Any] = []
        self.client.on("onMove", lambda body: 1 / 0)
        self.client.on("onMove", got.append)
        self.fake.send(Push("onMove", b"{}"))
        self.assertEqual(got, [{}])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_push_and_response_in_one_chunk(self) -> None:
        """A push and a response in one chunk are both handled, in order."""
        order: list[Any] = []
        self.client.on("onMove", lambda body: order.append(("push", body)))
        d = self.client.request("a.b.c", {})
        d.addCallback(lambda body: order.append(("response", body)))
        self.fake.send(Push("onMove", b"1"), Response(1, b"2"))
        self.assertEqual(order, [("push", 1), ("response", 2)])

    def test_callback_closing_drops_rest_of_chunk(self) -> None:
        """Once a push callback closes the client, the rest of the chunk is not dispatched."""
        got: list[Any] = []
        self.client.on("onMove", lambda body: self.client.close())
        self.client.on("onLater", got.append)
        d = self.client.request("a.b.c", {})
        self.fake.send(Push("onMove", b"1"), Response(1, b"2"), Push("onLater", b"3"))
        self.assertEqual(self.failureResultOf(d, ConnectionClosed).value.reason, "closed by client")
        self.assertEqual(got, [])


class CloseTests(SynchronousTestCase):
    """Kick, close(), the closed Deferred and on_close."""

    def setUp(self) -> None:
        self.fake = FakeServer(self)
        self.client = self.fake.handshake()
        self.closes: list[str] = []
        self.client.on_close(self.closes.append)

    def test_kick(self) -> None:
        """A kick calls on_kick with the reason, fails requests in flight and hangs up."""
        kicks: list[str] = []
        self.client.on_kick(kicks.append)
        d = self.client.request("a.b.c", {})
        closed = self.client.closed
        self.fake.send(Kick("duplicate login"))
        self.assertEqual(kicks, ["duplicate login"])
        error = self.failureResultOf(d, ConnectionClosed).value
        self.assertEqual(error.reason, "kicked: duplicate login")
        self.assertIn("kicked: duplicate login", str(error))
        self.assertTrue(self.fake.transport.disconnecting)
        self.assertFalse(self.client.connected)
        self.assertNoResult(closed)
        self.fake.lose()
        self.assertEqual(self.successResultOf(closed), "kicked: duplicate login")
        self.assertEqual(self.closes, ["kicked: duplicate login"])

    def test_close(self) -> None:
        """close() hangs up; `closed` fires with "closed by client" once the transport is gone."""
        closed = self.client.close()
        self.assertTrue(self.fake.transport.disconnecting)
        self.assertNoResult(closed)
        self.fake.lose()
        self.assertEqual(self.successResultOf(closed), "closed by client")
        self.assertEqual(self.closes, ["closed by client"])
        self.assertEqual(self.successResultOf(self.client.close()), "closed by client")

    def test_peer_closes(self) -> None:
        """The server hanging up fires `closed` and on_close once, with the transport's reason."""
        closed = self.client.closed
        self.fake.lose(ConnectionLost)
        reason = self.successResultOf(closed)
        self.assertTrue(reason.startswith("connection lost:"), reason)
        self.assertEqual(self.closes, [reason])
        self.fake.lose()
        self.assertEqual(self.closes, [reason])
        self.assertEqual(self.successResultOf(self.client.closed), reason)

    def test_each_closed_is_new(self) -> None:
        """Every access to `closed` gives a separate Deferred, so several waiters can await it."""
        first, second = self.client.closed, self.client.closed
        self.assertIsNot(first, second)
        self.fake.lose()
        self.assertEqual(self.successResultOf(first), self.successResultOf(second))

    def test_protocol_violation(self) -> None:
        """A malformed package from the server closes with a "protocol error" reason."""
        closed = self.client.closed
        self.fake.protocol.dataReceived(b"\x09\x00\x00\x00")
        self.assertTrue(self.fake.transport.disconnecting)
        self.fake.lose()
        self.assertTrue(self.successResultOf(closed).startswith("protocol error:"))

    def test_failing_close_callback(self) -> None:
        """An on_close callback that raises is logged and does not stop the others."""
        self.client.on_close(lambda reason: 1 / 0)
        after: list[str] = []
        self.client.on_close(after.append)
        self.fake.lose()
        self.assertEqual(after, ["connection closed"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_data_after_close_ignored(self) -> None:
        """Packages arriving after close() are ignored."""
        got: list[Any] = []
        self.client.on("onMove", got.append)
        self.client.close()
        self.fake.protocol.dataReceived(self.fake.server.send(Push("onMove", b"1")))
        self.assertEqual(got, [])
