"""What every target shares: chunking a stream, and running under atheris.

Importing this module never imports atheris; :func:`fuzz_main` does, so the targets'
checks run in the test suite without it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

__all__ = ["fuzz_main", "instrumented", "split"]


def split(data: bytes) -> list[bytes]:
    """``data[1:]`` cut into chunks whose sizes ``data[0]`` picks.

    0 keeps the stream whole; otherwise the sizes alternate between ``(k & 15) + 1``
    and ``(k >> 4) + 1``, so the fuzzer explores one-byte feeding, odd cuts and
    headers split anywhere. An empty ``data`` is no chunk at all.
    """
    if not data:
        return []
    k, stream = data[0], data[1:]
    if k == 0:
        return [stream]
    sizes = ((k & 0x0F) + 1, (k >> 4) + 1)
    pieces = []
    pos = turn = 0
    while pos < len(stream):
        size = sizes[turn]
        pieces.append(stream[pos : pos + size])
        pos += size
        turn ^= 1
    return pieces


@contextlib.contextmanager
def instrumented(module_name: str) -> Iterator[None]:
    """Instrument the project's modules imported inside, when a target runs as a fuzzer.

    Coverage guidance needs atheris' instrumentation of ``pomelo_twisted``; imported by
    tests (``module_name`` is not ``"__main__"``) this does nothing.
    """
    if module_name != "__main__":
        yield
        return
    import atheris

    with atheris.instrument_imports(include=["pomelo_twisted"]):
        yield


def fuzz_main(target: Callable[[bytes], None]) -> None:
    """Fuzz ``target`` with libFuzzer's command line (``sys.argv``)."""
    import atheris

    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
