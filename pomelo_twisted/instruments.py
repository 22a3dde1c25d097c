"""Where metrics, tracing and request-scoped logs plug in: two narrow hooks.

Observability is optional and must cost nothing when it is off, so the framework calls
out at exactly two kinds of places, each through an interface an implementation
declares with ``@implementer`` (:mod:`pomelo_twisted.metrics`, :mod:`pomelo_twisted.tracing`,
:mod:`pomelo_twisted.logs` give theirs):

- :class:`IRequestHooks`, around each client request and notify a frontend handles
  (:class:`ObservedHandler` wraps the frontend's connection handler; without hooks it
  is not installed at all);
- :class:`IRpcHooks`, around each server-to-server call: as the caller sends it and as
  the callee serves it (the RPC transports and :class:`~.rpc.remotes.CallRunner` call
  them when the transport's ``hooks`` attribute is set; it is None by default).

A hook's ``*_started`` gets the current call context (:mod:`pomelo_twisted.callcontext`)
and returns the context to go on with (the same, a copy with items added, e.g. a
``traceparent`` naming its span) and an *end* callable, or None for no end. The end is
called exactly once, with None when the request or call succeeded or with what it failed
with (a :class:`~twisted.python.failure.Failure`, or for a request the error body the
client gets, see :data:`RequestEnd`). Hooks must not raise; one that does is logged and
skipped for that request, and the request goes on.

An :class:`Instruments` holds a server's hooks (``app.instruments``): adding one chains
it after those added before (:class:`RequestHookChain`, :class:`RpcHookChain`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import CoroutineType
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .callcontext import CALL_CONTEXT, CallContext
from .handlerwrapper import HandlerWrapper
from .interfaces import (
    CallEnd,
    IAgent,
    IConnectionHandler,
    IHandlerHooks,
    IHookedTransport,
    IRequestHooks,
    IRpcHooks,
    RequestEnd,
)
from .results import settle

__all__ = [
    "HandlerHookChain",
    "Instruments",
    "ObservedHandler",
    "RequestHookChain",
    "RpcHookChain",
    "end_call",
    "end_request",
    "ended",
    "start_call",
    "start_serve",
]

log = Logger()


def _failed_hook(what: str) -> None:
    log.failure("a {what} hook failed; skipped for this call", what=what)


def end_call(result: Any, end: CallEnd) -> Any:
    """``result`` as it is, after ``end`` saw it (a Deferred callback): an RPC's
    outcome for its hooks."""
    try:
        end(result if isinstance(result, Failure) else None)
    except Exception:
        _failed_hook("call end")
    return result


def start_call(
    hooks: IRpcHooks, server_id: str, service: str, method: str, context: CallContext | None
) -> tuple[CallContext | None, CallEnd | None]:
    """``hooks.call_started(...)``; a hook that raises is logged and skipped."""
    try:
        return hooks.call_started(server_id, service, method, context)
    except Exception:
        _failed_hook("call start")
        return context, None


def start_serve(
    hooks: IRpcHooks, peer: str, service: str, method: str, context: CallContext | None
) -> tuple[CallContext | None, CallEnd | None]:
    """``hooks.serve_started(...)``; a hook that raises is logged and skipped."""
    try:
        return hooks.serve_started(peer, service, method, context)
    except Exception:
        _failed_hook("serve start")
        return context, None


def ended(d: Deferred[Any], end: CallEnd | None) -> Deferred[Any]:
    """``d``, whose outcome ``end`` sees first (when there is one)."""
    return d if end is None else d.addBoth(end_call, end)


H = TypeVar("H")
End = Callable[[Any], None]


def _chained(
    hooks: list[H],
    start: Callable[[H, CallContext | None], tuple[CallContext | None, End | None]],
    context: CallContext | None,
    what: str,
) -> tuple[CallContext | None, End | None]:
    """``start`` each hook in order, each with the context the one before returned; the
    last context, and one end calling theirs innermost first (a hook that raises is
    logged and skipped)."""
    ends: list[End] = []
    for hook in hooks:
        try:
            context, end = start(hook, context)
        except Exception:
            _failed_hook(f"{what} start")
            continue
        if end is not None:
            ends.append(end)
    if len(ends) <= 1:
        return context, ends[0] if ends else None

    def ended(outcome: object) -> None:
        for end in reversed(ends):  # the innermost first
            try:
                end(outcome)
            except Exception:
                _failed_hook(f"{what} end")

    return context, ended


@implementer(IRequestHooks)
class RequestHookChain:
    """Request hooks called in order; each gets the context the one before returned."""

    def __init__(self, hooks: list[IRequestHooks]) -> None:
        self.hooks = hooks

    def request_started(
        self, agent: IAgent, route: str, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        return _chained(
            self.hooks,
            lambda hook, ctx: hook.request_started(agent, route, notify, ctx),
            context,
            "request",
        )


@implementer(IRpcHooks)
class RpcHookChain:
    """RPC hooks called in order; each gets the context the one before returned."""

    def __init__(self, hooks: list[IRpcHooks]) -> None:
        self.hooks = hooks

    def call_started(
        self, server_id: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        return _chained(
            self.hooks,
            lambda hook, ctx: hook.call_started(server_id, service, method, ctx),
            context,
            "call",
        )

    def serve_started(
        self, peer: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        return _chained(
            self.hooks,
            lambda hook, ctx: hook.serve_started(peer, service, method, ctx),
            context,
            "serve",
        )


@implementer(IHandlerHooks)
class HandlerHookChain:
    """Handler hooks called in order; each gets the context the one before returned."""

    def __init__(self, hooks: list[IHandlerHooks]) -> None:
        self.hooks = hooks

    def handler_started(
        self, route: str, session: object, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        return _chained(
            self.hooks,
            lambda hook, ctx: hook.handler_started(route, session, notify, ctx),
            context,
            "handler",
        )


class Instruments:
    """One server's hooks: ``requests`` (None when no request hook was added), ``rpc``
    (set as the ``hooks`` of its transport when that calls hooks) and ``handlers``
    (around the handlers of forwarded requests, a backend's)."""

    def __init__(self, transport: object) -> None:
        self._transport = transport
        self._request_hooks: list[IRequestHooks] = []
        self._rpc_hooks: list[IRpcHooks] = []
        self._handler_hooks: list[IHandlerHooks] = []
        self.requests: IRequestHooks | None = None
        self.rpc: IRpcHooks | None = None
        self.handlers: IHandlerHooks | None = None

    def add_handler_hooks(self, hooks: IHandlerHooks) -> None:
        """Call ``hooks`` around the handler of every forwarded request (add before start)."""
        self.handlers = _added(self._handler_hooks, hooks, HandlerHookChain)

    def add_request_hooks(self, hooks: IRequestHooks) -> None:
        """Call ``hooks`` around every client request (frontends; add before start)."""
        self.requests = _added(self._request_hooks, hooks, RequestHookChain)

    def add_rpc_hooks(self, hooks: IRpcHooks) -> None:
        """Call ``hooks`` around every call this server makes and serves."""
        self.rpc = _added(self._rpc_hooks, hooks, RpcHookChain)
        if IHookedTransport.providedBy(self._transport):
            self._transport.hooks = self.rpc


def _added(hooks: list[H], new: H, chain: Callable[[list[H]], H]) -> H:
    """``new`` appended to ``hooks``; what to call: the one hook, or a chain of them all."""
    hooks.append(new)
    return hooks[0] if len(hooks) == 1 else chain(list(hooks))


class ObservedHandler(HandlerWrapper):
    """A frontend's connection handler with :class:`IRequestHooks` around its requests
    and notifies: each runs within the context the hooks gave, and its end sees the
    body answered (or the failure)."""

    __slots__ = ("hooks",)

    def __init__(self, inner: IConnectionHandler, hooks: IRequestHooks) -> None:
        super().__init__(inner)
        self.hooks = hooks

    def request(self, agent: IAgent, route: str, body: bytes) -> object:
        return self._observed(agent, route, body, False)

    def notify(self, agent: IAgent, route: str, body: bytes) -> object:
        return self._observed(agent, route, body, True)

    def _observed(self, agent: IAgent, route: str, body: bytes, notify: bool) -> object:
        current = CALL_CONTEXT.get()
        try:
            context, end = self.hooks.request_started(agent, route, notify, current)
        except Exception:
            _failed_hook("request start")
            context, end = current, None
        handle = self.inner.notify if notify else self.inner.request
        # The hot path (metrics alone): the context is unchanged, nothing to set.
        token = None if context is current else CALL_CONTEXT.set(context)
        try:
            result = handle(agent, route, body)
            if isinstance(result, _SETTLED):  # a coroutine starts here, within the context
                result = settle(result)
        except Exception:
            if end is None:
                raise
            failure = Failure()
            end_request(failure, end)
            failure.raiseException()
        finally:
            if token is not None:
                CALL_CONTEXT.reset(token)
        if end is None:
            return result
        if isinstance(result, Deferred):
            return result.addBoth(end_request, end)
        return end_request(result, end)


#: Results that ``settle`` turns into a Deferred (a Deferred stays as it is).
_SETTLED = (CoroutineType, Failure)


def end_request(outcome: object, end: RequestEnd, what: str = "request") -> object:
    """``outcome`` as it is, after ``end`` saw it (also a Deferred callback): the end of a
    request or of a handler; an end that raises is logged and skipped."""
    try:
        end(outcome)
    except Exception:
        _failed_hook(f"{what} end")
    return outcome
