"""Plain data: what crosses between servers, as msgpack carries it.

Every transport copies arguments and results through msgpack, so a remote sees
the same values in-process as across the network: dicts, lists, str, bytes,
int, float, bool and None. Tuples arrive as lists; objects, sets and integers
beyond 64 bits are refused.
"""

from __future__ import annotations

from typing import Any

import msgpack

__all__ = ["copy_plain", "pack_plain", "unpack_plain"]


def pack_plain(value: object) -> bytes:
    """The msgpack bytes of ``value``; ``ValueError`` naming why it is not plain data."""
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc
    return data


def unpack_plain(data: bytes) -> Any:
    """The value of msgpack ``data``; ``ValueError`` when it cannot be decoded."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (TypeError, ValueError) as exc:  # msgpack's errors derive from ValueError
        raise ValueError(str(exc) or type(exc).__name__) from exc


def copy_plain(value: object) -> Any:
    """A deep copy of ``value`` through msgpack (tuples become lists)."""
    return unpack_plain(pack_plain(value))
