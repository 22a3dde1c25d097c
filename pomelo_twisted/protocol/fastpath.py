"""The hot paths of the codec: a client's request or notify and a server's response,
decoded and encoded in one pass for their usual shapes.

Each equals what the general codec (:mod:`.message`, :mod:`.packet`) makes of the same
bytes; anything unusual is left to it. The connections use these once working
(``_Connection.receive_data``, ``ServerConnection.send_response``).
"""

from __future__ import annotations

import struct

from .events import Notify, Request, Response
from .message import MessageType, encode_varint
from .packet import MAX_BODY_LENGTH, PackageType

__all__ = ["decode_request_fast", "decode_response_fast", "encode_response"]

# Events of the hot path are built without the frozen dataclass __init__, whose
# object.__setattr__ per field costs more than the decoding: the slot descriptors are
# set directly. The result is an ordinary, equal, still frozen instance.
_REQUEST = int(MessageType.REQUEST)
_NOTIFY = int(MessageType.NOTIFY)
_RESPONSE = int(MessageType.RESPONSE)
_new = object.__new__
_set_request_id = Request.__dict__["id"].__set__
_set_request_route = Request.__dict__["route"].__set__
_set_request_body = Request.__dict__["body"].__set__
_set_notify_route = Notify.__dict__["route"].__set__
_set_notify_body = Notify.__dict__["body"].__set__


def decode_request_fast(body: bytes, routes: dict[int, str] | None) -> Request | Notify | None:
    """A client's request or notify straight from the body of a data package: the
    server's hot path, for the usual shapes (a varint id of up to four bytes, a route
    as a code in ``routes``, the dictionary's code -> route map, or as UTF-8, flags
    0x10 and 0x20 clear, a canonical id). None for anything else, which
    :func:`decode_message` then decodes (or refuses) in full. The events are built
    without the frozen dataclass ``__init__``."""
    size = len(body)
    if size < 2:
        return None
    flag = body[0]
    # Unmasked: a flag with bit 4 or 5 (a compressed body, pitaya's clients) matches
    # neither type and goes to decode_message, at no cost to the usual shapes.
    msg_type = flag >> 1
    offset = 1
    msg_id = 0
    if msg_type == _REQUEST:
        byte = body[1]
        offset = 2
        if byte < 0x80:
            msg_id = byte
        else:
            msg_id = byte & 0x7F
            shift = 7
            while True:
                # At most four bytes here (28 bits, always a valid id): a fifth one,
                # which may overflow 31 bits, is left to decode_message.
                if offset >= size or offset > 4:
                    return None
                byte = body[offset]
                offset += 1
                msg_id |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            if byte == 0:  # a trailing zero group: decode_message keeps the id's bytes
                return None
    elif msg_type != _NOTIFY:
        return None
    if flag & 0x01:
        if routes is None or offset + 2 > size:
            return None
        route = routes.get((body[offset] << 8) | body[offset + 1])
        if route is None:
            return None
        offset += 2
    else:
        if offset >= size:
            return None
        stop = offset + 1 + body[offset]
        if stop > size:
            return None
        try:
            route = body[offset + 1 : stop].decode("utf-8")
        except UnicodeDecodeError:
            return None
        offset = stop
    payload = body[offset:] if offset < size else b""
    if msg_id:
        request = _new(Request)
        _set_request_id(request, msg_id)
        _set_request_route(request, route)
        _set_request_body(request, payload)
        return request
    notify = _new(Notify)
    _set_notify_route(notify, route)
    _set_notify_body(notify, payload)
    return notify


# A response's package header and message flag, packed at once: the type byte and the
# 24-bit length as one big-endian word, then the flag (RESPONSE << 1) and the varint id
# (one or two bytes for ids below 2**14; longer ids are appended).
_DATA_TYPE_BITS = int(PackageType.DATA) << 24
_RESPONSE_FLAG = int(MessageType.RESPONSE) << 1
_RESPONSE_FLAG_BITS = _RESPONSE_FLAG << 8
_PACK_0 = struct.Struct(">IB").pack
_PACK_1 = struct.Struct(">IH").pack
_PACK_2 = struct.Struct(">IBH").pack


def encode_response(msg_id: int, body: bytes) -> bytes:
    """One data package holding the response to request ``msg_id``.

    Built with one pack and one concatenation (the hot path); equal to
    ``encode_package(DATA, encode_message(RESPONSE, msg_id, "", body))``.
    """
    if 0 <= msg_id < 0x80:
        length = 2 + len(body)
    elif 0x80 <= msg_id < 0x4000:
        length = 3 + len(body)
    else:
        msg_id_bytes = encode_varint(msg_id)
        length = 1 + len(msg_id_bytes) + len(body)
    if length > MAX_BODY_LENGTH:
        raise ValueError(
            f"package body of {length} bytes exceeds the protocol maximum of {MAX_BODY_LENGTH}"
        )
    if msg_id < 0x80:
        return _PACK_1(_DATA_TYPE_BITS | length, _RESPONSE_FLAG_BITS | msg_id) + body
    if msg_id < 0x4000:
        varint = (msg_id & 0x7F | 0x80) << 8 | msg_id >> 7
        return _PACK_2(_DATA_TYPE_BITS | length, _RESPONSE_FLAG, varint) + body
    return b"".join((_PACK_0(_DATA_TYPE_BITS | length, _RESPONSE_FLAG), msg_id_bytes, body))


# As for the server's requests: responses built without the frozen __init__.
_set_response_id = Response.__dict__["id"].__set__
_set_response_body = Response.__dict__["body"].__set__
_set_response_route = Response.__dict__["route"].__set__


def decode_response_fast(body: bytes, pending: dict[int, str]) -> Response | None:
    """A server's response straight from the body of a data package: the client's hot
    path (a varint id of up to four bytes), its route popped from ``pending``, the
    routes of the requests in flight. None for anything else (pushes, long ids),
    which :func:`decode_message` then decodes (or refuses) in full."""
    if len(body) < 2 or (body[0] >> 1) & 0x07 != _RESPONSE:
        return None
    msg_id = body[1]
    offset = 2
    if msg_id >= 0x80:
        msg_id &= 0x7F
        shift = 7
        while True:
            if offset >= len(body) or offset > 4:
                return None  # truncated or long: decode_message decides
            byte = body[offset]
            offset += 1
            msg_id |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
    response = _new(Response)
    _set_response_id(response, msg_id)
    _set_response_body(response, body[offset:])
    _set_response_route(response, pending.pop(msg_id, ""))
    return response
