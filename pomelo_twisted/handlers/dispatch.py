"""Dispatcher: a request's way from its route to a response body.

``dispatch(route, msg, session)`` always fires with a body, never with a failure:
an invalid route, a server type this process does not serve (without a ``forward``),
a missing handler or method (each 404), a failing filter or handler, each becomes an
error body through :func:`~pomelo_twisted.responses.failure_response`. A local request
runs

    before-filters (in order) -> handler(session, msg) -> after-filters (in order)

where global filters run before the ones added for the request's server type. A
before-filter's failure skips the rest of the chain and the handler; the error body
still goes through the after-filters.

``call(route, msg, session)`` is the same without a Deferred when the body is ready at
once: a local request whose server type has no filter calls its handler directly, so a
plain result costs neither a Deferred nor a coroutine (the frontends' hot path).
Routes are split once each (:meth:`Dispatcher.route_parts`, a bounded cache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..budget import within_deadline
from ..errors import HandlerError, RequestTimeout, RouteNotFound
from ..responses import failure_response
from ..results import call_settled, is_later, settle
from .context import RequestContext, parse_route
from .registry import HandlerRegistry

__all__ = ["AfterFn", "BeforeFn", "Dispatcher", "HandlerTimeout"]

log = Logger()

ROUTE_CACHE_SIZE = 4096
"""How many distinct parsed routes a dispatcher keeps (routes past it are parsed each time)."""

BeforeFn = Callable[[RequestContext], object]
AfterFn = Callable[[RequestContext, object], object]
Forward = Callable[[RequestContext], object]
ErrorHandler = Callable[[RequestContext, Failure], object]
Parts = tuple[str, str, str]


class HandlerTimeout(RequestTimeout):
    """A handler did not finish within ``context.timeout`` seconds (answered 504
    ``"request timed out"``, like every timeout)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout


def _filter_hook(flt: object, hook: str, interface: str, signature: str) -> Any:
    """An object's ``hook`` method (``before`` of an ``IBeforeFilter``, ``after`` of an
    ``IAfterFilter``), or the object itself when it is a plain callable."""
    method = getattr(flt, hook, None)
    if callable(method):
        return method
    if callable(flt):
        return flt
    raise TypeError(f"{flt!r} is neither an {interface} nor a callable{signature}")


def not_found(route: str) -> dict[str, Any]:
    """The body answering a route no server type of the cluster serves (404); the route
    is the client's own text, nothing of the cluster's."""
    return RouteNotFound(f"no route {route!r}").response()


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
        self._before.setdefault(server_type, []).append(
            _filter_hook(flt, "before", "IBeforeFilter", "(context)")
        )
        self._filtered.add(server_type)

    def add_after(self, flt: object, server_type: str | None = None) -> None:
        """Add an after-filter: an ``IAfterFilter`` or a callable ``(context, response)``
        returning the response to pass on (None: unchanged)."""
        self._after.setdefault(server_type, []).append(
            _filter_hook(flt, "after", "IAfterFilter", "(context, response)")
        )
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

    def route_parts(self, route: str) -> Parts | None:
        """``route`` split in (server type, handler, method), or None when it is not a
        route; split once, then kept (up to ``ROUTE_CACHE_SIZE`` routes)."""
        parts = self._routes.get(route)
        if parts is None:
            parts = parse_route(route)
            if parts is not None and len(self._routes) < ROUTE_CACHE_SIZE:
                self._routes[route] = parts
        return parts

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
        parts = self.route_parts(route)
        if parts is None:
            log.debug("invalid route {route!r}", route=route)
            return not_found(route)
        return self.call_parsed(route, parts, msg, session, notify)

    def call_parsed(
        self, route: str, parts: Parts, msg: object, session: object, notify: bool = False
    ) -> Any:
        """:meth:`call` of a route already split by :meth:`route_parts`."""
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
                    return self.failed(self._context(route, parts, msg, session, notify), failure)
                if not is_later(result):
                    return {} if result is None else result
                return self._later(result, self._context(route, parts, msg, session, notify))
            return self.dispatch_local(self._context(route, parts, msg, session, notify))
        if self.forward is None:
            log.debug("no server type serves {route!r} here", route=route)
            return not_found(route)
        context = self._context(route, parts, msg, session, notify)
        return self._later(call_settled(self.forward, context), context)

    def _later(self, result: object, context: RequestContext) -> Any:
        """The body of a handler (or forward) that did not return one at once: a plain
        value, a Deferred, a coroutine or a Failure."""
        if isinstance(result, Failure):
            return self.failed(context, result)
        result = settle(result)
        if not isinstance(result, Deferred):
            return {} if result is None else result
        result.addCallbacks(_normalise, self._failed_later, errbackArgs=(context,))
        result.addErrback(self._bug, context)
        return result

    def _context(
        self, route: str, parts: Parts, msg: object, session: object, notify: bool
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

    def failed(self, context: RequestContext, failure: Failure) -> Any:
        """The body answering ``failure`` of the request ``context`` (or a Deferred of
        it, when the error handler decides it): :func:`failure_response` unless the
        error handler gives another."""
        if self.error_handler is None:
            return failure_response(failure, context.route)
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
                done = call_settled(before, context)
                if isinstance(done, Deferred):
                    await done
            method = self.registry.lookup(context.server_type, context.handler, context.method)
            if context.timeout is None:
                handled = call_settled(method, context.session, context.msg)
            else:  # the RPCs the handler makes are cut to its timeout (pomelo_twisted.budget)
                deadline = self.clock.seconds() + context.timeout
                handled = within_deadline(
                    deadline, call_settled, method, context.session, context.msg
                )
            if isinstance(handled, Deferred):
                if context.timeout is not None:
                    handled = self._limit(handled, context)
                handled = await handled
            response = _normalise(handled)
        except Exception:
            response = await self._error(context, Failure())
        for after in self.after_filters(context.server_type):
            try:
                changed = call_settled(after, context, response)
                if isinstance(changed, Deferred):
                    changed = await changed
            except Exception:
                log.failure(
                    "after-filter of {route} failed; response unchanged",
                    route=context.route,
                    level=LogLevel.error,
                )
            else:
                if changed is not None:
                    response = changed
        return response

    async def _error(self, context: RequestContext, failure: Failure) -> Any:
        if self.error_handler is not None:
            try:
                body = call_settled(self.error_handler, context, failure)
                if isinstance(body, Deferred):
                    body = await body
            except Exception:
                log.failure(
                    "error handler failed on {route}", route=context.route, level=LogLevel.error
                )
            else:
                if body is not None:
                    return body
        return failure_response(failure, context.route)

    def _limit(self, handled: Deferred[Any], context: RequestContext) -> Deferred[Any]:
        """``handled``, failing with ``HandlerTimeout`` after ``context.timeout`` seconds:
        the handler's Deferred is cancelled then; a failure other than the cancellation
        it reports instead is logged once."""
        timeout = context.timeout
        assert timeout is not None

        def timed_out(result: object, _: float) -> Failure:
            if isinstance(result, Failure) and not result.check(CancelledError, HandlerError):
                log.failure(
                    "{route} failed after its timeout",
                    result,
                    route=context.route,
                    level=LogLevel.error,
                )
            log.info("{route} timed out after {timeout}s", route=context.route, timeout=timeout)
            return Failure(HandlerTimeout(timeout))

        return handled.addTimeout(timeout, self.clock, onTimeoutCancel=timed_out)

    def _bug(self, failure: Failure, context: RequestContext) -> dict[str, Any]:
        return failure_response(failure, context.route)


def _normalise(result: object) -> object:
    return {} if result is None else result
