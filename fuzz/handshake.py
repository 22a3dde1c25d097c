"""Fuzz target: the handshake parsers (``protocol/handshake.py``).

Contract: ``parse_client_handshake`` and ``parse_handshake_response`` raise only
:class:`MessageDecodeError`; a parsed client handshake re-encodes stably; a parsed reply
has a positive finite heartbeat or none and a dictionary of valid codes; ``parse_kick``
never raises; a server connection fed the bytes as its handshake package answers with an
event (a handshake or a bad handshake) and can answer it even when the user data it
echoes cannot be encoded, and a client connection fed them as the reply or
as a kick makes events, never an exception.
"""

from __future__ import annotations

import math

from .harness import fuzz_main, instrumented

with instrumented(__name__):
    from pomelo_twisted.protocol.client import ClientConnection
    from pomelo_twisted.protocol.connection import ServerConnection
    from pomelo_twisted.protocol.errors import MessageDecodeError
    from pomelo_twisted.protocol.events import BadHandshake, ClientHandshake, HandshakeResponse
    from pomelo_twisted.protocol.handshake import (
        encode_client_handshake,
        parse_client_handshake,
        parse_handshake_response,
        parse_kick,
    )
    from pomelo_twisted.protocol.message import MAX_ROUTE_CODE
    from pomelo_twisted.protocol.packet import PackageType, encode_package

__all__ = ["fuzz_one_input"]


def check_client_handshake(data: bytes) -> None:
    """The server's parser: an event or MessageDecodeError; stable re-encoding."""
    try:
        handshake = parse_client_handshake(data)
    except MessageDecodeError:
        return
    assert isinstance(handshake.sys, dict)
    assert handshake.dict_version is None or isinstance(handshake.dict_version, str)
    try:
        first = encode_client_handshake(handshake)
    except UnicodeEncodeError:
        return  # a lone surrogate ("\ud800" escaped in the JSON) has no UTF-8 form
    assert encode_client_handshake(parse_client_handshake(first)) == first


def check_handshake_response(data: bytes) -> None:
    """The client's parser: a reply or MessageDecodeError, with sane fields."""
    try:
        reply = parse_handshake_response(data)
    except MessageDecodeError:
        return
    assert isinstance(reply.code, int)
    if reply.heartbeat is not None:
        assert math.isfinite(reply.heartbeat) and reply.heartbeat > 0, reply.heartbeat
    if reply.dictionary is not None:
        for route, code in reply.dictionary.route_to_code().items():
            assert 0 < code <= MAX_ROUTE_CODE and reply.dictionary.route_of(code) == route


def fuzz_one_input(data: bytes) -> None:
    """Check the handshake parsers' contract on ``data`` (a handshake package's body)."""
    check_client_handshake(data)
    check_handshake_response(data)
    assert isinstance(parse_kick(data), str)
    if len(data) <= 0xFFFF:
        package = encode_package(PackageType.HANDSHAKE, data)
        server = ServerConnection()
        events = server.receive_data(package)
        assert len(events) == 1 and isinstance(events[0], (ClientHandshake, BadHandshake))
        if isinstance(events[0], ClientHandshake):  # a hook echoing the user data back
            try:
                server.send(HandshakeResponse(code=200, user=events[0].user))
            except ValueError:  # cannot be encoded: the error reply must still go out
                server.send(HandshakeResponse(code=500, message="handshake hook failed"))
        client = ClientConnection()
        client.send(ClientHandshake())
        client.receive_data(package)  # a reply, or a ProtocolViolation event: never raises
        client.receive_data(encode_package(PackageType.KICK, data))


if __name__ == "__main__":
    fuzz_main(fuzz_one_input)
