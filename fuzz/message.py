"""Fuzz target: the message decoder and its fast paths (``protocol/message.py``, ``fastpath.py``).

Contract: ``decode_message`` raises only :class:`MessageDecodeError`, and what it returns
re-encodes to bytes that decode to the same message; ``decode_request_fast`` and
``decode_response_fast`` agree with ``decode_message`` whenever they return something; a
working :class:`ServerConnection` makes the same events of a data package with and without
its fast path, and never raises.
"""

from __future__ import annotations

from typing import Any

from .harness import fuzz_main, instrumented

with instrumented(__name__):
    from pomelo_twisted.protocol.connection import ServerConnection
    from pomelo_twisted.protocol.dictionary import RouteDictionary
    from pomelo_twisted.protocol.errors import MessageDecodeError
    from pomelo_twisted.protocol.events import (
        ClientHandshake,
        HandshakeAck,
        HandshakeResponse,
        Notify,
        ProtocolViolation,
        Request,
        Response,
    )
    from pomelo_twisted.protocol.fastpath import decode_request_fast, decode_response_fast
    from pomelo_twisted.protocol.message import (
        Message,
        MessageType,
        decode_message,
        encode_message,
    )
    from pomelo_twisted.protocol.packet import PackageType, encode_package

__all__ = ["fuzz_one_input"]

ROUTES = {3: "connector.entryHandler.echo", 7: "onChat", 258: "a.b.c"}
DICTIONARY = RouteDictionary({route: code for code, route in ROUTES.items()})
HANDSHAKE = encode_package(PackageType.HANDSHAKE, b'{"sys":{"type":"socket"},"user":{}}')
ACK = encode_package(PackageType.HANDSHAKE_ACK)


def reference_request(msg: Message, routes: dict[int, str] | None) -> Request | Notify | None:
    """What the fast path must return for ``msg``: the slow path's request or notify."""
    if msg.type not in (MessageType.REQUEST, MessageType.NOTIFY):
        return None
    route = msg.route
    if msg.route_code:
        found = routes.get(msg.route_code) if routes is not None else None
        if found is None:
            return None
        route = found
    if msg.type is MessageType.REQUEST and msg.id:
        return Request(msg.id, route, msg.body)
    return Notify(route, msg.body)


def working_connection(fast: bool) -> ServerConnection:
    """A server connection past handshake and ack, with or without its fast path."""
    conn = ServerConnection(DICTIONARY)
    events = conn.receive_data(HANDSHAKE)
    assert isinstance(events[0], ClientHandshake), events
    conn.send(HandshakeResponse(code=200, dictionary=DICTIONARY, use_dict=True))
    assert isinstance(conn.receive_data(ACK)[0], HandshakeAck)
    if not fast:
        conn._fast = lambda _body, _context: None
    return conn


def normalized(events: list[Any]) -> list[Any]:
    """Events comparable by value (a violation by its error's class and reason)."""
    return [
        ("violation", type(e.error), e.reason) if isinstance(e, ProtocolViolation) else e
        for e in events
    ]


def fuzz_one_input(data: bytes) -> None:
    """Check the message decoders' contract on ``data`` (one data package's body)."""
    try:
        msg: Message | None = decode_message(data)
    except MessageDecodeError:
        msg = None
    if msg is not None:
        again = encode_message(
            msg.type, msg.id, msg.route, msg.body, route_code=msg.route_code, gzip=msg.gzip
        )
        assert decode_message(again) == msg, (msg, again)
    for routes in (ROUTES, None):
        fast = decode_request_fast(data, routes)
        if fast is not None:
            assert msg is not None and fast == reference_request(msg, routes), (fast, msg)
    pending = {1: "a.b.c", 300: "connector.entryHandler.echo"}
    response = decode_response_fast(data, pending)
    if response is not None:
        assert msg is not None and msg.type is MessageType.RESPONSE, (response, msg)
        route = {1: "a.b.c", 300: "connector.entryHandler.echo"}.get(msg.id, "")
        assert response == Response(msg.id, msg.body, route), (response, msg)
    package = encode_package(PackageType.DATA, data) + encode_package(PackageType.HEARTBEAT)
    with_fast = normalized(working_connection(True).receive_data(package))
    without = normalized(working_connection(False).receive_data(package))
    assert with_fast == without, (with_fast, without)


if __name__ == "__main__":
    fuzz_main(fuzz_one_input)
