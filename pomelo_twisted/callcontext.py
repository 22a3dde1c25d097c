"""The call context: a few strings that travel with a request across every RPC hop.

A client request handled by a frontend may start a *call context*: a small dict of
``str`` to ``str`` (a request id ``rid`` for the logs, W3C ``traceparent`` /
``tracestate`` for tracing, :mod:`pomelo_twisted.instruments`). While the frontend's
code for that request runs — and the coroutines it starts, across their ``await``\\ s —
it is the *current* call context; every RPC made then carries it as the 7th item of the
call (``[id, target, service, method, args, budget, context]``, :mod:`.rpc.payload`),
and the callee runs the remote within it, so the calls *it* makes carry it on.

Like the deadline of :mod:`pomelo_twisted.budget` it lives in a
:class:`contextvars.ContextVar`: it belongs to the code running for one request, not to
the process. Without one (the default) a call carries no 7th item and costs nothing.

What arrives from a peer is checked (:func:`checked_context`): at most
:data:`MAX_ITEMS` items, keys of at most :data:`MAX_KEY` and values of at most
:data:`MAX_VALUE` characters; anything else is refused with the call.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = [
    "CALL_CONTEXT",
    "MAX_ITEMS",
    "MAX_KEY",
    "MAX_VALUE",
    "CallContext",
    "checked_context",
    "current_context",
    "within_context",
]

T = TypeVar("T")

CallContext = dict[str, str]
"""A call context: header-like names to values (``rid``, ``traceparent``, ...)."""

CALL_CONTEXT: ContextVar[CallContext | None] = ContextVar("pomelo_call_context", default=None)
"""The current call context, None outside a request that started one; the transports'
hot paths read it directly."""

#: The most items a call context from a peer may have.
MAX_ITEMS = 16
#: The longest key of a call context from a peer, in characters.
MAX_KEY = 64
#: The longest value of a call context from a peer, in characters.
MAX_VALUE = 512


def current_context() -> CallContext | None:
    """The call context of the code running now, or None."""
    return CALL_CONTEXT.get()


def within_context(context: CallContext | None, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with ``context`` as the current call context (None: without one);
    what ``fn`` starts, coroutines included, keeps it."""
    token = CALL_CONTEXT.set(context)
    try:
        return fn(*args)
    finally:
        CALL_CONTEXT.reset(token)


def checked_context(value: object) -> CallContext | None:
    """``value`` when it is a valid call context from a peer (a dict of at most
    :data:`MAX_ITEMS` ``str`` keys and values within the size limits); ``ValueError``
    naming what is wrong otherwise. None (no context) is valid."""
    if value is None:
        return None
    if type(value) is not dict:
        raise ValueError(f"the call context must be a map, not {type(value).__name__}")
    if len(value) > MAX_ITEMS:
        raise ValueError(f"the call context has {len(value)} items, at most {MAX_ITEMS}")
    for key, item in value.items():
        if type(key) is not str or type(item) is not str:
            raise ValueError("the call context maps strings to strings")
        if len(key) > MAX_KEY or len(item) > MAX_VALUE:
            raise ValueError(
                f"call context item {key[:MAX_KEY]!r} is too long "
                f"(keys at most {MAX_KEY}, values at most {MAX_VALUE} characters)"
            )
    return value
