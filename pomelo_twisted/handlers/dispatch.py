"""Dispatcher: a request's way from its route to a response body.

``dispatch(route, msg, session)`` always fires with a body, never with a failure:
an invalid route, a server type this process does not serve (without a ``forward``),
a missing handler or method, a failing filter or handler, each becomes an error body
``{"code": ..., "msg": ...}``. A local request runs

    before-filters (in order) -> handler(session, msg) -> after-filters (in order)

where global filters run before the ones added for the request's server type. A
before-filter's failure skips the rest of the chain and the handler; the error body
still goes through the after-filters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..errors import INTERNAL_ERROR, HandlerError, error_response
from .context import RequestContext, parse_route
from .registry import HandlerRegistry

__all__ = ["AfterFn", "BeforeFn", "Dispatcher", "HandlerTimeout", "error_body"]

log = Logger()

BeforeFn = Callable[[RequestContext], object]
AfterFn = Callable[[RequestContext, object], object]
Forward = Callable[[RequestContext], object]
ErrorHandler = Callable[[RequestContext, Failure], object]


class HandlerTimeout(HandlerError):
    """A handler did not finish within ``context.timeout`` seconds (answered with 504)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(504, f"handler timed out after {timeout:g}s")


def _as_before(flt: object) -> BeforeFn:
    """An object's ``before`` method (an ``IBeforeFilter``), or a plain callable."""
    method = getattr(flt, "before", None)
    if callable(method):
        return method
    if callable(flt):
        return flt
    raise TypeError(f"{flt!r} is neither an IBeforeFilter nor a callable(context)")


def _as_after(flt: object) -> AfterFn:
    """An object's ``after`` method (an ``IAfterFilter``), or a plain callable."""
    method = getattr(flt, "after", None)
    if callable(method):
        return method
    if callable(flt):
        return flt
    raise TypeError(f"{flt!r} is neither an IAfterFilter nor a callable(context, response)")


def error_body(context: RequestContext | None, failure: Failure) -> dict[str, Any]:
    """The default response to a failure: ``HandlerError`` gives its code and message;
    a cancellation is answered 500 quietly; anything else is logged with its traceback
    and answered 500."""
    if isinstance(failure.value, HandlerError):
        return failure.value.response()
    route = context.route if context is not None else "?"
    if failure.check(CancelledError):  # the caller gave up (e.g. the client left)
        log.debug("request {route} cancelled", route=route)
        return error_response(500, "request cancelled")
    log.failure("request {route} failed", failure, route=route)
    return error_response(500, INTERNAL_ERROR)


