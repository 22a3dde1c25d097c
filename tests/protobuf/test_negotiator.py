"""ProtobufNegotiator on an agent: the handshake exchange and protobuf bodies per route."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.agent.negotiation import SerializerNegotiator
from pomelo_twisted.app.components import ConnectorComponent
from pomelo_twisted.interfaces import IConnectionHandler, IHandshakeNegotiator
from pomelo_twisted.protobuf import Protos
from pomelo_twisted.protobuf.negotiator import ProtobufHandler, ProtobufNegotiator
from pomelo_twisted.protocol import Notify, Push, Request, Response
from pomelo_twisted.testing import EchoHandler, GameHarness
from tests.agent.helpers import SYS, Connection, connect, make_agents, raw_handshake
from tests.app.helpers import EXAMPLE_GAME

ECHO = "connector.entryHandler.echo"
PUSH = "connector.entryHandler.push"
FAIL = "connector.entryHandler.fail"
ERROR = "connector.entryHandler.error"

CLIENT = {
    ECHO: {"optional string text": 1, "optional uInt32 delayMs": 2, "optional double n": 3},
    PUSH: {"required string text": 1},
    ERROR: {"optional uInt32 code": 1, "optional string msg": 2},
}
SERVER = {
    ECHO: {
        "optional string text": 1,
        "optional uInt32 code": 2,
        "optional string msg": 3,
        "optional uInt32 delayMs": 4,
        "optional string n": 5,
    },
    FAIL: {"required uInt32 code": 1, "optional string msg": 2},
    ERROR: {"required string text": 1},
    "onPush": {"required string text": 1},
}


def protobuf_agents(*first: IHandshakeNegotiator) -> tuple[Any, Protos]:
    protos = Protos(SERVER, CLIENT)
    return make_agents(negotiators=[*first, ProtobufNegotiator(protos)]), protos


def send(conn: Connection, msg_id: int, route: str, body: bytes) -> None:
    conn.send(Request(msg_id, route, body) if msg_id else Notify(route, body))


def answers(conn: Connection) -> tuple[list[Response], list[Push]]:
    events = conn.events()
    return (
        [e for e in events if isinstance(e, Response)],
        [e for e in events if isinstance(e, Push)],
    )


class HandshakeTests(SynchronousTestCase):
    """Only clients that send ``sys.protoVersion`` see protobuf."""

    def test_provides_the_interfaces(self) -> None:
        """The negotiator and the handler wrapper provide their interfaces."""
        protos = Protos(SERVER, CLIENT)
        verifyObject(IHandshakeNegotiator, ProtobufNegotiator(protos))
        verifyObject(IConnectionHandler, ProtobufHandler(EchoHandler(Clock()), protos))

    def test_stock_client_sees_no_difference(self) -> None:
        """No protoVersion: no useProto, no protos, the plain handler and push format."""
        agents, _ = protobuf_agents()
        _, _, reply = raw_handshake(agents, json.dumps({"sys": SYS}).encode())
        self.assertNotIn("useProto", reply["sys"])
        self.assertNotIn("protos", reply["sys"])
        conn = connect(agents=agents)
        self.assertIs(conn.agent.handler, agents.handler)
        self.assertIs(conn.agent.push_format, agents.push_format)
        self.assertIsNone(conn.agent.push_encoder)

    def test_client_without_our_version_gets_the_protos(self) -> None:
        """protoVersion 0 or another version: sys.protos {server, client, version}."""
        agents, protos = protobuf_agents()
        for version in (0, "", "stale", None):
            with self.subTest(version=version):
                body = json.dumps({"sys": {**SYS, "protoVersion": version}}).encode()
                _, _, reply = raw_handshake(agents, body)
                self.assertIs(reply["sys"]["useProto"], True)
                self.assertEqual(
                    reply["sys"]["protos"],
                    {
                        "server": protos.parsed_server,
                        "client": protos.parsed_client,
                        "version": protos.version,
                    },
                )

    def test_client_with_our_version_gets_no_protos(self) -> None:
        """The cached version matches: useProto only."""
        agents, protos = protobuf_agents()
        body = json.dumps({"sys": {**SYS, "protoVersion": protos.version}}).encode()
        _, _, reply = raw_handshake(agents, body)
        self.assertIs(reply["sys"]["useProto"], True)
        self.assertNotIn("protos", reply["sys"])

    def test_protobuf_clients_share_one_push_format(self) -> None:
        """Two protobuf clients share a push format; a JSON client has another."""
        agents, _ = protobuf_agents()
        first = connect(agents=agents, sys={"protoVersion": 0})
        second = connect(agents=agents, sys={"protoVersion": 0})
        stock = connect(agents=agents)
        self.assertIs(first.agent.push_format, second.agent.push_format)
        self.assertIsNot(first.agent.push_format, stock.agent.push_format)
        self.assertIs(first.agent.handler, second.agent.handler)
        self.assertEqual(first.agent.offer.features, ["protobuf"])


class BodyTests(SynchronousTestCase):
    """Requests, answers, notifies and pushes on routes with and without protos."""

    def setUp(self) -> None:
        self.agents, self.protos = protobuf_agents()
        self.conn = connect(agents=self.agents, sys={"protoVersion": 0})

    def request(self, route: str, msg: dict[str, Any]) -> Response:
        send(self.conn, 1, route, self.protos.client.encode(route, msg))
        (response,), _ = answers(self.conn)
        return response

    def test_request_and_answer_in_protobuf(self) -> None:
        """A protobuf request reaches the handler as JSON; its answer is protobuf."""
        response = self.request(ECHO, {"text": "hi"})
        self.assertEqual(response.body, b"\x0a\x02hi")

    def test_later_answer_in_protobuf(self) -> None:
        """A Deferred answer is encoded when it comes."""
        send(self.conn, 3, ECHO, self.protos.client.encode(ECHO, {"text": "x", "delayMs": 5}))
        self.assertEqual(answers(self.conn), ([], []))
        self.conn.clock.advance(1)
        (response,), _ = answers(self.conn)
        self.assertEqual(
            (response.id, self.protos.server.decode(ECHO, response.body)),
            (3, {"text": "x", "delayMs": 5}),
        )

    def test_push_in_protobuf_answer_in_json(self) -> None:
        """A route with a client proto only answers JSON; onPush (server proto) is protobuf."""
        response = self.request(PUSH, {"text": "p"})
        self.assertEqual(json.loads(response.body), {"code": 200})
        send(self.conn, 2, PUSH, self.protos.client.encode(PUSH, {"text": "q"}))
        _, (push,) = answers(self.conn)
        self.assertEqual((push.route, push.body), ("onPush", b"\x0a\x01q"))

    def test_routes_without_protos_stay_json(self) -> None:
        """A route with no proto is JSON both ways."""
        self.conn.request(4, "connector.entryHandler.other.echo", {"a": [1]})
        (response,), _ = answers(self.conn)
        self.assertEqual(json.loads(response.body), {"a": [1]})

    def test_notify_is_decoded(self) -> None:
        """A protobuf notify reaches the handler decoded."""
        send(self.conn, 0, PUSH, self.protos.client.encode(PUSH, {"text": "n"}))
        self.assertEqual(self.conn.handler.notified, [(PUSH, {"text": "n"})])

    def test_bad_body_answers_400_naming_the_field(self) -> None:
        """A truncated body is a 400 naming route and field, encoded with the server proto."""
        send(self.conn, 5, ECHO, b"\x0a\x05hi")
        (response,), _ = answers(self.conn)
        answer = self.protos.server.decode(ECHO, response.body)
        self.assertEqual(answer["code"], 400)
        self.assertIn("field 'text': truncated", answer["msg"])
        self.assertTrue(self.conn.open)

    def test_bad_body_without_server_proto_answers_json_400(self) -> None:
        """On a route answered in JSON, the 400 is JSON."""
        send(self.conn, 6, PUSH, b"\x0a\x01")
        (response,), _ = answers(self.conn)
        body = json.loads(response.body)
        self.assertEqual(body["code"], 400)
        self.assertIn("route 'connector.entryHandler.push', field 'text'", body["msg"])

    def test_bad_notify_is_dropped(self) -> None:
        """A notify that does not decode reaches no handler; the connection stays."""
        send(self.conn, 0, PUSH, b"\xff")
        self.assertEqual(self.conn.handler.notified, [])
        self.assertTrue(self.conn.open)

    def test_failure_is_encoded_with_the_proto(self) -> None:
        """A handler failure answers {code, msg} in protobuf when the proto has them."""
        send(self.conn, 7, FAIL, b"")
        (response,), _ = answers(self.conn)
        self.assertEqual(
            self.protos.server.decode(FAIL, response.body),
            {"code": 500, "msg": "internal server error"},
        )
        self.flushLoggedErrors(RuntimeError)

    def test_answer_that_does_not_fit_is_logged_and_answered_500(self) -> None:
        """An answer that does not fit: error logged naming route and field; the client
        gets {code: 500} encoded with the proto."""
        with capturedLogs() as logs:
            response = self.request(ECHO, {"text": "a", "n": 1.5})
        self.assertEqual(self.protos.server.decode(ECHO, response.body), {"code": 500})
        texts = [e["log_format"].format(**e) for e in logs if e["log_level"].name == "error"]
        self.assertEqual(len(texts), 1, texts)
        self.assertIn("route 'connector.entryHandler.echo', field 'n': expects a string", texts[0])

    def test_error_the_proto_cannot_carry_is_an_empty_body(self) -> None:
        """A handler error on a route whose proto cannot carry it answers an empty body
        (the client decodes {}), as pomelo does; nothing logged at error."""
        with capturedLogs() as logs:
            response = self.request(ERROR, {"code": 409, "msg": "busy"})
        self.assertEqual(response.body, b"")
        self.assertEqual([e for e in logs if e["log_level"].name == "error"], [])

    def test_push_that_does_not_fit_is_logged_and_empty(self) -> None:
        """A push missing a required field goes out with an empty body; error logged."""
        with capturedLogs() as logs:
            self.conn.agent.push("onPush", {"other": 1})
        _, (push,) = answers(self.conn)
        self.assertEqual(push.body, b"")
        errors = [e for e in logs if e["log_level"].name == "error"]
        self.assertEqual(len(errors), 1)
        self.assertIn("onPush", errors[0]["error"])

    def test_push_without_proto_is_json(self) -> None:
        """A push route without a server proto uses the serializer."""
        self.conn.agent.push("onOther", {"a": 1})
        _, (push,) = answers(self.conn)
        self.assertEqual(json.loads(push.body), {"a": 1})


class SerializerTests(SynchronousTestCase):
    """With msgpack negotiated, decoded bodies become msgpack for the handler."""

    def test_msgpack_and_protobuf(self) -> None:
        """The handler sees msgpack; protobuf routes answer protobuf, others msgpack."""
        agents, protos = protobuf_agents(SerializerNegotiator())
        conn = connect(agents=agents, sys={"protoVersion": 0, "serializer": "msgpack"})
        send(conn, 1, ECHO, protos.client.encode(ECHO, {"text": "m"}))
        send(conn, 2, "connector.entryHandler.x.echo", msgpack.packb({"k": 1}))
        first, second = answers(conn)[0]
        self.assertEqual(first.body, b"\x0a\x01m")
        self.assertEqual(msgpack.unpackb(second.body), {"k": 1})


class PreparedPushTests(SynchronousTestCase):
    """A broadcast's once-per-format package is protobuf for protobuf clients."""

    def test_prepare_push(self) -> None:
        """prepare_push of a protobuf client carries the protobuf body; JSON's the JSON."""
        agents, _ = protobuf_agents()
        proto = connect(agents=agents, sys={"protoVersion": 0})
        stock = connect(agents=agents)
        self.assertTrue(proto.agent.prepare_push("onPush", {"text": "b"}).endswith(b"\x0a\x01b"))
        self.assertTrue(stock.agent.prepare_push("onPush", {"text": "b"}).endswith(b'{"text":"b"}'))


class GameWiringTests(SynchronousTestCase):
    """negotiators_of adds the negotiator for a game with protos, after the serializer's."""

    def negotiators(self, **settings: Any) -> list[str]:
        game = GameHarness(EXAMPLE_GAME, settings=settings)
        self.addCleanup(game.stop)
        connector = game.app("connector-server-1").components["connector"]
        assert isinstance(connector, ConnectorComponent) and connector.agents is not None
        return [n.name for n in connector.agents.negotiators]

    def test_example_game_has_protobuf(self) -> None:
        """The example game's connectors offer protobuf, after the serializer choice and
        the client dialects, before resume."""
        self.assertEqual(
            self.negotiators(), ["serializer", "pitaya", "pypomelo", "protobuf", "resume"]
        )

    def test_setting_turns_it_off(self) -> None:
        """``protobuf: false`` leaves it out."""
        self.assertNotIn("protobuf", self.negotiators(protobuf=False))
