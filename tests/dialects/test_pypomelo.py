"""pypomelo 1.0.1 served unmodified with the dictionary on: route codes for its requests,
string routes for its pushes."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.dialects import PypomeloNegotiator, is_pypomelo
from pomelo_twisted.dialects.pypomelo import PYPOMELO_SYS
from pomelo_twisted.interfaces import IHandshakeNegotiator
from pomelo_twisted.protocol import PackageType, encode_package

from ..agent.helpers import SYS, connect, open_connection, raw_handshake
from .helpers import dialect_agents

# pypomelo's Protocol.syc("socket", "1.1.1").pack(): json.dumps with its default separators.
PYPOMELO_HANDSHAKE = b'{"sys": {"version": "1.1.1", "type": "socket"}, "user": {}}'


class RecognitionTests(SynchronousTestCase):
    """pypomelo's handshake and the negotiator's interface."""

    def test_negotiator_provides_interface(self) -> None:
        """PypomeloNegotiator provides IHandshakeNegotiator."""
        self.assertTrue(verifyObject(IHandshakeNegotiator, PypomeloNegotiator()))

    def test_recognised_exactly(self) -> None:
        """Only sys == {version 1.1.1, type socket} is pypomelo's."""
        self.assertTrue(is_pypomelo(PYPOMELO_SYS))
        self.assertFalse(is_pypomelo(SYS))
        self.assertFalse(is_pypomelo({**PYPOMELO_SYS, "rsa": {}}))


class SessionTests(SynchronousTestCase):
    """A pypomelo session against the echo server, byte for byte."""

    def test_reply_carries_the_legacy_route_maps(self) -> None:
        """Its reply has useDict, routeToCode and codeToRoute (what pypomelo reads)."""
        _protocol, _transport, reply = raw_handshake(dialect_agents(), PYPOMELO_HANDSHAKE)
        sys = reply["sys"]
        self.assertTrue(sys["useDict"])
        self.assertEqual(sys["routeToCode"]["onPush"], 6)
        self.assertEqual(sys["codeToRoute"]["6"], "onPush")

    def test_coded_request_answered_push_by_name(self) -> None:
        """A request sent with a route code is answered; its push carries 'onPush' as text."""
        agents = dialect_agents()
        protocol, transport = open_connection(agents)
        protocol.dataReceived(encode_package(PackageType.HANDSHAKE, PYPOMELO_HANDSHAKE))
        reply = json.loads(transport.value()[4:])
        transport.clear()
        protocol.dataReceived(encode_package(PackageType.HANDSHAKE_ACK))
        transport.clear()  # the server's first heartbeat
        code = reply["sys"]["routeToCode"]["connector.entryHandler.push"]
        # pypomelo's Message.encode_by_code: flag 0x01, id, 2-byte code, JSON body.
        message = b"\x01\x01" + code.to_bytes(2, "big") + b'{"x": 1}'
        protocol.dataReceived(encode_package(PackageType.DATA, message))
        self.assertEqual(
            transport.value(),
            encode_package(PackageType.DATA, b"\x06\x06onPush" + b'{"x":1}')
            + encode_package(PackageType.DATA, b"\x04\x01" + b'{"code":200}'),
        )

    def test_stock_client_still_gets_coded_pushes(self) -> None:
        """A stock client of the same listener keeps compressed push routes."""
        conn = connect(agents=dialect_agents())
        self.assertIsNotNone(conn.agent.connection.push_dictionary)
