"""RESP2, the Redis wire protocol, sans I/O: commands to bytes, bytes to replies.

:func:`encode_command` turns ``("SADD", "key", "member")`` into the array of bulk
strings Redis expects. :class:`RespParser` is fed whatever the connection delivered,
in pieces of any size, and returns each reply once it is complete: ``str`` for a simple
string, ``int``, ``bytes`` for a bulk string, ``None`` for a null bulk string or array,
``list`` for an array, and :class:`RespError` (a value, not raised) for an error reply.
Malformed input raises :class:`RespProtocolError`; the parser is then unusable.

This module never imports Twisted (``tests/globalchannels/test_resp.py`` checks it).
"""

from __future__ import annotations

from typing import TypeAlias

__all__ = [
    "MAX_BULK",
    "MAX_DEPTH",
    "MAX_LINE",
    "Reply",
    "RespError",
    "RespParser",
    "RespProtocolError",
    "encode_command",
]

MAX_BULK = 512 * 1024 * 1024
"""The longest bulk string accepted by default (Redis' own limit, ``proto-max-bulk-len``)."""

MAX_LINE = 64 * 1024
"""The longest status, error or length line accepted by default."""

MAX_DEPTH = 32
"""How deeply arrays may nest by default."""


class RespError:
    """An error reply of the server (``-ERR ...``): its message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"RespError({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RespError) and other.message == self.message

    def __hash__(self) -> int:
        return hash(self.message)


Reply: TypeAlias = str | int | bytes | RespError | list["Reply"] | None
"""One decoded reply."""


class RespProtocolError(ValueError):
    """The bytes are not RESP2 (or pass a configured limit)."""


def _arg(value: str | bytes | int | float) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):
        raise TypeError(f"a Redis argument is a string or a number, not {value!r}")
    if isinstance(value, int | float):
        return repr(value).encode("ascii")
    raise TypeError(f"a Redis argument is a string or a number, not {value!r}")


def encode_command(*args: str | bytes | int | float) -> bytes:
    """The bytes of one command: an array of bulk strings (str as UTF-8)."""
    if not args:
        raise ValueError("a Redis command needs at least its name")
    parts = [b"*%d\r\n" % len(args)]
    for value in args:
        data = _arg(value)
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)


class RespParser:
    """Incremental RESP2 decoder: :meth:`feed` bytes, get the completed replies."""

    __slots__ = ("_buffer", "_failed", "_stack", "max_bulk", "max_depth", "max_line")

    def __init__(
        self, *, max_bulk: int = MAX_BULK, max_line: int = MAX_LINE, max_depth: int = MAX_DEPTH
    ) -> None:
        self.max_bulk = max_bulk
        self.max_line = max_line
        self.max_depth = max_depth
        self._buffer = bytearray()
        # The arrays being filled, outermost first: [items still expected, items so far].
        self._stack: list[tuple[list[int], list[Reply]]] = []
        self._failed = False

    def __len__(self) -> int:
        """Bytes received and not yet part of a complete element."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Reply]:
        """Take the next bytes of the stream; the replies they completed, in order."""
        if self._failed:
            raise RespProtocolError("the parser failed earlier and cannot go on")
        self._buffer += data
        replies: list[Reply] = []
        try:
            self._parse(replies)
        except RespProtocolError:
            self._failed = True
            raise
        return replies

    def _parse(self, replies: list[Reply]) -> None:
        buffer = self._buffer
        pos = 0
        try:
            while True:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    if len(buffer) - pos > self.max_line:
                        raise RespProtocolError(f"a line longer than {self.max_line} bytes")
                    return
                if end - pos > self.max_line:
                    raise RespProtocolError(f"a line longer than {self.max_line} bytes")
                kind = buffer[pos : pos + 1]
                line = bytes(buffer[pos + 1 : end])
                value: Reply
                if kind == b"+":
                    value = line.decode("utf-8", "replace")
                    pos = end + 2
                elif kind == b"-":
                    value = RespError(line.decode("utf-8", "replace"))
                    pos = end + 2
                elif kind == b":":
                    value = self._number(line)
                    pos = end + 2
                elif kind == b"$":
                    length = self._number(line)
                    if length == -1:
                        value = None
                        pos = end + 2
                    elif 0 <= length <= self.max_bulk:
                        start = end + 2
                        if len(buffer) < start + length + 2:
                            return
                        if buffer[start + length : start + length + 2] != b"\r\n":
                            raise RespProtocolError("a bulk string not ended by CRLF")
                        value = bytes(buffer[start : start + length])
                        pos = start + length + 2
                    else:
                        raise RespProtocolError(f"a bulk string of length {length}")
                elif kind == b"*":
                    count = self._number(line)
                    pos = end + 2
                    if count == -1:
                        value = None
                    elif count == 0:
                        value = []
                    elif count > 0:
                        if len(self._stack) >= self.max_depth:
                            raise RespProtocolError(f"arrays nested deeper than {self.max_depth}")
                        self._stack.append(([count], []))
                        continue
                    else:
                        raise RespProtocolError(f"an array of length {count}")
                else:
                    raise RespProtocolError(f"unknown reply type {bytes(kind)!r}")
                self._complete(value, replies)
        finally:
            del buffer[:pos]

    def _complete(self, value: Reply, replies: list[Reply]) -> None:
        stack = self._stack
        while stack:
            remaining, items = stack[-1]
            items.append(value)
            remaining[0] -= 1
            if remaining[0]:
                return
            stack.pop()
            value = items
        replies.append(value)

    @staticmethod
    def _number(line: bytes) -> int:
        if not line or not (line.isdigit() or (line[:1] == b"-" and line[1:].isdigit())):
            raise RespProtocolError(f"not an integer: {line[:40]!r}")
        return int(line)
