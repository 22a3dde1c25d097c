"""Fuzz target: the RPC payload decoder (``rpc/payload.py``) and the batches it carries.

Contract: ``unpack_plain`` raises only ``ValueError``; what it returns packs again, and
packing is stable from then on; a list re-framed with ``pack_array`` (in runs cut by
``chunks``) unpacks to the same items; a :class:`CallRunner` given the bytes as a batch
of calls never raises (a malformed batch or call is refused, a well-formed one answered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .harness import fuzz_main, instrumented

with instrumented(__name__):
    from twisted.internet.task import Clock
    from twisted.logger import Logger, LogPublisher

    from pomelo_twisted.rpc import remotes
    from pomelo_twisted.rpc.payload import chunks, pack_array, pack_plain, unpack_plain
    from pomelo_twisted.rpc.remotes import CallRunner

__all__ = ["fuzz_one_input"]


def echo(service: str, method: str, args: Sequence[Any]) -> object:
    """A dispatcher that answers every call with its arguments."""
    return args


def fuzz_one_input(data: bytes) -> None:
    """Check the payload decoder's contract on ``data`` (msgpack from a peer)."""
    answers: list[bytes] = []
    runner = CallRunner(
        lambda target: echo if target == "s" else None, answers.append, "p", 4096, Clock()
    )
    runner.run(data)
    for answer in answers:
        assert isinstance(unpack_plain(answer), list)
    try:
        value = unpack_plain(data)
    except ValueError:
        return
    packed = pack_plain(value)
    assert pack_plain(unpack_plain(packed)) == packed
    if isinstance(value, list):
        items = [pack_plain(item) for item in value]
        limit = 1 + len(data) // 3
        runs = chunks(items, limit)
        assert [item for run in runs for item in run] == items
        assert all(len(run) == 1 or sum(map(len, run)) <= limit for run in runs)
        again = [item for run in runs for item in unpack_plain(pack_array(run))]
        assert [pack_plain(item) for item in again] == [pack_plain(item) for item in value]


if __name__ == "__main__":
    # The runner logs each malformed call: the fuzzer would buffer millions of lines.
    remotes.log = Logger(namespace="fuzz.payload", observer=LogPublisher())
    fuzz_main(fuzz_one_input)
