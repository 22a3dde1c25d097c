"""Handshake bodies both ways, the measured reference reply, and kick bodies."""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.protocol import (
    CODE_BAD_HANDSHAKE,
    CODE_OK,
    CODE_REJECTED,
    BadHandshake,
    ClientHandshake,
    ConnectionState,
    HandshakeResponse,
    MessageDecodeError,
    PackageType,
    RouteDictionary,
    ServerConnection,
    encode_package,
)
from pomelo_twisted.protocol.handshake import (
    encode_client_handshake,
    encode_handshake_response,
    encode_kick,
    parse_client_handshake,
    parse_handshake_response,
    parse_kick,
)

from .test_dictionary import MEASURED_VERSION, reference_dictionary
from .test_helpers import assert_decodes, connection_stream

MEASURED_DICT = (
    b'{"chat.chatHandler.join":1,"chat.chatHandler.send":2,"connector.entryHandler.echo":3,'
    b'"connector.entryHandler.entry":4,"connector.entryHandler.fail":5,'
    b'"connector.entryHandler.kick":6,"onChat":7}'
)
MEASURED_REPLY_BODY = (
    b'{"code":200,"sys":{"heartbeat":3,"dict":'
    + MEASURED_DICT
    + b',"dictVersion":"fsNMsnzHVOJ0va8RT2nptw==","useDict":true}}'
)
MEASURED_REPLY = bytes.fromhex("01000123") + MEASURED_REPLY_BODY
SHORT_REPLY = b'{"code":200,"sys":{"heartbeat":3,"useDict":true}}'
PLAIN_HANDSHAKE = b'{"sys":{"type":"socket","version":"0.0.1","rsa":{}},"user":{}}'
VERSIONED_HANDSHAKE = (
    b'{"sys":{"type":"socket","version":"0.0.1","rsa":{},'
    b'"dictVersion":"fsNMsnzHVOJ0va8RT2nptw=="},"user":{}}'
)
DEEP_JSON = b"[" * 50000


def reference_response(**overrides: object) -> HandshakeResponse:
    """The reply of the measured chat app: heartbeat 3, dictionary on, no extras."""
    fields: dict[str, object] = {
        "heartbeat": 3,
        "dictionary": reference_dictionary(),
        "use_dict": True,
        "legacy_route_maps": False,
        "serializer": None,
    }
    fields.update(overrides)
    return HandshakeResponse(**fields)  # type: ignore[arg-type]


def server_reply_to(handshake_body: bytes, response: HandshakeResponse) -> bytes:
    """What a fresh server connection sends in reply to ``handshake_body``."""
    conn = ServerConnection()
    events = conn.receive_data(encode_package(PackageType.HANDSHAKE, handshake_body))
    assert len(events) == 1 and isinstance(events[0], ClientHandshake | BadHandshake), events
    return conn.send(response)


