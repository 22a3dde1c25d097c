"""Incremental UTF-8 validation of WebSocket text messages (RFC 6455 §8.1), sans-I/O.

A text message may arrive in fragments, and each fragment in pieces; the endpoint
must fail the connection (1007) as soon as the bytes so far can no longer be the
start of valid UTF-8, not only at the end of the message.
"""

from __future__ import annotations

import codecs

__all__ = ["Utf8Validator"]

_Decoder = codecs.getincrementaldecoder("utf-8")


def _prefix_dead(pending: bytes) -> bool:
    """Whether ``pending``, the unfinished character an incremental UTF-8 decoder holds,
    can never be completed (e.g. ``ED A0``, a surrogate's start, which CPython's decoder
    only refuses once its third byte arrives). A lone lead byte it kept is always live;
    from two bytes on, completing with ``80`` continuation bytes decides."""
    if len(pending) < 2:
        return False
    need = 3 if pending[0] < 0xF0 else 4
    try:
        (pending + b"\x80" * (need - len(pending))).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class Utf8Validator:
    """Validates one text message chunk by chunk (CPython's incremental decoder)."""

    __slots__ = ("_decoder",)

    def __init__(self, state: tuple[bytes, int] | None = None) -> None:
        self._decoder = _Decoder()
        if state is not None:
            self._decoder.setstate(state)

    def feed(self, data: bytes, final: bool) -> bool:
        """Add ``data``; False once the message cannot be valid UTF-8 any more, or (when
        ``final``) stops inside a character."""
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError:
            return False
        return final or not _prefix_dead(self._decoder.getstate()[0])

    def copy(self) -> Utf8Validator:
        """An independent validator in the same state (to look ahead without committing)."""
        return Utf8Validator(self._decoder.getstate())
