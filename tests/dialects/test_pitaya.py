"""libpitaya served as a pitaya server serves it: handshake, string routes, 0x10 bodies,
0x20 errors in pitaya's shape, heartbeats (agent-level, in memory, literal bytes)."""

from __future__ import annotations

import json
import zlib
from typing import Any

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.acceptors import AgentPool
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.dialects import PitayaNegotiator, PitayaResponses, is_libpitaya, pitaya_error
from pomelo_twisted.interfaces import IHandshakeNegotiator
from pomelo_twisted.protocol import ConnectionState, PackageType, ServerConnection, encode_package
from pomelo_twisted.protocol.message import FLAG_BODY_COMPRESSED, FLAG_ERROR
from pomelo_twisted.responses import EncodedBody
from pomelo_twisted.serializers import get_serializer
from pomelo_twisted.testing.pitaya import (
    LIBPITAYA_SYS,
    PitayaCodec,
    PitayaHeartbeat,
    PitayaPush,
    PitayaResponse,
)

from ..agent.helpers import SYS, connect, open_connection
from .helpers import PitayaSession, dialect_agents

JSON = get_serializer("json")
ERROR = "connector.entryHandler.error"
ECHO = "connector.entryHandler.echo"


class RecognitionTests(SynchronousTestCase):
    """Which handshakes are libpitaya's, and the negotiator's interface."""

    def test_negotiator_provides_interface(self) -> None:
        """PitayaNegotiator provides IHandshakeNegotiator."""
        self.assertTrue(verifyObject(IHandshakeNegotiator, PitayaNegotiator()))

    def test_libpitaya_sys_recognised(self) -> None:
        """libpitaya's sys (platform, libVersion strings) is recognised; a stock one is not."""
        self.assertTrue(is_libpitaya(LIBPITAYA_SYS))
        self.assertFalse(is_libpitaya(SYS))
        self.assertFalse(is_libpitaya({"platform": "mac", "libVersion": 4}))

    def test_reply_has_no_dictionary(self) -> None:
        """libpitaya's reply has heartbeat and serializer, no useDict and no route maps."""
        session = PitayaSession(dialect_agents())
        self.assertEqual(
            session.reply, {"code": 200, "sys": {"heartbeat": 30, "serializer": "json"}}
        )
        self.assertIn("pitaya", session.agent.offer.features)  # type: ignore[union-attr]

    def test_stock_client_unchanged(self) -> None:
        """A stock client of the same listener keeps the dictionary and plain answers."""
        conn = connect(agents=dialect_agents())
        self.assertIsNone(conn.agent.offer)  # nothing negotiated
        self.assertIsNone(conn.agent.requests.response_encoder)
        self.assertIsNotNone(conn.agent.connection.push_dictionary)

    def test_client_holding_a_dictionary_keeps_it_for_requests(self) -> None:
        """A libpitaya handshake with dictVersion keeps useDict; pushes still carry strings."""
        codec = PitayaCodec(sys={**LIBPITAYA_SYS, "dictVersion": "x"})
        agents = dialect_agents()
        reply = _raw_reply(agents, codec)
        self.assertTrue(reply["sys"]["useDict"])


def _raw_reply(agents: AgentPool, codec: PitayaCodec) -> dict[str, Any]:
    """The JSON reply to ``codec``'s handshake."""
    protocol, transport = open_connection(agents)
    protocol.dataReceived(codec.handshake())
    data = transport.value()
    reply: dict[str, Any] = json.loads(data[4:])
    return reply


class ErrorShapeTests(SynchronousTestCase):
    """Our error bodies in pitaya's shape."""

    def test_pitaya_codes(self) -> None:
        """400/404/500 are pitaya's constants; another code N is PIT-N; metadata is there."""
        self.assertEqual(
            pitaya_error({"code": 404, "msg": "x"}),
            {"code": "PIT-404", "msg": "x", "metadata": {}},
        )
        self.assertEqual(pitaya_error({"code": 503, "msg": "busy"})["code"], "PIT-503")  # type: ignore[index]
        self.assertEqual(
            pitaya_error({"code": 500, "msg": "m", "rid": 3})["metadata"],  # type: ignore[index]
            {"rid": "3"},
        )

    def test_non_errors(self) -> None:
        """200, a body without msg, a bool code and non-dicts are not errors."""
        for body in (
            {"code": 200, "msg": "ok"},
            {"code": 500},
            {"code": True, "msg": ""},
            [1],
            None,
        ):
            self.assertIsNone(pitaya_error(body), body)

    def test_forwarded_error_flagged(self) -> None:
        """A forwarded error body (EncodedBody) goes with 0x20 in pitaya's shape."""
        conn = ServerConnection()
        conn.state = ConnectionState.WORKING
        package = PitayaResponses(JSON)(conn, 5, EncodedBody(b'{"code":504,"msg":"timed out"}'))
        self.assertEqual(
            package,
            encode_package(
                PackageType.DATA,
                bytes((0x04 | FLAG_ERROR, 5))
                + b'{"code":"PIT-504","msg":"timed out","metadata":{}}',
            ),
        )

    def test_forwarded_answer_untouched(self) -> None:
        """A forwarded answer that is no error goes as its bytes, without flags."""
        conn = ServerConnection()
        conn.state = ConnectionState.WORKING
        body = EncodedBody(b'{"code":200,"rid":"r"}')
        package = PitayaResponses(JSON)(conn, 5, body)
        self.assertEqual(package, encode_package(PackageType.DATA, b"\x04\x05" + body))