class MeasuredReplyTests(SynchronousTestCase):
    """The measured reference handshake replies of PROTOCOL.md section 4, byte for byte."""

    def test_expected_bytes_are_291_long(self) -> None:
        """The measured reply body is 291 (0x0123) bytes, as its header says."""
        self.assertEqual(len(MEASURED_REPLY_BODY), 0x0123)
        self.assertEqual(MEASURED_REPLY[:4], encode_package(PackageType.HANDSHAKE, b"x" * 291)[:4])

    def test_full_reply(self) -> None:
        """Without legacy maps and serializer the first reply matches the reference exactly."""
        self.assertEqual(encode_handshake_response(reference_response()), MEASURED_REPLY_BODY)
        self.assertEqual(server_reply_to(PLAIN_HANDSHAKE, reference_response()), MEASURED_REPLY)

    def test_reply_to_client_holding_the_dictionary(self) -> None:
        """A handshake carrying the current dictVersion is answered without dict but useDict."""
        self.assertEqual(
            encode_handshake_response(reference_response(), MEASURED_VERSION), SHORT_REPLY
        )
        self.assertEqual(
            server_reply_to(VERSIONED_HANDSHAKE, reference_response()),
            encode_package(PackageType.HANDSHAKE, SHORT_REPLY),
        )

    def test_stale_dict_version_gets_the_dictionary(self) -> None:
        """A handshake carrying another dictVersion gets the whole dictionary."""
        self.assertEqual(
            encode_handshake_response(reference_response(), "stale=="), MEASURED_REPLY_BODY
        )

    def test_legacy_route_maps(self) -> None:
        """With legacy maps, routeToCode repeats dict and codeToRoute maps string codes back."""
        reply = json.loads(encode_handshake_response(reference_response(legacy_route_maps=True)))
        sys = reply["sys"]
        self.assertEqual(sys["routeToCode"], sys["dict"])
        self.assertEqual(sys["codeToRoute"]["7"], "onChat")
        self.assertEqual(sys["codeToRoute"], {str(v): k for k, v in sys["dict"].items()})
        self.assertEqual(sys["dictVersion"], MEASURED_VERSION)
        self.assertIs(sys["useDict"], True)

    def test_legacy_maps_are_the_default(self) -> None:
        """HandshakeResponse sends the legacy maps unless told not to."""
        self.assertTrue(HandshakeResponse().legacy_route_maps)

    def test_legacy_maps_follow_dict(self) -> None:
        """A client holding the dictionary gets neither dict nor the legacy maps."""
        body = encode_handshake_response(
            reference_response(legacy_route_maps=True), MEASURED_VERSION
        )
        self.assertEqual(body, SHORT_REPLY)

    def test_serializer_announced(self) -> None:
        """A serializer name is announced as sys.serializer."""
        reply = json.loads(encode_handshake_response(reference_response(serializer="msgpack")))
        self.assertEqual(reply["sys"]["serializer"], "msgpack")

    def test_dictionary_off(self) -> None:
        """Without a dictionary, or with use_dict off, neither dict nor useDict is sent."""
        self.assertEqual(
            encode_handshake_response(HandshakeResponse(heartbeat=3)),
            b'{"code":200,"sys":{"heartbeat":3}}',
        )
        self.assertEqual(
            encode_handshake_response(reference_response(use_dict=False)),
            b'{"code":200,"sys":{"heartbeat":3}}',
        )

    def test_heartbeat_values(self) -> None:
        """Whole seconds are written as integers, fractions as floats, None leaves the key out."""
        self.assertEqual(
            encode_handshake_response(HandshakeResponse(heartbeat=10.0)),
            b'{"code":200,"sys":{"heartbeat":10}}',
        )
        self.assertEqual(
            encode_handshake_response(HandshakeResponse(heartbeat=2.5)),
            b'{"code":200,"sys":{"heartbeat":2.5}}',
        )
        self.assertEqual(encode_handshake_response(HandshakeResponse()), b'{"code":200,"sys":{}}')

    def test_user_data(self) -> None:
        """User data from a handshake hook is sent as the top-level user field."""
        reply = json.loads(encode_handshake_response(HandshakeResponse(user={"x": 1})))
        self.assertEqual(reply["user"], {"x": 1})


class ErrorReplyTests(SynchronousTestCase):
    """Error replies carry the code alone."""

    def test_error_codes(self) -> None:
        """Codes 500 and 501 are sent alone, whatever else the response holds."""
        for code in (CODE_BAD_HANDSHAKE, CODE_REJECTED):
            body = encode_handshake_response(reference_response(code=code, user={"x": 1}))
            self.assertEqual(body, b'{"code":%d}' % code)

    def test_code_constants(self) -> None:
        """The handshake codes are 200, 500 and 501."""
        self.assertEqual((CODE_OK, CODE_BAD_HANDSHAKE, CODE_REJECTED), (200, 500, 501))

    def test_error_reply_from_server_connection(self) -> None:
        """Answering a bad handshake with code 500 sends 01 00 00 0c {"code":500} and closes."""
        conn = ServerConnection()
        events = conn.receive_data(encode_package(PackageType.HANDSHAKE, b"not json"))
        self.assertEqual(len(events), 1)
        self.assertIsInstance(events[0], BadHandshake)
        data = conn.send(HandshakeResponse(code=CODE_BAD_HANDSHAKE))
        self.assertEqual(data, bytes.fromhex("0100000c") + b'{"code":500}')
        self.assertIs(conn.state, ConnectionState.CLOSED)


class ClientHandshakeTests(SynchronousTestCase):
    """The client's handshake body, both ways."""

    def test_encode(self) -> None:
        """sys fields are kept in order, dictVersion appended, user defaults to {}."""
        body = encode_client_handshake(
            ClientHandshake(sys={"type": "socket", "version": "0.0.1", "rsa": {}}, user={})
        )
        self.assertEqual(body, PLAIN_HANDSHAKE)
        body = encode_client_handshake(
            ClientHandshake(
                sys={"type": "socket", "version": "0.0.1", "rsa": {}},
                dict_version=MEASURED_VERSION,
            )
        )
        self.assertEqual(body, VERSIONED_HANDSHAKE)

    def test_parse(self) -> None:
        """Parsing keeps every sys field and the user object and extracts dictVersion."""
        handshake = parse_client_handshake(VERSIONED_HANDSHAKE)
        self.assertEqual(handshake.dict_version, MEASURED_VERSION)
        self.assertEqual(handshake.sys["type"], "socket")
        self.assertEqual(handshake.user, {})

    def test_non_string_dict_version_ignored(self) -> None:
        """A dictVersion that is not a string counts as absent."""
        self.assertIsNone(parse_client_handshake(b'{"sys":{"dictVersion":5}}').dict_version)

    def test_bad_handshakes_refused(self) -> None:
        """Non-UTF-8, non-JSON, non-object, sys-less and too deeply nested bodies are refused."""
        for body in (
            b"\xff\xfe",
            b"not json",
            b"",
            b"[1,2]",
            b"{}",
            b'{"sys":[]}',
            b'{"user":{}}',
            b'{"sys":' + DEEP_JSON,
            DEEP_JSON,
        ):
            self.assertRaises(MessageDecodeError, parse_client_handshake, body)

    def test_bad_handshake_events(self) -> None:
        """A server reports each refused handshake as BadHandshake, fed three ways."""
        for body in (b"not json", b"{}", DEEP_JSON):
            events = ServerConnection().receive_data(encode_package(PackageType.HANDSHAKE, body))
            self.assertEqual(len(events), 1)
            assert isinstance(events[0], BadHandshake)
            assert_decodes(
                self,
                lambda: connection_stream(ServerConnection()),
                encode_package(PackageType.HANDSHAKE, body),
                events,
            )


