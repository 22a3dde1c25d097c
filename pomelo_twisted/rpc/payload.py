"""Plain data: what crosses between servers, as msgpack carries it, and how it is framed.

Every transport copies arguments and results through msgpack, so a remote sees
the same values in-process as across the network: dicts, lists, str, bytes,
int, float, bool and None. Tuples arrive as lists; objects, sets and integers
beyond 64 bits are refused.

Between processes, calls and answers travel in *batches*: msgpack arrays whose items
are packed already (:func:`pack_array`), each at most :data:`MAX_BATCH` bytes
(:func:`chunks`). A call is ``[id, target, service, method, args, budget]``: ``budget``
is the seconds its caller still waits (:mod:`~pomelo_twisted.budget`); a call made within
a call context (:mod:`~pomelo_twisted.callcontext`) carries it as a 7th item,
``[id, target, service, method, args, budget, context]``; a callee also accepts
``[id, target, service, method, args]`` (no budget: the form before budgets).
An answer is ``[id, OK, result]``, ``[id, HANDLER_ERROR, code, msg]``, ``[id, ERROR,
message]`` or ``[id, TIMEOUT, message]`` (the budget was spent before the remote ran).
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
from twisted.spread import banana

__all__ = [
    "ERROR",
    "HANDLER_ERROR",
    "MAX_BATCH",
    "OK",
    "TIMEOUT",
    "chunks",
    "copy_plain",
    "pack_array",
    "pack_plain",
    "unpack_plain",
]

OK, HANDLER_ERROR, ERROR, TIMEOUT = 0, 1, 2, 3
"""The kinds of answer: ``[id, OK, result]``, ``[id, HANDLER_ERROR, code, msg]`` (re-raised as
``HandlerError`` by the caller), ``[id, ERROR, message]`` (an ``RpcError``) and
``[id, TIMEOUT, message]`` (an ``RpcTimeout``: the call's budget was spent on arrival)."""

MAX_BATCH = banana.SIZE_LIMIT - 8
"""The most bytes one batch of calls or answers carries (banana refuses a string over
``SIZE_LIMIT``; 8 bytes are left for the array header). One call's item or one answer
above it is refused on its own."""


_packers = threading.local()


def _packer() -> msgpack.Packer:
    packer: msgpack.Packer = msgpack.Packer(use_bin_type=True)
    _packers.packer = packer
    return packer


def pack_plain(value: object) -> bytes:
    """The msgpack bytes of ``value``; ``ValueError`` naming why it is not plain data.

    One ``Packer`` per thread is reused (``msgpack.packb`` builds one per call, which
    costs more than packing a small value); a failed ``pack`` leaves it empty.
    """
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packer()
    try:
        data: bytes = packer.pack(value)
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


def pack_array(items: list[bytes]) -> bytes:
    """The msgpack bytes of an array whose items are packed already (``pack_plain``
    each): one array header, then the items as they are, so a batch of calls or
    answers is packed once per item and decoded by one ``unpack_plain``."""
    n = len(items)
    if n < 16:
        header = bytes((0x90 | n,))
    elif n < 0x10000:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return header + b"".join(items)


def chunks(items: list[bytes], limit: int) -> list[list[bytes]]:
    """``items`` in order, in runs of at most ``limit`` bytes (an item over ``limit``
    makes a run of its own), for arrays that must each stay under a size."""
    runs: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for item in items:
        if size + len(item) > limit and current:
            runs.append(current)
            current, size = [], 0
        current.append(item)
        size += len(item)
    if current:
        runs.append(current)
    return runs
