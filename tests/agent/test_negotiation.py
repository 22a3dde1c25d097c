"""Handshake negotiation: what a client's handshake decides about its own connection."""

from __future__ import annotations

import json
from typing import Any

import msgpack
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.agent.negotiation import ConnectionOffer, SerializerNegotiator
from pomelo_twisted.errors import HandshakeRejected
from pomelo_twisted.interfaces import IAgent, IHandshakeNegotiator
from pomelo_twisted.protocol import (
    ClientHandshake,
    HandshakeResponse,
    PackageType,
    Push,
    Response,
    encode_package,
)
from pomelo_twisted.protocol.message import MessageType, decode_message, encode_message

from .helpers import SYS, connect, make_agents, raw_handshake


@implementer(IHandshakeNegotiator)
class Recorder:
    """A negotiator that adds a sys field and records what it saw."""

    name = "recorder"

    def __init__(self, **changes: Any) -> None:
        self.seen: list[dict[str, Any]] = []
        self.changes = changes

    def negotiate(self, agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        assert isinstance(offer, ConnectionOffer)
        self.seen.append(dict(handshake.sys))
        offer.sys["recorded"] = len(self.seen)
        for name, value in self.changes.items():
            setattr(offer, name, value)


@implementer(IHandshakeNegotiator)
class Refuser:
    """A negotiator that refuses every client."""

    name = "refuser"

    def negotiate(self, agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        raise HandshakeRejected("no entry for you", 501)


def push_packages(data: bytes) -> list[bytes]:
    """The data packages of ``data`` (whole packages only)."""
    packages = []
    while data:
        size = int.from_bytes(data[1:4], "big")
        if data[0] == PackageType.DATA:
            packages.append(data[4 : 4 + size])
        data = data[4 + size :]
    return packages


class SerializerNegotiatorTests(SynchronousTestCase):
    """``sys.serializer`` picks the body serializer of one connection."""

    def test_provides_the_interface(self) -> None:
        """SerializerNegotiator provides IHandshakeNegotiator."""
        verifyObject(IHandshakeNegotiator, SerializerNegotiator())

    def test_unknown_names_are_refused_at_construction(self) -> None:
        """A serializer name nobody knows is a ValueError naming it."""
        with self.assertRaisesRegex(ValueError, "yaml"):
            SerializerNegotiator(["json", "yaml"])

    def test_client_asking_msgpack_gets_msgpack(self) -> None:
        """The reply announces msgpack; requests, responses and pushes use it."""
        agents = make_agents(negotiators=[SerializerNegotiator()])
        conn = connect(agents=agents, sys={"serializer": "msgpack"})
        self.assertEqual(conn.agent.serializer.name, "msgpack")
        body = msgpack.packb({"n": 1, "b": b"\x00\xff"})
        message = encode_message(MessageType.REQUEST, 1, "connector.entryHandler.push", body)
        conn.feed(encode_package(PackageType.DATA, message))
        events = conn.events()
        push = next(e for e in events if isinstance(e, Push))
        response = next(e for e in events if isinstance(e, Response))
        self.assertEqual(msgpack.unpackb(push.body), {"n": 1, "b": b"\x00\xff"})
        self.assertEqual(msgpack.unpackb(response.body), {"code": 200})
        self.assertEqual(conn.agent.offer.features, ["serializer=msgpack"])

    def test_stock_client_keeps_json_on_the_same_listener(self) -> None:
        """A client that asks for nothing keeps the default serializer and push format."""
        agents = make_agents(negotiators=[SerializerNegotiator()])
        stock = connect(agents=agents)
        packed = connect(agents=agents, sys={"serializer": "msgpack"})
        self.assertEqual(stock.agent.serializer.name, "json")
        self.assertIs(stock.agent.push_format, agents.push_format)
        self.assertIsNot(packed.agent.push_format, agents.push_format)

    def test_push_formats_are_one_object_per_format(self) -> None:
        """Two msgpack clients share one push format object (a broadcast encodes once)."""
        agents = make_agents(negotiators=[SerializerNegotiator()])
        first = connect(agents=agents, sys={"serializer": "msgpack"})
        second = connect(agents=agents, sys={"serializer": "msgpack"})
        self.assertIs(first.agent.push_format, second.agent.push_format)

    def test_not_allowed_or_unknown_keeps_the_default(self) -> None:
        """A serializer outside the allowed list, or not a string, keeps JSON."""
        agents = make_agents(negotiators=[SerializerNegotiator(["json"])])
        for wanted in ("msgpack", "yaml", 3, None):
            with self.subTest(wanted=wanted):
                conn = connect(agents=agents, sys={"serializer": wanted})
                self.assertEqual(conn.agent.serializer.name, "json")

    def test_reply_names_the_serializer(self) -> None:
        """The reply's ``sys.serializer`` is the negotiated one."""
        agents = make_agents(negotiators=[SerializerNegotiator()])
        body = json.dumps({"sys": {**SYS, "serializer": "msgpack"}}).encode()
        _, _, reply = raw_handshake(agents, body)
        self.assertEqual(reply["sys"]["serializer"], "msgpack")


class NegotiatorChainTests(SynchronousTestCase):
    """Negotiators run in order on each handshake and shape the reply."""

    def test_extra_sys_fields_reach_the_reply(self) -> None:
        """A field a negotiator adds to ``offer.sys`` is in the reply's ``sys``."""
        recorder = Recorder()
        _, _, reply = raw_handshake(
            make_agents(negotiators=[recorder]), json.dumps({"sys": SYS}).encode()
        )
        self.assertEqual(reply["sys"]["recorded"], 1)
        self.assertEqual(recorder.seen, [SYS])

    def test_a_refusal_answers_its_code_and_closes(self) -> None:
        """HandshakeRejected from a negotiator answers its code and reason, then closes."""
        protocol, transport, reply = raw_handshake(
            make_agents(negotiators=[Refuser()]), json.dumps({"sys": SYS}).encode()
        )
        self.assertEqual(reply, {"code": 501, "msg": "no entry for you"})
        self.assertFalse(transport.connected)
        assert protocol.agent is not None
        self.assertIn("no entry for you", protocol.agent.close_reason or "")

    def test_dictionary_off_for_one_client(self) -> None:
        """``use_dict`` False: no dictionary in the reply, pushes carry string routes."""
        agents = make_agents(negotiators=[Recorder(use_dict=False)])
        _, _, reply = raw_handshake(agents, json.dumps({"sys": SYS}).encode())
        self.assertNotIn("dict", reply["sys"])
        self.assertNotIn("useDict", reply["sys"])

    def test_pushes_uncompressed_while_codes_are_accepted(self) -> None:
        """``compress_pushes`` False: the client may send codes, pushes carry strings."""
        agents = make_agents(negotiators=[Recorder(compress_pushes=False)])
        conn = connect(agents=agents)
        dictionary = agents.dictionary
        assert dictionary is not None
        code = dictionary.code_of("connector.entryHandler.push")
        message = encode_message(MessageType.REQUEST, 7, "", b'{"a":1}', route_code=code)
        conn.feed(encode_package(PackageType.DATA, message))
        pushes = [decode_message(p) for p in push_packages(conn.written())]
        push = next(m for m in pushes if m.type is MessageType.PUSH)
        self.assertEqual((push.route, push.route_code), ("onPush", 0))
        response = next(m for m in pushes if m.type is MessageType.RESPONSE)
        self.assertEqual((response.id, json.loads(response.body)), (7, {"code": 200}))
        self.assertIsNot(conn.agent.push_format, agents.push_format)

    def test_nothing_negotiated_keeps_the_listener_push_format(self) -> None:
        """With negotiators that change nothing, the agent shares the listener's format."""
        conn = connect(agents=make_agents(negotiators=[Recorder()]))
        self.assertIs(conn.agent.push_format, conn.agents.push_format)
        self.assertIsInstance(conn.agent.offer, ConnectionOffer)  # it added a sys field
        stock = connect(agents=make_agents(negotiators=[SerializerNegotiator()]))
        self.assertIsNone(stock.agent.offer)  # nothing negotiated: nothing kept

    def test_handler_wrapped_for_one_connection(self) -> None:
        """A negotiator's handler serves that connection's requests."""
        agents = make_agents()
        inner = agents.handler

        class Upper:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def request(self, agent: IAgent, route: str, body: bytes) -> object:
                return {"wrapped": route}

        agents.negotiators = (Recorder(handler=Upper()),)
        conn = connect(agents=agents)
        conn.request(3, "connector.entryHandler.echo", {})
        self.assertEqual(conn.responses(), [(3, {"wrapped": "connector.entryHandler.echo"})])
        plain = connect(agents=make_agents())
        plain.request(3, "connector.entryHandler.echo", {"x": 1})
        self.assertEqual(plain.responses(), [(3, {"x": 1})])

    def test_reply_without_negotiators_is_unchanged(self) -> None:
        """No negotiator: the reply is exactly what it was (no empty extra fields)."""
        _, _, reply = raw_handshake(make_agents(), json.dumps({"sys": SYS}).encode())
        self.assertEqual(
            sorted(reply["sys"]),
            [
                "codeToRoute",
                "dict",
                "dictVersion",
                "heartbeat",
                "routeToCode",
                "serializer",
                "useDict",
            ],
        )
        self.assertIsInstance(HandshakeResponse().extra_sys, type(None))
