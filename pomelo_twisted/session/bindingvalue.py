"""The value of a binding key: which frontend and session hold a uid."""

from __future__ import annotations

import msgspec

__all__ = ["Binding", "decode_binding", "encode_binding"]


class Binding(msgspec.Struct, frozen=True):
    """``{"frontend": id, "sid": n}`` as JSON."""

    frontend: str
    sid: int


_decoder = msgspec.json.Decoder(Binding)


def encode_binding(frontend_id: str, sid: int) -> bytes:
    """The stored value naming session ``sid`` of ``frontend_id``."""
    return msgspec.json.encode(Binding(frontend_id, sid))


def decode_binding(value: bytes) -> tuple[str, int] | None:
    """``(frontend_id, sid)``, or None for a value that is not a binding."""
    try:
        found = _decoder.decode(value)
    except msgspec.DecodeError:
        return None
    return (found.frontend, found.sid)
