"""The cost of a typed route's check at the frontend, against the decode it replaces.

``python bench/typed_validation.py [--n N]`` prints, for the chat send body
``{"rid": ..., "content": ...}`` of a JSON and a msgpack client, the time per body of:

- ``decode``: the connection's serializer decoding the body (what checking in Python
  would first need: orjson / msgpack to plain objects);
- ``check``: :class:`pomelo_twisted.typed.RequestValidator` (msgspec's compiled decoder
  of the request Struct over the same bytes);
- ``untyped``: what an untyped route pays, the validator lookup that finds nothing.

Timings are only measured here, never asserted in tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make this checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import timeit
from functools import partial

import msgspec

from pomelo_twisted.serializers import get_serializer
from pomelo_twisted.typed import RequestValidator


class SendRequest(msgspec.Struct):
    rid: str
    content: str


BODY = {"rid": "room-17", "content": "hello there, how is the weather in the lobby today?"}
ROUTE = "chat.chatHandler.send"


def per_call(fn: object, n: int) -> float:
    """Best of 5 runs of ``n`` calls, in nanoseconds per call."""
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(5, n)) / n * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=200_000, help="calls per run")
    n = parser.parse_args().n
    validator = RequestValidator(ROUTE, SendRequest)
    validators = {ROUTE: validator}
    print(f"{'serializer':<10} {'decode ns':>10} {'check ns':>10} {'untyped ns':>11}")
    for name in ("json", "msgpack"):
        serializer = get_serializer(name)
        body = serializer.encode(BODY)
        decode = per_call(partial(serializer.decode, body), n)
        check = per_call(partial(validator.check, body, name), n)
        untyped = per_call(partial(validators.get, "chat.chatHandler.echo"), n)
        print(f"{name:<10} {decode:>10.0f} {check:>10.0f} {untyped:>11.0f}")


if __name__ == "__main__":
    main()