class ParseResponseTests(SynchronousTestCase):
    """parse_handshake_response reads pinus, pomelo 2.x and our replies."""

    def test_measured_reply(self) -> None:
        """The measured reply parses into heartbeat, dictionary and its version."""
        response = parse_handshake_response(MEASURED_REPLY_BODY)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.heartbeat, 3.0)
        self.assertEqual(response.dictionary, reference_dictionary())
        self.assertEqual(response.dict_version, MEASURED_VERSION)
        self.assertTrue(response.use_dict)

    def test_legacy_only_reply(self) -> None:
        """A reply with routeToCode but no dict still yields the dictionary."""
        response = parse_handshake_response(
            b'{"code":200,"sys":{"routeToCode":{"a.b.c":1},"codeToRoute":{"1":"a.b.c"}}}'
        )
        self.assertEqual(response.dictionary, RouteDictionary({"a.b.c": 1}))
        self.assertFalse(response.use_dict)

    def test_round_trip_of_our_reply(self) -> None:
        """Our own reply with serializer and user data parses back."""
        body = encode_handshake_response(
            reference_response(serializer="msgpack", user={"k": "v"}, legacy_route_maps=True)
        )
        response = parse_handshake_response(body)
        self.assertEqual(response.dictionary, reference_dictionary())
        self.assertEqual(response.serializer, "msgpack")
        self.assertEqual(response.user, {"k": "v"})

    def test_error_reply(self) -> None:
        """An error reply parses to its code with nothing else."""
        response = parse_handshake_response(b'{"code":500}')
        self.assertEqual(response.code, 500)
        self.assertIsNone(response.heartbeat)
        self.assertIsNone(response.dictionary)
        self.assertEqual(parse_handshake_response(b'{"code":500,"msg":"no"}').message, "no")

    def test_odd_heartbeats_ignored(self) -> None:
        """A heartbeat that is absent, boolean, zero, negative or not a number reads as None."""
        for value in ("true", "0", "-1", '"3"', "null"):
            body = b'{"code":200,"sys":{"heartbeat":%s}}' % value.encode()
            self.assertIsNone(parse_handshake_response(body).heartbeat, value)
        body = b'{"code":200,"sys":{"heartbeat":0.5}}'
        self.assertEqual(parse_handshake_response(body).heartbeat, 0.5)

    def test_bad_replies_refused(self) -> None:
        """A reply without integer code, not JSON, or with an invalid dictionary is refused."""
        for body in (
            b"nope",
            b"[]",
            b"{}",
            b'{"code":"200"}',
            b'{"code":true}',
            b'{"code":200,"sys":{"dict":{"a":0}}}',
            b'{"code":200,"sys":{"dict":{"a":1,"b":1}}}',
            DEEP_JSON,
        ):
            self.assertRaises(MessageDecodeError, parse_handshake_response, body)


class KickBodyTests(SynchronousTestCase):
    """Kick bodies: {"reason": "<text>"}."""

    def test_encode(self) -> None:
        """encode_kick writes compact JSON, non-ASCII as raw UTF-8."""
        self.assertEqual(encode_kick("kick"), b'{"reason":"kick"}')
        self.assertEqual(encode_kick("é"), '{"reason":"é"}'.encode())

    def test_parse(self) -> None:
        """parse_kick reads the reason, falling back to "kick" for anything malformed."""
        self.assertEqual(parse_kick(b'{"reason":"attack"}'), "attack")
        for body in (b"", b"junk", b"\xff", b"[]", b'{"reason":5}', b"{}", DEEP_JSON):
            self.assertEqual(parse_kick(body), "kick", body[:10])