class WireTests(SynchronousTestCase):
    """A libpitaya session against the echo server, byte for byte."""

    def test_error_response_literal_bytes(self) -> None:
        """A HandlerError(404) answers with flag 0x24 and pitaya's error body."""
        session = PitayaSession(dialect_agents(), PitayaCodec(compress=False))
        session.request(1, ERROR, {"code": 404, "msg": "nope"})
        self.assertEqual(
            session.written(),
            bytes.fromhex("0400002f2401") + b'{"code":"PIT-404","msg":"nope","metadata":{}}',
        )

    def test_failure_and_unknown_route_flagged(self) -> None:
        """A failing handler (500) and an unknown route's 500 body go with 0x20."""
        session = PitayaSession(dialect_agents())
        session.request(1, "connector.entryHandler.fail", {})
        session.request(2, "connector.entryHandler.nothing", {})
        events = session.events()
        self.assertEqual([(e.id, e.error) for e in events], [(1, True), (2, True)])  # type: ignore[union-attr]
        bodies = [json.loads(e.body) for e in events]  # type: ignore[union-attr]
        self.assertEqual([b["code"] for b in bodies], ["PIT-500", "PIT-500"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_compressed_request_inflated(self) -> None:
        """A zlib body with flag 0x10 (as libpitaya sends it) is inflated and answered."""
        session = PitayaSession(dialect_agents())
        body = {"text": "a" * 500}
        wire = session.codec.request(3, ECHO, json.dumps(body).encode())
        self.assertEqual(wire[4], FLAG_BODY_COMPRESSED)  # request flag with 0x10
        session.feed(wire)
        (answer,) = session.events()
        self.assertEqual(answer, PitayaResponse(3, b'{"text":"' + b"a" * 500 + b'"}'))

    def test_gzip_notify_inflated(self) -> None:
        """A gzip notify body with 0x10 is inflated before the handler sees it."""
        agents = dialect_agents()
        session = PitayaSession(agents)
        gz = zlib.compressobj(wbits=31)
        body = gz.compress(b'{"n":1}') + gz.flush()
        session.feed(encode_package(PackageType.DATA, b"\x12\x0ba.b.nothing" + body))
        self.assertEqual(agents.handler.notified, [("a.b.nothing", {"n": 1})])  # type: ignore[attr-defined]

    def test_push_route_is_a_string(self) -> None:
        """A push to libpitaya carries its route as a string though the dictionary has it."""
        session = PitayaSession(dialect_agents(), PitayaCodec(compress=False))
        session.request(1, "connector.entryHandler.push", {"x": 1})
        self.assertEqual(
            session.written(),
            bytes.fromhex("0400000f06066f6e507573687b2278223a317d")
            + bytes.fromhex("0400000e0401")
            + b'{"code":200}',
        )

    def test_compress_bodies_setting(self) -> None:
        """With compress_bodies, big responses and pushes go with 0x10; small ones plain."""
        agents = dialect_agents(compress_bodies=True)
        session = PitayaSession(agents)
        big = {"text": "b" * 400}
        session.request(1, ECHO, big)
        session.request(2, ECHO, {"n": 1})
        session.request(3, "connector.entryHandler.push", big)
        events = session.events()
        self.assertEqual(
            events[0],
            PitayaResponse(1, json.dumps(big, separators=(",", ":")).encode(), compressed=True),
        )
        self.assertEqual(events[1], PitayaResponse(2, b'{"n":1}'))
        self.assertEqual(
            events[2], PitayaPush("onPush", json.dumps(big, separators=(",", ":")).encode(), True)
        )
        stock = connect(agents=agents)  # a broadcast encodes its push apart
        self.assertIsNot(stock.agent.push_format, session.agent.push_format)


class HeartbeatTests(SynchronousTestCase):
    """pitaya's heartbeat rules, as libpitaya meets them."""

    def test_heartbeat_answered(self) -> None:
        """Each libpitaya heartbeat is answered, so it hears from the server every interval."""
        session = PitayaSession(dialect_agents())
        session.feed(session.codec.heartbeat_package())
        self.assertEqual(session.events(), [PitayaHeartbeat()])

    def test_silent_client_closed_after_two_intervals(self) -> None:
        """A client silent for 2 heartbeat intervals is closed (pitaya's rule)."""
        session = PitayaSession(dialect_agents(AgentConfig(heartbeat=5.0)))
        session.clock.advance(9.0)
        self.assertTrue(session.transport.connected)
        session.clock.advance(1.5)
        self.assertFalse(session.transport.connected)
