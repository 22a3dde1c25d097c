"""The conformance kit's raw connection: packages queued in order, the close, timeouts."""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.conformance import Closed, StepTimeout, Wire, dial
from pomelo_twisted.conformance.wire import stream_protocol, transport_of
from pomelo_twisted.protocol import Package, PackageType


def _connected(clock: Clock) -> tuple[Wire, Any, StringTransport]:
    wire = Wire(clock, "tcp")
    protocol = stream_protocol(wire)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return wire, protocol, transport


class WireTests(SynchronousTestCase):
    """Wire over a stream."""

    def test_packages_in_order_then_closed(self) -> None:
        """Packages split over reads come out whole and in order, then the close."""
        clock = Clock()
        wire, protocol, _transport = _connected(clock)
        protocol.dataReceived(b"\x03\x00\x00\x00\x05\x00")
        protocol.dataReceived(b"\x00\x02{}")
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(wire.next(1)), Package(PackageType.HEARTBEAT))
        self.assertEqual(self.successResultOf(wire.next(1)), Package(PackageType.KICK, b"{}"))
        closed = self.successResultOf(wire.next(1))
        self.assertIsInstance(closed, Closed)
        self.assertTrue(wire.closed)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_sends_bytes_as_given(self) -> None:
        """send writes exactly the bytes; drop closes the transport."""
        wire, _protocol, transport = _connected(Clock())
        wire.send(b"\x09\x00\x00\x00")
        self.assertEqual(transport.value(), b"\x09\x00\x00\x00")
        wire.drop()
        self.assertTrue(transport.disconnecting)

    def test_invalid_package_from_the_server(self) -> None:
        """A package the decoder refuses ends the wire with a reason, and it is dropped."""
        wire, protocol, transport = _connected(Clock())
        protocol.dataReceived(b"\x07\x00\x00\x00")
        closed = self.successResultOf(wire.next(1))
        assert isinstance(closed, Closed)
        self.assertIn("the server sent an invalid package", closed.reason)
        self.assertTrue(transport.disconnecting)

    def test_timeout(self) -> None:
        """next fails with StepTimeout when nothing arrives in time; a later package waits."""
        clock = Clock()
        wire, protocol, _transport = _connected(clock)
        d = wire.next(2)
        clock.advance(2)
        self.assertEqual(
            str(self.failureResultOf(d, StepTimeout).value), "nothing arrived within 2s"
        )
        protocol.dataReceived(b"\x03\x00\x00\x00")
        self.assertEqual(self.successResultOf(wire.next(2)), Package(PackageType.HEARTBEAT))


class DialTests(SynchronousTestCase):
    """dial() and the transport of a target."""

    def test_transport_of(self) -> None:
        """ws:// and wss:// URLs are WebSocket; endpoint strings are streams."""
        self.assertEqual(transport_of("ws://127.0.0.1:3010/"), "ws")
        self.assertEqual(transport_of("WSS://game.example.com/"), "ws")
        self.assertEqual(transport_of("tcp:\\:\\:1:3010"), "tcp")

    def test_bad_targets(self) -> None:
        """A WebSocket URL without a host, or an unknown endpoint type, is a ValueError."""
        reactor: Any = MemoryReactorClock()
        with self.assertRaises(ValueError):
            dial(reactor, "ws:///path", 1)
        with self.assertRaises(ValueError):
            dial(reactor, "nosuch:1", 1)

    def test_ipv6_endpoint_string(self) -> None:
        """A quoted IPv6 address in a tcp: string connects to that address."""
        reactor: Any = MemoryReactorClock()
        dial(reactor, "tcp:\\:\\:1:3010", 1)
        host, port = reactor.tcpClients[0][:2]
        self.assertEqual((host, port), ("::1", 3010))

    def test_connect_timeout(self) -> None:
        """A connection that does not complete in time fails naming the target."""
        reactor: Any = MemoryReactorClock()
        d = dial(reactor, "tcp:127.0.0.1:3010", 3)
        reactor.advance(3)
        failure = self.failureResultOf(d, StepTimeout)
        self.assertEqual(str(failure.value), "could not connect to tcp:127.0.0.1:3010 within 3s")
