"""The message layer: the body of a data package.

``flag | id (varint, requests and responses) | route (requests, notifies,
pushes) | body``. Routes are either a string (1-byte length, UTF-8) or a
2-byte dictionary code when the flag's bit 0 is set. Bit 4 (0x10) says the body
is zlib- or gzip-compressed (pitaya's clients), bit 5 (0x20) that a response is an
error (pitaya's error flag).

Message ids as sent: the stock pomelo 2.2.7 browser client writes ids most
significant group first, so an id that is a multiple of 128 arrives as a varint
with a trailing zero group (``81 00`` for 128), which decodes to another id (1).
:func:`decode_message` keeps such a non-canonical id's byte count in the id it
returns (:func:`mark_id_length`: bits 32 and up, above any valid id), and
:func:`encode_varint` turns a marked id back into exactly those bytes, so the
answer carries the id bytes the request came with. Canonical ids stay plain ints.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum

from .errors import LocalProtocolError, MessageDecodeError

__all__ = [
    "FLAG_BODY_COMPRESSED",
    "FLAG_ERROR",
    "MAX_MESSAGE_ID",
    "MAX_ROUTE_BYTES",
    "MAX_ROUTE_CODE",
    "Message",
    "MessageType",
    "decode_message",
    "deflate_body",
    "encode_message",
    "encode_varint",
    "id_length_of",
    "inflate_body",
    "mark_id_length",
]

MAX_MESSAGE_ID = 0x7FFFFFFF
MAX_ROUTE_BYTES = 255
MAX_ROUTE_CODE = 0xFFFF
_MAX_VARINT_BYTES = 5

_FLAG_COMPRESSED = 0x01
_FLAG_GZIP = 0x10
FLAG_BODY_COMPRESSED = _FLAG_GZIP
"""The body is zlib- or gzip-compressed (pitaya's clients and servers)."""
FLAG_ERROR = 0x20
"""A response that is an error, in pitaya's error shape (pitaya's servers)."""

# A non-canonical id keeps its varint's byte count above bit 32 (see the module doc).
_ID_LENGTH_SHIFT = 32
_ID_VALUE_MASK = (1 << _ID_LENGTH_SHIFT) - 1
# zlib.decompressobj's wbits: a zlib or a gzip header, detected (as libpitaya inflates).
_ZLIB_OR_GZIP = 32 + zlib.MAX_WBITS


class MessageType(IntEnum):
    """The four message types, as the flag's bits 1-3 carry them."""

    REQUEST = 0
    NOTIFY = 1
    RESPONSE = 2
    PUSH = 3


_TYPES = tuple(MessageType)
_HAS_ID = (True, False, True, False)
_HAS_ROUTE = (True, True, False, True)


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded or to-be-encoded message.

    ``route_code`` is non-zero when the route travels compressed; ``route``
    is then empty until a dictionary resolves it.
    """

    type: MessageType
    id: int = 0
    route: str = ""
    body: bytes = b""
    route_code: int = 0
    gzip: bool = False
    error: bool = False

    @property
    def compressed(self) -> bool:
        """Whether the route travels as a dictionary code."""
        return self.route_code != 0


def mark_id_length(value: int, length: int) -> int:
    """The id standing for ``value`` sent as a ``length``-byte varint (non-canonical:
    trailing zero groups), which :func:`encode_varint` encodes back to those bytes."""
    if not 0 < value <= MAX_MESSAGE_ID or not 1 < length <= _MAX_VARINT_BYTES:
        raise LocalProtocolError(f"no {length}-byte form of message id {value}")
    return value | (length << _ID_LENGTH_SHIFT)


def id_length_of(msg_id: int) -> int:
    """The varint byte count a marked id (:func:`mark_id_length`) keeps; 0 for a plain id."""
    return msg_id >> _ID_LENGTH_SHIFT


def _encode_padded(value: int, length: int) -> bytes:
    """``value`` as a ``length``-byte varint, least significant group first, padded
    with zero groups: the bytes a most-significant-first encoder sent for it."""
    out = bytearray()
    for index in range(length):
        group = value & 0x7F
        value >>= 7
        out.append(group | 0x80 if index < length - 1 else group)
    return bytes(out)


def encode_varint(value: int) -> bytes:
    """Encode a message id as a base-128 varint, least significant group first (a
    marked id, :func:`mark_id_length`, in the byte count it was received in)."""
    if not 0 <= value <= MAX_MESSAGE_ID:
        length = value >> _ID_LENGTH_SHIFT
        plain = value & _ID_VALUE_MASK
        if 1 < length <= _MAX_VARINT_BYTES and 0 < plain <= MAX_MESSAGE_ID:
            return _encode_padded(plain, length)
        raise LocalProtocolError(f"message id {value} is outside 0..{MAX_MESSAGE_ID}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_message(
    msg_type: MessageType,
    msg_id: int = 0,
    route: str = "",
    body: bytes = b"",
    *,
    route_code: int = 0,
    gzip: bool = False,
    error: bool = False,
) -> bytes:
    """Encode one message; ``route_code`` (1..65535) compresses the route; ``gzip``
    and ``error`` set the flags 0x10 (``body`` is compressed) and 0x20."""
    if not 0 <= msg_type <= 3:
        raise LocalProtocolError(f"unknown message type {msg_type}")
    has_route = _HAS_ROUTE[msg_type]
    compressed = has_route and route_code != 0
    flag = (msg_type << 1) | (_FLAG_COMPRESSED if compressed else 0) | (_FLAG_GZIP if gzip else 0)
    if error:
        flag |= FLAG_ERROR
    parts = [bytes((flag,))]
    if _HAS_ID[msg_type]:
        parts.append(encode_varint(msg_id))
    if has_route:
        if compressed:
            if not 0 < route_code <= MAX_ROUTE_CODE:
                raise LocalProtocolError(f"route code {route_code} is outside 1..{MAX_ROUTE_CODE}")
            parts.append(route_code.to_bytes(2, "big"))
        else:
            raw = route.encode("utf-8")
            if len(raw) > MAX_ROUTE_BYTES:
                raise LocalProtocolError(
                    f"route of {len(raw)} UTF-8 bytes is over the maximum of {MAX_ROUTE_BYTES}"
                )
            parts.append(bytes((len(raw),)))
            parts.append(raw)
    parts.append(body)
    return b"".join(parts)


def decode_message(data: bytes) -> Message:
    """Decode the body of one data package.

    Raises :class:`MessageDecodeError` for an empty buffer, a message type
    outside 0..3, a varint id longer than 5 bytes or above 2**31-1, a
    truncated id or route, or a string route that is not UTF-8. A non-zero id
    whose varint ends in a zero group comes back marked (:func:`mark_id_length`).
    The body stays as sent (``gzip`` tells it is compressed: :func:`inflate_body`).
    """
    size = len(data)
    if size == 0:
        raise MessageDecodeError("empty data package")
    flag = data[0]
    msg_type = (flag >> 1) & 0x07
    if msg_type > 3:
        raise MessageDecodeError(f"unknown message type {msg_type} (flag {flag:#04x})")
    offset = 1
    msg_id = 0
    if _HAS_ID[msg_type]:
        shift = 0
        byte = 0
        while True:
            if offset >= size:
                raise MessageDecodeError("message id truncated")
            if offset > _MAX_VARINT_BYTES:
                raise MessageDecodeError("message id varint longer than 5 bytes")
            byte = data[offset]
            offset += 1
            msg_id |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        if msg_id > MAX_MESSAGE_ID:
            raise MessageDecodeError(f"message id {msg_id} over the maximum of {MAX_MESSAGE_ID}")
        if byte == 0 and msg_id and offset > 2:  # a trailing zero group: keep its bytes
            msg_id = mark_id_length(msg_id, offset - 1)
    route = ""
    route_code = 0
    if _HAS_ROUTE[msg_type]:
        if flag & _FLAG_COMPRESSED:
            if offset + 2 > size:
                raise MessageDecodeError("compressed route truncated")
            # Code 0 is in no dictionary: it decodes as an empty route, which the
            # dispatcher answers as unknown instead of the connection dying.
            route_code = (data[offset] << 8) | data[offset + 1]
            offset += 2
        else:
            if offset >= size:
                raise MessageDecodeError("route length missing")
            length = data[offset]
            offset += 1
            if offset + length > size:
                raise MessageDecodeError(f"route of {length} bytes truncated")
            try:
                route = data[offset : offset + length].decode("utf-8")
            except UnicodeDecodeError:
                raise MessageDecodeError("route is not valid UTF-8") from None
            offset += length
    return Message(
        _TYPES[msg_type],
        msg_id,
        route,
        data[offset:] if offset < size else b"",
        route_code,
        bool(flag & _FLAG_GZIP),
        bool(flag & FLAG_ERROR),
    )


def inflate_body(body: bytes, limit: int) -> bytes:
    """The body of a message sent with flag 0x10, zlib or gzip (detected), inflated.

    Never holds more than ``limit + 1`` inflated bytes: a body inflating past
    ``limit`` (a bomb), one that does not inflate, is truncated or has bytes after
    its end raises :class:`MessageDecodeError` naming the cause.
    """
    inflater = zlib.decompressobj(_ZLIB_OR_GZIP)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MessageDecodeError(f"compressed body (flag 0x10) does not inflate: {exc}") from None
    if len(out) > limit:
        raise MessageDecodeError(
            f"compressed body (flag 0x10) inflates past the limit of {limit} bytes"
            " (max_inflated_body)"
        )
    if not inflater.eof:
        raise MessageDecodeError("compressed body (flag 0x10) is truncated")
    if inflater.unused_data:
        raise MessageDecodeError("compressed body (flag 0x10) has bytes after its end")
    return out


def deflate_body(body: bytes) -> bytes | None:
    """``body`` zlib-compressed (as pitaya's servers and libpitaya compress), or None
    when that is not smaller."""
    compressed = zlib.compress(body)
    return compressed if len(compressed) < len(body) else None
