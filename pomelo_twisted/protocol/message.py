"""The message layer: the body of a data package.

``flag | id (varint, requests and responses) | route (requests, notifies,
pushes) | body``. Routes are either a string (1-byte length, UTF-8) or a
2-byte dictionary code when the flag's bit 0 is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import LocalProtocolError, MessageDecodeError

__all__ = [
    "MAX_MESSAGE_ID",
    "MAX_ROUTE_BYTES",
    "MAX_ROUTE_CODE",
    "Message",
    "MessageType",
    "decode_message",
    "encode_message",
    "encode_varint",
]

MAX_MESSAGE_ID = 0x7FFFFFFF
MAX_ROUTE_BYTES = 255
MAX_ROUTE_CODE = 0xFFFF
_MAX_VARINT_BYTES = 5

_FLAG_COMPRESSED = 0x01
_FLAG_GZIP = 0x10


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

    @property
    def compressed(self) -> bool:
        """Whether the route travels as a dictionary code."""
        return self.route_code != 0


def encode_varint(value: int) -> bytes:
    """Encode a message id as a base-128 varint, least significant group first."""
    if not 0 <= value <= MAX_MESSAGE_ID:
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
) -> bytes:
    """Encode one message; ``route_code`` (1..65535) compresses the route."""
    if not 0 <= msg_type <= 3:
        raise LocalProtocolError(f"unknown message type {msg_type}")
    has_route = _HAS_ROUTE[msg_type]
    compressed = has_route and route_code != 0
    flag = (msg_type << 1) | (_FLAG_COMPRESSED if compressed else 0) | (_FLAG_GZIP if gzip else 0)
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
    truncated id or route, or a string route that is not UTF-8.
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
    )
