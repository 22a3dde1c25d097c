"""The package layer: a 4-byte header (type, 24-bit big-endian length) and a body.

Sans-I/O: :func:`encode_package` turns a type and body into bytes, and
:class:`PackageDecoder` turns arbitrary chunks of a byte stream into complete
:class:`Package` values, buffering what is incomplete.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import BadPackageType, PackageTooLarge

__all__ = [
    "DEFAULT_MAX_PACKET_SIZE",
    "HEADER_SIZE",
    "MAX_BODY_LENGTH",
    "Package",
    "PackageDecoder",
    "PackageType",
    "encode_package",
]

HEADER_SIZE = 4
MAX_BODY_LENGTH = 0xFFFFFF
DEFAULT_MAX_PACKET_SIZE = 64 * 1024


class PackageType(IntEnum):
    """The five package types of the Pomelo protocol."""

    HANDSHAKE = 1
    HANDSHAKE_ACK = 2
    HEARTBEAT = 3
    DATA = 4
    KICK = 5


# Indexing a tuple is much cheaper than calling the IntEnum per package.
_TYPES: tuple[PackageType, ...] = (PackageType.HANDSHAKE, *PackageType)


@dataclass(frozen=True, slots=True)
class Package:
    """One decoded package: its type and its body (``b""`` when empty)."""

    type: PackageType
    body: bytes = b""


_new = object.__new__
_set_type = Package.__dict__["type"].__set__
_set_body = Package.__dict__["body"].__set__


def encode_package(package_type: PackageType, body: bytes = b"") -> bytes:
    """Frame ``body`` as one package of ``package_type``.

    Raises ``ValueError`` for a body longer than the 24-bit length field holds.
    """
    length = len(body)
    if length > MAX_BODY_LENGTH:
        raise ValueError(
            f"package body of {length} bytes exceeds the protocol maximum of {MAX_BODY_LENGTH}"
        )
    return bytes((package_type, length >> 16, (length >> 8) & 0xFF, length & 0xFF)) + body


class PackageDecoder:
    """Incremental package decoder: feed it chunks, get complete packages.

    The header is checked as soon as its four bytes arrive: an unknown type
    raises :class:`BadPackageType`, a declared length over ``max_body_size``
    raises :class:`PackageTooLarge`, both before any body byte is buffered.
    When whole packages precede the bad header in the same chunk, ``feed``
    returns them first and leaves the header buffered; the next call (``feed(b"")``
    will do) raises. After an error the decoder is unusable (the connection must close).
    """

    __slots__ = ("_buffer", "_failed", "blocked", "max_body_size")

    def __init__(self, max_body_size: int = DEFAULT_MAX_PACKET_SIZE) -> None:
        if not 0 <= max_body_size <= MAX_BODY_LENGTH:
            raise ValueError(f"max_body_size must be within 0..{MAX_BODY_LENGTH}")
        self.max_body_size = max_body_size
        self._buffer = bytearray()
        self._failed = False
        self.blocked = False
        """True when the last feed stopped at a bad header behind good packages:
        the next feed (even of no bytes) raises it."""

    @property
    def buffered(self) -> int:
        """How many bytes are held waiting for the rest of a package."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Package]:
        """Add ``data`` to the stream and return every package it completes."""
        packages = []
        for ptype, body in self.feed_frames(data):
            # Built without the frozen dataclass __init__ (its setattr per field is
            # slower than the framing): an ordinary, equal, still frozen Package.
            package = _new(Package)
            _set_type(package, _TYPES[ptype])
            _set_body(package, body)
            packages.append(package)
        return packages

    def feed_frames(self, data: bytes) -> list[tuple[int, bytes]]:
        """:meth:`feed` as ``(type, body)`` pairs, the type a plain int (1..5).

        The hot path: whole packages are sliced straight out of ``data``; only an
        incomplete tail is copied into the buffer, and a buffered package is joined
        once, when its last byte arrives.
        """
        if self._failed:
            raise RuntimeError("PackageDecoder used after a protocol error")
        if type(data) is not bytes:
            data = bytes(data)  # bodies are sliced out of it: they must be bytes
        buf = self._buffer
        if buf:
            buf += data
            end = len(buf)
            if end < HEADER_SIZE:
                return []
            ptype = buf[0]
            length = (buf[1] << 16) | (buf[2] << 8) | buf[3]
            if not 1 <= ptype <= 5 or length > self.max_body_size:
                self._fail()
                if not 1 <= ptype <= 5:
                    raise BadPackageType(ptype)
                raise PackageTooLarge(length, self.max_body_size)
            if end - HEADER_SIZE < length:
                return []
            data = bytes(buf)
            buf.clear()
            self.blocked = False
        frames: list[tuple[int, bytes]] = []
        offset = 0
        end = len(data)
        max_body = self.max_body_size
        while end - offset >= HEADER_SIZE:
            ptype = data[offset]
            length = (data[offset + 1] << 16) | (data[offset + 2] << 8) | data[offset + 3]
            if not 1 <= ptype <= 5 or length > max_body:
                if frames:
                    # Hand out the good packages first; the next feed raises.
                    self.blocked = True
                    break
                self._fail()
                if not 1 <= ptype <= 5:
                    raise BadPackageType(ptype)
                raise PackageTooLarge(length, max_body)
            stop = offset + HEADER_SIZE + length
            if stop > end:
                break
            frames.append((ptype, data[offset + HEADER_SIZE : stop]))
            offset = stop
        if offset < end:
            buf += data[offset:] if offset else data
        return frames

    def _fail(self) -> None:
        self._failed = True
        self._buffer.clear()
