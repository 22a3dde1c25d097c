"""Message-body serializers: JSON (the Pomelo default) and msgpack.

A serializer turns the body of a request, response or push (a JSON-like Python value)
into bytes and back.  Both serializers here are stateless but for their depth cap: they
may be shared freely.  Their ``name`` is what the server announces in the handshake as
``sys.serializer``.

Leniency is the caller's choice, not the serializer's: the Pomelo reference server turns
a request body that is not valid JSON into ``{}``, but these serializers raise
:class:`~pomelo_twisted.errors.SerializationError` on invalid input and leave it to the
caller to decide whether to substitute ``{}``, reject the request, or close the
connection.  The one leniency built in is that an *empty* body decodes to ``{}``, since
Pomelo clients send an empty body for a request without arguments.

Nesting is capped at decode: a body whose lists and maps nest deeper than ``max_depth``
(default :data:`MAX_DEPTH`, 64) is a :class:`~pomelo_twisted.errors.SerializationError`.
orjson decodes to depth 1,024 but encodes only to 254, so without the cap an echoed deep
body fails on the way out instead of on the way in. The check costs a length test per
body (a JSON body of at most 2 × cap bytes, a msgpack body of at most cap bytes, cannot be
too deep), then a ``bytes.count`` per longer JSON body (fewer brackets than the cap: not
too deep); only the other bodies are walked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

import msgpack
import orjson
from zope.interface import implementer

from pomelo_twisted.errors import SerializationError
from pomelo_twisted.interfaces import ISerializer

__all__ = ["MAX_DEPTH", "JsonSerializer", "MsgpackSerializer", "get_serializer"]

MAX_DEPTH: Final = 64
"""The deepest nesting of lists and maps a body may have, by default."""


def _deeper_than(value: object, limit: int) -> bool:
    """Whether lists and dicts nest in ``value`` more than ``limit`` levels."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _check_depth(value: object, limit: int, kind: str) -> object:
    if _deeper_than(value, limit):
        raise SerializationError(f"{kind} nested deeper than {limit} levels")
    return value


class _DepthLimited:
    """A serializer that decodes nesting down to ``max_depth`` levels only."""

    max_depth: int = MAX_DEPTH
    """The deepest nesting decoded (a class default: subclasses need not call __init__)."""

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        if max_depth < 1:
            raise ValueError("max_depth must be at least 1")
        if max_depth != MAX_DEPTH:
            self.max_depth = max_depth


@implementer(ISerializer)
class JsonSerializer(_DepthLimited):
    """JSON via orjson: compact, UTF-8 (no ``\\u`` escapes), non-str dict keys allowed.

    Non-str keys (int, float, bool, None) are turned into strings as the standard
    library's :func:`json.dumps` does, e.g. ``{1: 2}`` encodes as ``{"1":2}``.
    Integers must fit in 64 bits; NaN and infinities encode as ``null``.
    """

    name: Final = "json"

    def encode(self, obj: object) -> bytes:
        """Return the compact UTF-8 JSON of ``obj``.

        :raises SerializationError: ``obj`` holds a value JSON cannot represent.
        """
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError as e:
            raise SerializationError(f"cannot encode as JSON: {e}") from e

    def decode(self, data: bytes) -> object:
        """Return the value of the JSON document ``data``; empty ``data`` gives ``{}``.

        :raises SerializationError: ``data`` is not valid UTF-8 JSON.
        """
        if not data:
            return {}
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise SerializationError(f"invalid JSON: {e}") from e
        # Deeper than the cap takes more than 2 × cap bytes and more than cap brackets.
        limit = self.max_depth
        if len(data) > 2 * limit and data.count(b"[") + data.count(b"{") > limit:
            return _check_depth(value, limit, "JSON")
        return value


@implementer(ISerializer)
class MsgpackSerializer(_DepthLimited):
    """msgpack: str as UTF-8 str, bytes as bin; maps may have non-str keys."""

    name: Final = "msgpack"

    def encode(self, obj: object) -> bytes:
        """Return the msgpack encoding of ``obj`` (bytes values are packed as bin).

        :raises SerializationError: ``obj`` holds a value msgpack cannot represent.
        """
        try:
            packed: bytes = msgpack.packb(obj, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as e:
            raise SerializationError(f"cannot encode as msgpack: {e}") from e
        return packed

    def decode(self, data: bytes) -> object:
        """Return the value packed in ``data``; empty ``data`` gives ``{}``.

        :raises SerializationError: ``data`` is not exactly one valid msgpack object.
        """
        if not data:
            return {}
        try:
            value = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise SerializationError(f"invalid msgpack: {e}") from e
        if len(data) > self.max_depth:  # each level takes at least one byte
            return _check_depth(value, self.max_depth, "msgpack")
        return value


_SERIALIZERS: Final[Mapping[str, Callable[[], ISerializer]]] = MappingProxyType(
    {cls.name: cls for cls in (JsonSerializer, MsgpackSerializer)}
)


def get_serializer(name: str) -> ISerializer:
    """Return a serializer for ``name`` (``"json"`` or ``"msgpack"``).

    :raises ValueError: no serializer is called ``name``; the message lists the known ones.
    """
    try:
        factory = _SERIALIZERS[name]
    except KeyError:
        known = ", ".join(repr(n) for n in sorted(_SERIALIZERS))
        raise ValueError(f"unknown serializer {name!r}; known serializers: {known}") from None
    return factory()
