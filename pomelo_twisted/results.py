"""What a game's code may return: a value, a Deferred or a coroutine, one rule for all.

Handlers, remotes, filters, hooks and session callbacks may answer at once (a plain
value), later (a ``Deferred``) or as an ``async def``. :func:`settle` brings the three to
two: a plain value stays plain (the hot paths answer it without a Deferred), anything
that comes later is a ``Deferred``. A ``Failure`` returned as a value counts as a
failure. :func:`call_settled` also turns an exception raised by the call into a failed
``Deferred``, like ``maybeDeferred`` but without wrapping a plain value.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CoroutineType
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure

__all__ = ["call_settled", "is_later", "settle"]

_LATER = (Deferred, CoroutineType, Failure)


def is_later(result: object) -> bool:
    """Whether ``result`` is not a plain value (a Deferred, coroutine or Failure)."""
    return isinstance(result, _LATER)


def settle(result: object) -> Any:
    """``result`` as it is when plain or a Deferred; a coroutine becomes a Deferred, a
    ``Failure`` a failed Deferred."""
    if isinstance(result, CoroutineType):
        return Deferred.fromCoroutine(result)
    if isinstance(result, Failure):
        return fail(result)
    return result


def call_settled(fn: Callable[..., object], *args: object) -> Any:
    """``settle(fn(*args))``; an exception raised by ``fn`` becomes a failed Deferred."""
    try:
        result = fn(*args)
    except Exception:
        return fail(Failure())
    return settle(result)