class Dispatcher:
    """Routes requests to local handlers (with filters) or to ``forward``.

    ``server_types`` are the types this process serves; ``forward(context)`` (a body
    or a Deferred of one) answers the others. ``error_handler(context, failure)`` may
    decide the body of a failed request (a body or a Deferred; None, or its own failure,
    falls back to :func:`error_body`). Both are plain attributes, settable later.
    """

    def __init__(
        self,
        server_types: Iterable[str],
        registry: HandlerRegistry,
        clock: IReactorTime,
        *,
        forward: Forward | None = None,
        before: Iterable[object] = (),
        after: Iterable[object] = (),
        error_handler: ErrorHandler | None = None,
    ) -> None:
        self.server_types = frozenset(server_types)
        self.registry = registry
        self.clock = clock
        self.forward = forward
        self.error_handler = error_handler
        self._before: dict[str | None, list[BeforeFn]] = {}
        self._after: dict[str | None, list[AfterFn]] = {}
        for flt in before:
            self.add_before(flt)
        for flt in after:
            self.add_after(flt)

    # -- filters --------------------------------------------------------------

    def add_before(self, flt: object, server_type: str | None = None) -> None:
        """Add a before-filter: an ``IBeforeFilter`` or a callable ``(context)``, global
        (``server_type=None``) or for one server type."""
        self._before.setdefault(server_type, []).append(_as_before(flt))

    def add_after(self, flt: object, server_type: str | None = None) -> None:
        """Add an after-filter: an ``IAfterFilter`` or a callable ``(context, response)``
        returning the response to pass on (None: unchanged)."""
        self._after.setdefault(server_type, []).append(_as_after(flt))

    def add_filter(self, flt: object, server_type: str | None = None) -> None:
        """Add an object as a before-filter and/or an after-filter, as it provides."""
        added = False
        if callable(getattr(flt, "before", None)):
            self.add_before(flt, server_type)
            added = True
        if callable(getattr(flt, "after", None)):
            self.add_after(flt, server_type)
            added = True
        if not added:
            raise TypeError(f"{flt!r} is neither a before- nor an after-filter")

    def before_filters(self, server_type: str) -> list[BeforeFn]:
        """The before chain of ``server_type``: global filters, then the type's."""
        return self._before.get(None, []) + self._before.get(server_type, [])

    def after_filters(self, server_type: str) -> list[AfterFn]:
        """The after chain of ``server_type``: global filters, then the type's."""
        return self._after.get(None, []) + self._after.get(server_type, [])

    # -- dispatch -------------------------------------------------------------

    def dispatch(
        self, route: str, msg: object, session: object, notify: bool = False
    ) -> Deferred[Any]:
        """A Deferred that always fires with the response body of ``route``."""
        parts = parse_route(route)
        if parts is None:
            return succeed(error_response(500, f"invalid route {route!r}"))
        server_type, handler, method = parts
        context = RequestContext(
            route=route,
            server_type=server_type,
            handler=handler,
            method=method,
            msg=msg,
            session=session,
            started=self.clock.seconds(),
            notify=notify,
        )
        if server_type in self.server_types:
            return self.dispatch_local(context)
        if self.forward is None:
            return succeed(error_response(500, f"no server type {server_type!r}"))
        d = maybeDeferred(self.forward, context)
        d.addCallback(_normalise)
        d.addErrback(lambda failure: Deferred.fromCoroutine(self._error(context, failure)))
        d.addErrback(self._bug, context)
        return d

    def dispatch_local(self, context: RequestContext) -> Deferred[Any]:
        """Run filters and the local handler of ``context``; always fires with a body."""
        d = Deferred.fromCoroutine(self._run(context))
        d.addErrback(self._bug, context)
        return d

    async def _run(self, context: RequestContext) -> Any:
        response: Any
        try:
            for before in self.before_filters(context.server_type):
                await maybeDeferred(before, context)
            method = self.registry.lookup(context.server_type, context.handler, context.method)
            handled = maybeDeferred(method, context.session, context.msg)
            if context.timeout is not None:
                handled = self._limit(handled, context)
            response = _normalise(await handled)
        except Exception:
            response = await self._error(context, Failure())
        for after in self.after_filters(context.server_type):
            try:
                changed = await maybeDeferred(after, context, response)
            except Exception:
                log.failure(
                    "after-filter of {route} failed; response unchanged", route=context.route
                )
            else:
                if changed is not None:
                    response = changed
        return response

    async def _error(self, context: RequestContext, failure: Failure) -> Any:
        if self.error_handler is not None:
            try:
                body = await maybeDeferred(self.error_handler, context, failure)
            except Exception:
                log.failure("error handler failed on {route}", route=context.route)
            else:
                if body is not None:
                    return body
        return error_body(context, failure)

    def _limit(self, handled: Deferred[Any], context: RequestContext) -> Deferred[Any]:
        """``handled``, or a ``HandlerTimeout`` after ``context.timeout`` seconds (the
        handler's Deferred is then cancelled and its late outcome ignored)."""
        timeout = context.timeout
        assert timeout is not None
        expired = False

        def cancel(_: Deferred[Any]) -> None:  # the caller gave up: so does the handler
            if timer.active():
                timer.cancel()
            handled.cancel()

        out: Deferred[Any] = Deferred(cancel)

        def expire() -> None:
            nonlocal expired
            expired = True
            out.errback(HandlerTimeout(timeout))
            handled.cancel()

        def done(result: object) -> None:
            if expired:
                if isinstance(result, Failure) and not result.check(CancelledError, HandlerError):
                    log.failure("{route} failed after its timeout", result, route=context.route)
                return
            if timer.active():
                timer.cancel()
            if out.called:
                return
            if isinstance(result, Failure):
                out.errback(result)
            else:
                out.callback(result)

        timer = self.clock.callLater(timeout, expire)
        handled.addBoth(done)
        return out

    def _bug(self, failure: Failure, context: RequestContext) -> dict[str, Any]:
        log.failure("dispatch of {route} failed", failure, route=context.route)
        return error_response(500, INTERNAL_ERROR)


def _normalise(result: object) -> object:
    return {} if result is None else result
