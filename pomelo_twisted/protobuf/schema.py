"""pomelo-protobuf's JSON protos, parsed and compiled once at load.

A protos file (``config/serverProtos.json``, ``config/clientProtos.json``) maps a route to
its message: ``{"chat.chatHandler.send": {"required string rid": 1, "optional string
content": 2, "message Item": {...}, "repeated Item items": 3}}``; a top-level key
``"message Name"`` declares a message every route may use. :func:`parse_protos` returns
the *parsed* form the npm package ``pomelo-protobuf`` 0.4.0 builds (``{field: {option,
type, tag}, "__messages": {...}, "__tags": {tag: field}}``): stock clients receive that
form in the handshake and use it as it is, and the protos version is a hash of it.
:func:`compile_protos` turns the parsed form into :class:`MessageSchema` tables the codec
walks without parsing anything per call.

Stricter than the npm parser, which skips what it does not understand: a malformed key, a
duplicate tag, a tag that is not a positive integer, an unknown type and the types 0.4.0
declares but cannot encode (``uInt64``, ``sInt64``, ``bool``: it writes their tag without
a value) are a :class:`ProtosError` naming the route and key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DOUBLE",
    "FLOAT",
    "MESSAGE",
    "SINT",
    "STRING",
    "UINT",
    "Field",
    "MessageSchema",
    "ProtosError",
    "compile_protos",
    "encode_varint",
    "js_json",
    "js_key_order",
    "parse_protos",
    "protos_version",
]

UINT, SINT, FLOAT, DOUBLE, STRING, MESSAGE = range(6)
"""Field kinds: ``uInt32``; ``sInt32`` and ``int32`` (both zigzag in pomelo-protobuf);
``float``; ``double``; ``string``; a message."""

_SCALARS: Mapping[str, tuple[int, int]] = {
    # type name -> (kind, wire type written in the field's tag)
    "uInt32": (UINT, 0),
    "sInt32": (SINT, 0),
    "int32": (SINT, 0),
    "double": (DOUBLE, 1),
    "float": (FLOAT, 5),
    "string": (STRING, 2),
}
_UNSUPPORTED = frozenset({"uInt64", "sInt64", "bool"})
_OPTIONS = frozenset({"required", "optional", "repeated"})
MAX_TAG = (1 << 29) - 1


class ProtosError(ValueError):
    """A protos file that pomelo-protobuf cannot serve; the message names the key."""


def encode_varint(value: int) -> bytes:
    """``value`` (≥ 0) as a base-128 varint, least significant group first."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _is_index(key: str) -> bool:
    # A key JavaScript objects order first, ascending (an array index).
    return key.isdigit() and key.isascii() and str(int(key)) == key and int(key) < 2**32 - 1


def js_key_order(keys: list[str]) -> list[str]:
    """``keys`` in a JavaScript object's order: array-index keys first, ascending, then
    the others in insertion order."""
    indexes = sorted((k for k in keys if _is_index(k)), key=int)
    if not indexes:
        return keys
    return indexes + [k for k in keys if not _is_index(k)]


