"""The conformance harness itself: the echo hook and the acceptance bar."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial.unittest import SynchronousTestCase

from ..acceptors.helpers import OP_BINARY, OP_TEXT, client_frame, server_frames, upgrade_request
from ..acceptors.test_hybrid import GlobalReactorCheck
from .echo_server import EchoProtocol, echo_factory
from .run import acceptable

PEER = IPv4Address("TCP", "127.0.0.1", 50999)


class EchoTests(GlobalReactorCheck):
    """The echo server is the production protocol with messages sent back by opcode."""

    def test_echoes_text_and_binary_with_their_opcodes(self) -> None:
        """A text and a binary message come back whole, each with its own opcode."""
        protocol = echo_factory().buildProtocol(PEER)
        assert isinstance(protocol, EchoProtocol)
        transport = StringTransportWithDisconnection(peerAddress=PEER)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(upgrade_request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101"))
        transport.clear()
        protocol.dataReceived(
            client_frame("héllo".encode(), OP_TEXT) + client_frame(b"\x00\xff", OP_BINARY)
        )
        self.assertEqual(
            server_frames(transport.value()),
            [(OP_TEXT, "héllo".encode()), (OP_BINARY, b"\x00\xff")],
        )
        self.assertIsNone(protocol.agent)
        transport.loseConnection()


class AcceptanceTests(SynchronousTestCase):
    """Which kosoku outcomes ``make test-conformance`` accepts."""

    def test_bar(self) -> None:
        """OK/NON-STRICT/INFORMATIONAL pass; UNIMPLEMENTED only for 12.* and 13.*."""
        self.assertTrue(acceptable("1.1.1", "OK", "OK"))
        self.assertTrue(acceptable("6.4.3", "NON-STRICT", "OK"))
        self.assertTrue(acceptable("7.13.1", "INFORMATIONAL", "INFORMATIONAL"))
        self.assertTrue(acceptable("12.1.1", "UNIMPLEMENTED", "OK"))
        self.assertFalse(acceptable("1.1.1", "UNIMPLEMENTED", "OK"))
        self.assertFalse(acceptable("1.1.1", "FAILED", "OK"))
        self.assertFalse(acceptable("1.1.1", "OK", "UNCLEAN"))
        self.assertFalse(acceptable("5.1", "OK", "WRONG CODE"))
