"""Fuzz target: the package decoder (``protocol/packet.py``), fed in random chunks.

Contract: only :class:`BadPackageType` and :class:`PackageTooLarge` escape ``feed``; the
packages and the error do not depend on how the stream is chunked; every package's body
is within the limit; re-encoding the packages gives back a prefix of the stream, and
without an error that prefix plus what is buffered is the whole stream.
"""

from __future__ import annotations

from .harness import fuzz_main, instrumented, split

with instrumented(__name__):
    from pomelo_twisted.protocol.errors import BadPackageType, PackageTooLarge
    from pomelo_twisted.protocol.packet import (
        DEFAULT_MAX_PACKET_SIZE,
        Package,
        PackageDecoder,
        encode_package,
    )

__all__ = ["fuzz_one_input"]

LIMITS = (0, 1, 16, 300, DEFAULT_MAX_PACKET_SIZE)

Outcome = tuple[list[Package], tuple[type, str] | None, int]


def decode(pieces: list[bytes], limit: int) -> Outcome:
    """Packages, error (class and reason) and buffered count after feeding ``pieces``."""
    decoder = PackageDecoder(limit)
    packages: list[Package] = []
    try:
        for piece in pieces:
            packages += decoder.feed(piece)
            while decoder.blocked:  # a bad header behind good packages: raises now
                packages += decoder.feed(b"")
    except (BadPackageType, PackageTooLarge) as exc:
        return packages, (type(exc), exc.reason), 0
    return packages, None, decoder.buffered


def fuzz_one_input(data: bytes) -> None:
    """Check the package decoder's contract on ``data`` (limit byte, chunk byte, stream)."""
    if len(data) < 2:
        return
    limit = LIMITS[data[0] % len(LIMITS)]
    pieces = split(data[1:])
    stream = b"".join(pieces)
    chunked = decode(pieces, limit)
    whole = decode([stream], limit)
    assert chunked == whole, (chunked, whole)
    packages, error, buffered = chunked
    assert all(len(p.body) <= limit for p in packages)
    encoded = b"".join(encode_package(p.type, p.body) for p in packages)
    assert stream.startswith(encoded)
    if error is None:
        assert len(encoded) + buffered == len(stream)


if __name__ == "__main__":
    fuzz_main(fuzz_one_input)