def _parse_message(obj: object, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProtosError(f"{where}: a message must be a JSON object, not {type(obj).__name__}")
    parsed: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    tags: dict[int, str] = {}
    for key in js_key_order(list(obj)):
        value = obj[key]
        words = key.split(" ")
        if words[0] == "message":
            if len(words) != 2 or not words[1]:
                raise ProtosError(f"{where}: {key!r}: expected 'message Name'")
            if words[1] in _SCALARS or words[1] in _UNSUPPORTED:
                raise ProtosError(f"{where}: {key!r}: a message cannot be named like a type")
            nested[words[1]] = _parse_message(value, f"{where}.{words[1]}")
            continue
        if words[0] not in _OPTIONS or len(words) != 3 or not words[1] or not words[2]:
            raise ProtosError(
                f"{where}: {key!r}: expected '<required|optional|repeated> <type> <name>'"
                " or 'message <Name>'"
            )
        option, type_name, name = words
        if type(value) is not int or not 0 < value <= MAX_TAG:
            raise ProtosError(f"{where}.{name}: tag {value!r} is not an integer in 1..{MAX_TAG}")
        if value in tags:
            raise ProtosError(f"{where}.{name}: tag {value} is already {tags[value]!r}'s")
        if name in parsed or name.startswith("__"):
            raise ProtosError(f"{where}.{name}: field name declared twice or reserved")
        if type_name in _UNSUPPORTED:
            raise ProtosError(
                f"{where}.{name}: type {type_name!r} is not supported by pomelo-protobuf"
                " 0.4.0 (it writes the tag without a value)"
            )
        parsed[name] = {"option": option, "type": type_name, "tag": value}
        tags[value] = name
    parsed["__messages"] = nested
    parsed["__tags"] = {str(tag): tags[tag] for tag in sorted(tags)}
    return parsed


def parse_protos(protos: object, source: str = "protos") -> dict[str, Any]:
    """The parsed form of a protos file's JSON object (what pomelo-protobuf's ``parse``
    returns, and what clients receive); :class:`ProtosError` names a bad key."""
    if not isinstance(protos, dict):
        raise ProtosError(f"{source}: must be a JSON object of routes")
    return {route: _parse_message(protos[route], f"{source}: {route}") for route in protos}


def js_json(value: object) -> str:
    """``value`` as JavaScript's ``JSON.stringify`` writes it (keys as ordered, no spaces)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def protos_version(client: Mapping[str, Any], server: Mapping[str, Any]) -> str:
    """The protos version pomelo computes: base64 of the MD5 of the parsed client protos'
    JSON followed by the parsed server protos' (stable across a cluster's servers)."""
    text = js_json(client) + js_json(server)
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")


class Field:
    """One field of a compiled message: what the codec needs, nothing to look up."""

    __slots__ = ("head", "kind", "message", "name", "packed", "repeated", "required", "tag")

    def __init__(self, name: str, option: str, kind: int, wire: int, tag: int) -> None:
        self.name = name
        self.tag = tag
        self.kind = kind
        self.required = option == "required"
        self.repeated = option == "repeated"
        # pomelo-protobuf packs repeated numbers (one tag, then the count, then the
        # values) and repeats the tag for each string or message.
        self.packed = self.repeated and kind not in (STRING, MESSAGE)
        self.head = encode_varint(tag << 3 | wire)
        self.message: MessageSchema | None = None

    def __repr__(self) -> str:
        return f"<Field {self.name} tag={self.tag} kind={self.kind}>"


class MessageSchema:
    """A compiled message: its fields by name and by tag, and its required names."""

    __slots__ = ("by_name", "by_tag", "index_names", "name", "required")

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_name: dict[str, Field] = {}
        self.by_tag: dict[int, Field] = {}
        self.required: tuple[str, ...] = ()
        self.index_names = False  # a field name JavaScript would order first

    def __repr__(self) -> str:
        return f"<MessageSchema {self.name} fields={list(self.by_name)}>"


def compile_protos(parsed: Mapping[str, Any], source: str = "protos") -> dict[str, MessageSchema]:
    """Per-route :class:`MessageSchema` of parsed protos (:func:`parse_protos`).

    A field's message type resolves as in pomelo-protobuf: among the messages nested in
    the field's own message, else the top-level ``"message <Type>"``. An unresolved type
    is a :class:`ProtosError`.
    """
    compiled: dict[int, MessageSchema] = {}  # id(parsed message) -> schema (shared types)

    def build(obj: Mapping[str, Any], where: str) -> MessageSchema:
        found = compiled.get(id(obj))
        if found is not None:
            return found
        schema = compiled[id(obj)] = MessageSchema(where)
        required = []
        for name, spec in obj.items():
            if name.startswith("__"):
                continue
            type_name = spec["type"]
            scalar = _SCALARS.get(type_name)
            field = Field(name, spec["option"], *(scalar or (MESSAGE, 2)), spec["tag"])
            if scalar is None:
                target = obj["__messages"].get(type_name)
                if target is None:
                    target = parsed.get("message " + type_name)
                if not isinstance(target, Mapping):
                    raise ProtosError(f"{where}.{name}: unknown type {type_name!r}")
                field.message = build(target, f"{source}: message {type_name}")
            schema.by_name[name] = field
            schema.by_tag[field.tag] = field
            if field.required:
                required.append(name)
            schema.index_names = schema.index_names or _is_index(name)
        schema.required = tuple(required)
        return schema

    return {route: build(parsed[route], f"{source}: {route}") for route in parsed}
