"""Encode and decode message bodies as the npm package ``pomelo-protobuf`` 0.4.0 does.

Sans-I/O: bytes in, values out. The wire format is pomelo-protobuf's, byte for byte:

- a field is its tag varint (``tag << 3 | wire type``) then its value; fields are written
  in the order of the object's keys (JavaScript's order: array-index names first), keys
  the message does not declare are ignored, absent (or ``None``) optional fields are left
  out;
- ``uInt32`` is a varint; ``sInt32`` **and** ``int32`` are zigzag varints (unlike Google
  protobuf's int32); ``float`` and ``double`` are 4 and 8 bytes little-endian; a
  ``string`` is its UTF-8 length then its bytes; a message is its length then its fields;
- a repeated number is *packed the pomelo way*: one tag carrying the element's wire type
  (not 2), then the **count** of values (not their byte length), then the values; a
  repeated string or message repeats its tag before each element; an empty list is left
  out;
- the decoder reads each field by its declared type (the tag's wire type is not checked,
  as pomelo-protobuf does); a non-repeated field seen twice keeps the last value.

Stricter than the npm package, which crashes, returns ``null`` or silently writes garbage
on such input: an unknown tag, a truncated body, a nested message overrunning its length,
a varint longer than 10 bytes, a required field absent (decoding and encoding), a value of
the wrong type are a :class:`ProtobufError` naming the route, the field path and why.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from typing import Any

from .schema import (
    DOUBLE,
    FLOAT,
    MESSAGE,
    SINT,
    STRING,
    UINT,
    MessageSchema,
    encode_varint,
    js_key_order,
)

__all__ = ["MAX_DEPTH", "MAX_VARINT", "ProtobufCodec", "ProtobufError"]

MAX_VARINT = (1 << 64) - 1
MAX_DEPTH = 64
"""How deep messages may nest in one body, by default (a recursive proto would otherwise
let a small body nest until the stack runs out)."""
_TOO_DEEP = "nests too deep"
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_KIND_NAMES = {UINT: "uInt32", SINT: "sInt32", FLOAT: "float", DOUBLE: "double"}


class ProtobufError(ValueError):
    """A body that does not fit its route's proto: ``route``, ``field`` (a dotted path,
    ``""`` for the message itself) and ``reason``."""

    def __init__(self, reason: str, field: str = "", route: str = "") -> None:
        self.reason = reason
        self.field = field
        self.route = route
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"route {self.route!r}" if self.route else "message"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.reason}"

    def within(self, name: str) -> ProtobufError:
        """This error, seen from the message holding field ``name``."""
        self.field = f"{name}.{self.field}" if self.field else name
        self.args = (self._text(),)
        return self

    def on(self, route: str) -> ProtobufError:
        """This error, naming ``route``."""
        self.route = route
        self.args = (self._text(),)
        return self


# -- encoding ---------------------------------------------------------------


def _integer(value: object) -> int:
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 3.0 from a JSON body: JavaScript has no other number
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise ProtobufError(f"expects an integer, not {_describe(value)}")


def _number(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ProtobufError("is too large for a double") from None
    raise ProtobufError(f"expects a number, not {_describe(value)}")


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _utf8(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: Node writes U+FFFD in its place
        return _LONE_SURROGATE.sub("\ufffd", value).encode("utf-8")


def _encode_scalar(out: bytearray, kind: int, value: object) -> None:
    if kind == STRING:
        if not isinstance(value, str):
            raise ProtobufError(f"expects a string, not {_describe(value)}")
        data = _utf8(value)
        out += encode_varint(len(data))
        out += data
    elif kind == UINT:
        number = _integer(value)
        if not 0 <= number <= MAX_VARINT:
            raise ProtobufError(f"{number} is out of uInt32's range (0..2**64-1 on this wire)")
        out += encode_varint(number)
    elif kind == SINT:
        number = _integer(value)
        zigzag = -2 * number - 1 if number < 0 else 2 * number
        if zigzag > MAX_VARINT:
            raise ProtobufError(f"{number} is out of sInt32's range (-2**63..2**63-1)")
        out += encode_varint(zigzag)
    elif kind == FLOAT:
        real = _number(value)
        try:
            out += _F32.pack(real)
        except OverflowError:  # Float32Array rounds it to an infinity
            out += _F32.pack(math.copysign(math.inf, real))
    else:  # DOUBLE
        out += _F64.pack(_number(value))


def _encode_message(out: bytearray, schema: MessageSchema, obj: object, depth: int) -> None:
    if depth < 1:
        raise ProtobufError(_TOO_DEEP)
    if not isinstance(obj, Mapping):
        raise ProtobufError(f"expects an object, not {_describe(obj)}")
    for name in schema.required:
        if obj.get(name) is None:
            raise ProtobufError("is required", name)
    by_name = schema.by_name
    keys = js_key_order(list(obj)) if schema.index_names else obj
    for name in keys:
        field = by_name.get(name)
        if field is None:
            continue
        value = obj[name]
        if value is None:
            continue
        try:
            kind = field.kind
            if not field.repeated:
                out += field.head
                if kind == MESSAGE:
                    assert field.message is not None
                    _encode_nested(out, field.message, value, depth)
                else:
                    _encode_scalar(out, kind, value)
                continue
            if not isinstance(value, (list, tuple)):
                raise ProtobufError(f"is repeated: expects a list, not {_describe(value)}")
            if not value:
                continue
            if field.packed:
                out += field.head
                out += encode_varint(len(value))
                for item in value:
                    _encode_scalar(out, kind, item)
            elif kind == MESSAGE:
                assert field.message is not None
                for item in value:
                    out += field.head
                    _encode_nested(out, field.message, item, depth)
            else:
                for item in value:
                    out += field.head
                    _encode_scalar(out, kind, item)
        except ProtobufError as exc:
            raise exc.within(name) from None


def _encode_nested(out: bytearray, schema: MessageSchema, obj: object, depth: int) -> None:
    inner = bytearray()
    _encode_message(inner, schema, obj, depth - 1)
    out += encode_varint(len(inner))
    out += inner


# -- decoding ---------------------------------------------------------------


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtobufError(f"truncated: a varint runs past byte {end}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > MAX_VARINT:
                raise ProtobufError("a varint exceeds 64 bits")
            return value, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"a varint at byte {pos - 10} is longer than 10 bytes")


def _decode_scalar(data: bytes, pos: int, end: int, kind: int) -> tuple[Any, int]:
    if kind == STRING:
        size, pos = _varint(data, pos, end)
        stop = pos + size
        if stop > end:
            raise ProtobufError(f"truncated: a string of {size} bytes has {end - pos}")
        return _text(data[pos:stop]), stop
    if kind == UINT:
        return _varint(data, pos, end)
    if kind == SINT:
        value, pos = _varint(data, pos, end)
        return (-(value + 1) >> 1 if value & 1 else value >> 1), pos
    size = 4 if kind == FLOAT else 8
    if pos + size > end:
        raise ProtobufError(f"truncated: a {_KIND_NAMES[kind]} needs {size} bytes")
    unpack = _F32 if kind == FLOAT else _F64
    return unpack.unpack_from(data, pos)[0], pos + size


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # The browser build of pomelo-protobuf writes each UTF-16 unit on its own (an
        # astral character as two 3-byte surrogates, CESU-8): pair them up again; any
        # other invalid byte becomes U+FFFD, as Node decodes it.
        text = raw.decode("utf-8", "surrogatepass") if _CESU.search(raw) else None
        if text is not None:
            try:
                return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
            except UnicodeDecodeError:
                pass
        return raw.decode("utf-8", "replace")


_CESU = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")


def _decode_message(
    data: bytes, pos: int, end: int, schema: MessageSchema, depth: int
) -> tuple[dict[str, Any], int]:
    if depth < 1:
        raise ProtobufError(_TOO_DEEP)
    msg: dict[str, Any] = {}
    by_tag = schema.by_tag
    while pos < end:
        key, pos = _varint(data, pos, end)
        field = by_tag.get(key >> 3)
        if field is None:
            raise ProtobufError(f"unknown tag {key >> 3} at byte {pos - 1}")
        name = field.name
        kind = field.kind
        try:
            if kind == MESSAGE:
                assert field.message is not None
                size, pos = _varint(data, pos, end)
                stop = pos + size
                if stop > end:
                    raise ProtobufError(f"truncated: a message of {size} bytes has {end - pos}")
                value, pos = _decode_message(data, pos, stop, field.message, depth - 1)
                if field.repeated:
                    msg.setdefault(name, []).append(value)
                else:
                    msg[name] = value
            elif field.packed:
                count, pos = _varint(data, pos, end)
                if count > end - pos:  # every value takes a byte at least
                    raise ProtobufError(f"truncated: {count} values in {end - pos} bytes")
                values = msg.setdefault(name, [])
                for _ in range(count):
                    value, pos = _decode_scalar(data, pos, end, kind)
                    values.append(value)
            elif field.repeated:
                value, pos = _decode_scalar(data, pos, end, kind)
                msg.setdefault(name, []).append(value)
            else:
                msg[name], pos = _decode_scalar(data, pos, end, kind)
        except ProtobufError as exc:
            raise exc.within(name) from None
    for name in schema.required:
        if name not in msg:
            raise ProtobufError("is required", name)
    return msg, pos


class ProtobufCodec:
    """Encode and decode the bodies of the routes of compiled protos
    (:func:`~pomelo_twisted.protobuf.schema.compile_protos`); messages nest at most
    ``max_depth`` deep in a body."""

    __slots__ = ("_routes", "max_depth")

    def __init__(self, routes: Mapping[str, MessageSchema], max_depth: int = MAX_DEPTH) -> None:
        if type(max_depth) is not int or max_depth < 1:
            raise ValueError(f"max_depth must be an integer of at least 1, not {max_depth!r}")
        self._routes = dict(routes)
        self.max_depth = max_depth

    def _fail(self, exc: ProtobufError, route: str) -> ProtobufError:
        if exc.reason == _TOO_DEEP:
            exc.reason = f"messages nest deeper than {self.max_depth}"
        return exc.on(route)

    def __contains__(self, route: object) -> bool:
        return route in self._routes

    @property
    def routes(self) -> frozenset[str]:
        """The routes with a proto."""
        return frozenset(self._routes)

    def schema(self, route: str) -> MessageSchema:
        """The compiled message of ``route`` (``KeyError`` when it has no proto)."""
        return self._routes[route]

    def encode(self, route: str, obj: object) -> bytes:
        """``obj`` encoded with ``route``'s proto; :class:`ProtobufError` when it does not
        fit (``KeyError`` when the route has no proto)."""
        out = bytearray()
        try:
            _encode_message(out, self._routes[route], {} if obj is None else obj, self.max_depth)
        except ProtobufError as exc:
            raise self._fail(exc, route) from None
        return bytes(out)

    def decode(self, route: str, data: bytes) -> dict[str, Any]:
        """The message ``data`` holds, by ``route``'s proto; :class:`ProtobufError` when
        it is malformed (``KeyError`` when the route has no proto)."""
        schema = self._routes[route]
        try:
            msg, _ = _decode_message(data, 0, len(data), schema, self.max_depth)
        except ProtobufError as exc:
            raise self._fail(exc, route) from None
        return msg
