"""Writing to a TCP socket at once when nothing is queued (``pomelo_twisted.eagerwrite``)."""

from __future__ import annotations

import errno
import hashlib
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.eagerwrite import socket_send, write_eagerly


class FakeTcpTransport:
    """The attributes of a Twisted TCP connection that ``write_eagerly`` reads."""

    def __init__(self, accept: list[int | BaseException]) -> None:
        self.accept = accept  # what each send returns (bytes taken) or raises
        self.sent: list[bytes] = []
        self.written: list[bytes] = []
        self._tempDataLen = 0
        self.dataBuffer = b""
        self.connected = True
        self.disconnecting = False
        self._writeDisconnected = False
        self.TLS = False

    def send(self, data: bytes) -> int:
        outcome = self.accept.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        self.sent.append(data[:outcome])
        return outcome

    def write(self, data: bytes) -> None:
        self.written.append(data)


class WriteEagerlyTests(SynchronousTestCase):
    """When the socket is written directly and when Twisted's queue takes the bytes."""

    def test_empty_queue_sends_at_once(self) -> None:
        """Nothing queued and the kernel takes it all: one send, no transport.write."""
        transport = FakeTcpTransport([5])
        write_eagerly(transport, transport.send, b"hello")
        self.assertEqual((transport.sent, transport.written), ([b"hello"], []))

    def test_partial_send_queues_the_rest(self) -> None:
        """The bytes the kernel did not take go to transport.write, in order."""
        transport = FakeTcpTransport([2])
        write_eagerly(transport, transport.send, b"hello")
        self.assertEqual((transport.sent, transport.written), ([b"he"], [b"llo"]))

    def test_would_block_queues_everything(self) -> None:
        """EAGAIN: every byte goes to transport.write."""
        transport = FakeTcpTransport([BlockingIOError(errno.EAGAIN, "again")])
        write_eagerly(transport, transport.send, b"hello")
        self.assertEqual((transport.sent, transport.written), ([], [b"hello"]))

    def test_send_error_is_left_to_twisted(self) -> None:
        """A dead socket: the bytes go to transport.write, which finds and reports the loss."""
        transport = FakeTcpTransport([ConnectionResetError(errno.ECONNRESET, "reset")])
        write_eagerly(transport, transport.send, b"hello")
        self.assertEqual(transport.written, [b"hello"])

    def test_queued_bytes_keep_their_place(self) -> None:
        """Bytes already queued in Twisted (either buffer) go first: no send at all."""
        for attribute, value in [("_tempDataLen", 3), ("dataBuffer", b"abc")]:
            transport = FakeTcpTransport([5])
            setattr(transport, attribute, value)
            write_eagerly(transport, transport.send, b"hello")
            self.assertEqual((transport.sent, transport.written), ([], [b"hello"]), attribute)

    def test_closing_or_tls_connections_use_twisted(self) -> None:
        """Closing, half-closed, disconnected or TLS connections always use transport.write."""
        for attribute, value in [
            ("disconnecting", True),
            ("_writeDisconnected", True),
            ("connected", False),
            ("TLS", True),
        ]:
            transport = FakeTcpTransport([5])
            setattr(transport, attribute, value)
            write_eagerly(transport, transport.send, b"hello")
            self.assertEqual((transport.sent, transport.written), ([], [b"hello"]), attribute)

    def test_no_send_means_transport_write(self) -> None:
        """Without a socket send (not a TCP transport) every write is transport.write."""
        transport = FakeTcpTransport([])
        write_eagerly(transport, None, b"hello")
        self.assertEqual(transport.written, [b"hello"])

    def test_only_tcp_connections_qualify(self) -> None:
        """socket_send is None for anything but a Twisted TCP connection."""
        self.assertIsNone(socket_send(StringTransport()))
        self.assertIsNone(socket_send(None))


CHUNK = 64 * 1024
CHUNKS = 160  # 10 MiB: far more than the kernel buffers, so sends are partial and queued


class Writer(Protocol):
    """Writes CHUNKS numbered chunks with write_eagerly as soon as it is connected."""

    def connectionMade(self) -> None:
        self.send = socket_send(self.transport)
        digest = hashlib.sha256()
        for index in range(CHUNKS):
            chunk = index.to_bytes(4, "big") * (CHUNK // 4)
            digest.update(chunk)
            write_eagerly(self.transport, self.send, chunk)
        self.factory.digest = digest.hexdigest()  # type: ignore[attr-defined]
        self.transport.loseConnection()  # type: ignore[union-attr]


class Reader(Protocol):
    """Hashes everything it receives until the connection closes."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.done: Deferred[Any] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done.callback((self.size, self.digest.hexdigest()))


class LoopbackTests(TestCase):
    """Over a real loopback socket."""

    @inlineCallbacks
    def test_every_byte_arrives_in_order(self) -> None:
        """10 MiB written eagerly (sends partial, then queued) arrive whole and in order."""
        factory = Factory.forProtocol(Writer)
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        reader = Reader()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        yield connectProtocol(endpoint, reader)
        size, digest = yield reader.done
        self.assertEqual(size, CHUNK * CHUNKS)
        self.assertEqual(digest, factory.digest)  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_tcp_connection_gets_the_socket_send(self) -> None:
        """A real TCP connection's transport qualifies for eager writes."""
        seen: list[object] = []

        class Probe(Protocol):
            def connectionMade(self) -> None:
                seen.append(socket_send(self.transport))
                self.transport.loseConnection()  # type: ignore[union-attr]

        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            Factory.forProtocol(Probe)
        )
        self.addCleanup(port.stopListening)
        reader = Reader()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), reader)
        yield reader.done
        self.assertEqual(len(seen), 1)
        self.assertTrue(callable(seen[0]))
