"""Dispatcher: a request's way from its route to a response body.

``dispatch(route, msg, session)`` always fires with a body, never with a failure:
an invalid route, a server type this process does not serve (without a ``forward``),
a missing handler or method, a failing filter or handler, each becomes an error body
``{"code": ..., "msg": ...}``. A local request runs

    before-filters (in order) -> handler(session, msg) -> after-filters (in order)

where global filters run before the ones added for the request's server type. A
before-filter's failure skips the rest of the chain and the handler; the error body
still goes through the after-filters.

``call(route, msg, session)`` is the same without a Deferred when the body is ready at
once: a local request whose server type has no filter calls its handler directly, so a
plain result costs neither a Deferred nor a coroutine (the frontends' hot path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import CoroutineType
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

ROUTE_CACHE_SIZE = 4096
"""How many distinct parsed routes a dispatcher keeps (routes past it are parsed each time)."""

# What a handler may return instead of a body.
_NOT_A_BODY = (Deferred, CoroutineType, Failure)

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
        # The keys of both chains: server types (None: all) whose requests go through
        # the filter machinery; the others are called directly.
        self._filtered: set[str | None] = set()
        # Parsed routes, bounded: clients choose the routes they send.
        self._routes: dict[str, tuple[str, str, str]] = {}
        for flt in before:
            self.add_before(flt)
        for flt in after:
            self.add_after(flt)

    # -- filters --------------------------------------------------------------

    def add_before(self, flt: object, server_type: str | None = None) -> None:
        """Add a before-filter: an ``IBeforeFilter`` or a callable ``(context)``, global
        (``server_type=None``) or for one server type."""
        self._before.setdefault(server_type, []).append(_as_before(flt))
        self._filtered.add(server_type)

    def add_after(self, flt: object, server_type: str | None = None) -> None:
        """Add an after-filter: an ``IAfterFilter`` or a callable ``(context, response)``
        returning the response to pass on (None: unchanged)."""
        self._after.setdefault(server_type, []).append(_as_after(flt))
        self._filtered.add(server_type)

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
        result = self.call(route, msg, session, notify)
        return result if isinstance(result, Deferred) else succeed(result)

    def call(self, route: str, msg: object, session: object, notify: bool = False) -> Any:
        """:meth:`dispatch` without the Deferred when the body is ready at once.

        Returns the body itself, or a Deferred that always fires with it. A local
        request whose server type has no filter calls its handler directly: a plain
        result is the body, with neither Deferred nor coroutine in between (the
        frontends' hot path).
        """
        parts = self._routes.get(route)
        if parts is None:
            parts = parse_route(route)
            if parts is None:
                return error_response(500, f"invalid route {route!r}")
            if len(self._routes) < ROUTE_CACHE_SIZE:
                self._routes[route] = parts
        server_type = parts[0]
        if server_type in self.server_types:
            filtered = self._filtered
            if not filtered or (None not in filtered and server_type not in filtered):
                # A local request without filters (so without a timeout either): what
                # _run does, minus the coroutine; a context only when needed.
                try:
                    result = self.registry.lookup(server_type, parts[1], parts[2])(session, msg)
                except Exception:
                    failure = Failure()
                    return self._failed(self._context(route, parts, msg, session, notify), failure)
                if not isinstance(result, _NOT_A_BODY):
                    return {} if result is None else result
                return self._later(result, self._context(route, parts, msg, session, notify))
        context = RequestContext(
            route=route,
            server_type=server_type,
            handler=parts[1],
            method=parts[2],
            msg=msg,
            session=session,
            started=self.clock.seconds(),
            notify=notify,
        )
        if server_type in self.server_types:
            return self.dispatch_local(context)
        if self.forward is None:
            return error_response(500, f"no server type {server_type!r}")
        d = maybeDeferred(self.forward, context)
        d.addCallback(_normalise)
        d.addErrback(lambda failure: Deferred.fromCoroutine(self._error(context, failure)))
        d.addErrback(self._bug, context)
        return d

    def _later(
        self,
        result: Deferred[Any] | CoroutineType[Any, Any, Any] | Failure,
        context: RequestContext,
    ) -> Any:
        """The body of a handler that did not return one: a Deferred, a coroutine or a
        Failure."""
        if isinstance(result, Failure):
            return self._failed(context, result)
        d: Deferred[Any] = (
            result if isinstance(result, Deferred) else Deferred.fromCoroutine(result)
        )
        d.addCallbacks(_normalise, self._failed_later, errbackArgs=(context,))
        d.addErrback(self._bug, context)
        return d

    def _context(
        self, route: str, parts: tuple[str, str, str], msg: object, session: object, notify: bool
    ) -> RequestContext:
        return RequestContext(
            route=route,
            server_type=parts[0],
            handler=parts[1],
            method=parts[2],
            msg=msg,
            session=session,
            started=self.clock.seconds(),
            notify=notify,
        )

    def _failed(self, context: RequestContext, failure: Failure) -> Any:
        """The body answering ``failure`` (or a Deferred of it, when an error handler
        decides it)."""
        if self.error_handler is None:
            try:
                return error_body(context, failure)
            except Exception:
                return self._bug(Failure(), context)
        d = Deferred.fromCoroutine(self._error(context, failure))
        d.addErrback(self._bug, context)
        return d

    def _failed_later(self, failure: Failure, context: RequestContext) -> Any:
        return Deferred.fromCoroutine(self._error(context, failure))

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
