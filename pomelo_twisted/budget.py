"""Call budgets: the deadline of a request travels with every RPC hop.

A call carries its *budget*, the seconds its caller still waits for it (its timeout,
already cut to the caller's own deadline), never a wall-clock time: clocks of two
machines need not agree. The callee's deadline is its own clock's time when the call
arrives plus the budget; while the remote runs (and in a coroutine it started, across
its ``await``\\ s) that deadline is the *current deadline*, and every call it makes
is cut to what is left of it. A call whose current deadline has passed is not sent
(``RpcTimeout`` at once, counted in ``RpcCounters.expired``); a callee given a budget
that is already spent does not run the remote (answered as a timeout, counted in
``CallRunner.expired``).

The current deadline lives in a :class:`contextvars.ContextVar`: it belongs to the code
running for one call, like a thread-local, not to the process (and it is in the time of
the transport's clock, which both sides of a process share). Twisted runs a coroutine
(``async def``, ``inlineCallbacks``) in a copy of the context it was started in, so a
remote's ``await``\\ s keep it; a callback added to a plain ``Deferred`` runs in the
context of whatever fires it, where there is usually no current deadline (its calls use
their own timeouts).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from twisted.internet.interfaces import IReactorTime

__all__ = ["DEADLINE", "budget_of", "current_deadline", "remaining", "within_deadline"]

T = TypeVar("T")

DEADLINE: ContextVar[float | None] = ContextVar("pomelo_rpc_deadline", default=None)
"""The current deadline (a time of the transport's clock), None outside a served call;
read it with :func:`current_deadline`. The transports' hot paths use it directly."""

_deadline = DEADLINE


def current_deadline() -> float | None:
    """The clock time by which the call being served must be answered; None outside a
    call that carried a budget."""
    return _deadline.get()


def remaining(clock: IReactorTime) -> float | None:
    """Seconds left until the current deadline on ``clock`` (0 or less once passed);
    None when there is none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - clock.seconds()


def budget_of(timeout: float, clock: IReactorTime) -> float:
    """The seconds a call made now with ``timeout`` may take: ``timeout`` cut to what is
    left of the current deadline on ``clock``, 0 or less when that has passed (the
    transports' hot path: one context variable read when there is no deadline)."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - clock.seconds()
    return left if left < timeout else timeout


def within_deadline(deadline: float, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with ``deadline`` (a time of the transport's clock) as the current
    deadline, or the current one if it is earlier: what ``fn`` starts, coroutines
    included, cuts its calls to it."""
    current = _deadline.get()
    token = _deadline.set(deadline if current is None or deadline < current else current)
    try:
        return fn(*args)
    finally:
        _deadline.reset(token)
