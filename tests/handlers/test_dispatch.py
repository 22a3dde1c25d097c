"""Dispatcher: results, error mapping, routing, forwarding and handler timeouts."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.budget import remaining
from pomelo_twisted.errors import HandlerError, RpcError
from pomelo_twisted.handlers import RequestContext
from pomelo_twisted.handlers.dispatch import ROUTE_CACHE_SIZE

from .helpers import FakeSession, context_for, make_dispatcher

SESSION = FakeSession(1)


class ResultTests(SynchronousTestCase):
    """What a handler returns becomes the body."""

    def test_plain_value(self) -> None:
        """A plain return value is the body, at once."""
        dispatcher, handler, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.echo", {"a": 1}, SESSION)
        self.assertEqual(self.successResultOf(d), {"a": 1})
        self.assertEqual(handler.calls, [("echo", {"a": 1})])

    def test_deferred(self) -> None:
        """A Deferred's result is the body once it fires."""
        dispatcher, _, clock = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.later", {"delay": 2}, SESSION)
        self.assertNoResult(d)
        clock.advance(2)
        self.assertEqual(self.successResultOf(d), {"delay": 2})

    def test_coroutine(self) -> None:
        """An async def handler's return value is the body."""
        dispatcher, _, clock = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.coro", 7, SESSION)
        self.assertNoResult(d)
        clock.advance(1)
        self.assertEqual(self.successResultOf(d), {"async": 7})

    def test_none_is_empty_body(self) -> None:
        """A handler returning None answers {}."""
        dispatcher, _, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.nothing", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {})

    def test_own_code_passes(self) -> None:
        """A handler's own {"code": ...} dict passes unchanged."""
        dispatcher, _, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.own_code", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 200, "msg": "mine"})

    def test_notify_flag(self) -> None:
        """notify=True reaches the context filters see."""
        seen: list[bool] = []
        dispatcher, _, _ = make_dispatcher(before=[lambda ctx: seen.append(ctx.notify)])
        dispatcher.dispatch("connector.entryHandler.echo", 1, SESSION, notify=True)
        dispatcher.dispatch("connector.entryHandler.echo", 1, SESSION)
        self.assertEqual(seen, [True, False])

    def test_dispatch_local(self) -> None:
        """dispatch_local runs a context built elsewhere (a forwarded request)."""
        dispatcher, _, _ = make_dispatcher(server_types={"chat"})
        context = context_for("connector.entryHandler.echo")
        context.msg = {"forwarded": True}
        self.assertEqual(self.successResultOf(dispatcher.dispatch_local(context)), context.msg)

    def test_context_started_on_clock(self) -> None:
        """The context's started time is the clock's time at dispatch."""
        started: list[float] = []
        dispatcher, _, clock = make_dispatcher(before=[lambda ctx: started.append(ctx.started)])
        clock.advance(12.5)
        dispatcher.dispatch("connector.entryHandler.echo", 1, SESSION)
        self.assertEqual(started, [12.5])


class ErrorTests(SynchronousTestCase):
    """Failures become error bodies; the Deferred never fails."""

    def test_handler_error(self) -> None:
        """HandlerError(code, msg) answers {"code": code, "msg": msg}, logging nothing."""
        dispatcher, _, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.refuse", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 42, "msg": "refused"})
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_async_handler_error(self) -> None:
        """A HandlerError raised in an async def handler is mapped the same way."""
        dispatcher, _, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.refuse_async", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 43, "msg": "refused later"})

    def test_exception(self) -> None:
        """Any other exception is logged with its traceback and answered 500."""
        dispatcher, _, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.crash", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 500, "msg": "internal server error"})
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_failed_deferred(self) -> None:
        """A handler's failed Deferred is mapped like a raised exception."""
        dispatcher, handler, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.entryHandler.hang", 1, SESSION)
        handler.pending[0].errback(HandlerError(409, "conflict"))
        self.assertEqual(self.successResultOf(d), {"code": 409, "msg": "conflict"})


class RoutingTests(SynchronousTestCase):
    """Every route is answered exactly once, whatever is wrong with it."""

    def test_invalid_routes(self) -> None:
        """A route that is not type.handler.method is answered 404 'no route'."""
        dispatcher, handler, _ = make_dispatcher()
        for route in ("", "connector", "connector.entryHandler", "a..b", "a.b.c.d"):
            d = dispatcher.dispatch(route, 1, SESSION)
            self.assertEqual(self.successResultOf(d), {"code": 404, "msg": f"no route {route!r}"})
        self.assertEqual(handler.calls, [])

    def test_unknown_server_type(self) -> None:
        """A type this process does not serve, without forward, is answered 404 (the
        route as sent, nothing about the cluster's server types)."""
        dispatcher, _, _ = make_dispatcher()
        d = dispatcher.dispatch("chat.chatHandler.send", 1, SESSION)
        self.assertEqual(
            self.successResultOf(d), {"code": 404, "msg": "no route 'chat.chatHandler.send'"}
        )

    def test_unknown_handler(self) -> None:
        """An unknown handler on a local type is answered 404 naming it."""
        dispatcher, _, _ = make_dispatcher()
        d = dispatcher.dispatch("connector.nope.echo", 1, SESSION)
        self.assertEqual(
            self.successResultOf(d),
            {"code": 404, "msg": "no handler 'nope' on server type 'connector'"},
        )

    def test_unknown_method(self) -> None:
        """An unknown or non-public method is answered 404 and nothing runs."""
        dispatcher, handler, _ = make_dispatcher()
        for method in ("nope", "__init__", "_private"):
            d = dispatcher.dispatch(f"connector.entryHandler.{method}", 1, SESSION)
            self.assertEqual(
                self.successResultOf(d),
                {"code": 404, "msg": f"handler 'entryHandler' has no method {method!r}"},
            )
        self.assertEqual(handler.calls, [])

    def test_exactly_one_response(self) -> None:
        """Each request's Deferred fires once with a body, whatever the route."""
        dispatcher, _, _ = make_dispatcher()
        routes = [
            "x",
            "chat.a.b",
            "connector.nope.x",
            "connector.entryHandler.nope",
            "connector.entryHandler.crash",
            "connector.entryHandler.echo",
        ]
        bodies: list[object] = []
        for route in routes:
            dispatcher.dispatch(route, 1, SESSION).addCallback(bodies.append)
        self.assertEqual(len(bodies), len(routes))
        self.flushLoggedErrors(ValueError)


class ForwardTests(SynchronousTestCase):
    """Routes of other server types go to forward."""

    def test_forward_used_for_remote_types(self) -> None:
        """A non-local type is forwarded with its context; local ones are not."""
        contexts: list[RequestContext] = []

        def forward(context: RequestContext) -> Deferred[Any]:
            contexts.append(context)
            return succeed({"from": context.server_type})

        dispatcher, _, _ = make_dispatcher(forward=forward)
        d = dispatcher.dispatch("chat.chatHandler.send", {"m": 1}, SESSION, notify=True)
        self.assertEqual(self.successResultOf(d), {"from": "chat"})
        [context] = contexts
        self.assertEqual(
            (context.server_type, context.handler, context.method, context.msg, context.notify),
            ("chat", "chatHandler", "send", {"m": 1}, True),
        )
        self.assertIs(context.session, SESSION)
        local = dispatcher.dispatch("connector.entryHandler.echo", 2, SESSION)
        self.assertEqual(self.successResultOf(local), 2)
        self.assertEqual(len(contexts), 1)

    def test_forward_failure(self) -> None:
        """A failing forward is answered like a failing handler, never an errback; an
        RpcError's text (server ids) is logged as a warning, not sent."""
        dispatcher, _, _ = make_dispatcher(forward=lambda ctx: fail(RpcError("chat-1 is down")))
        d = dispatcher.dispatch("chat.chatHandler.send", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 500, "msg": "internal server error"})
        self.assertEqual(self.flushLoggedErrors(RpcError), [])
        dispatcher.forward = lambda ctx: fail(HandlerError(502, "no chat server"))
        d = dispatcher.dispatch("chat.chatHandler.send", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 502, "msg": "no chat server"})

    def test_forward_failure_error_handler(self) -> None:
        """The error handler also decides the body of a failed forward."""
        dispatcher, _, _ = make_dispatcher(
            forward=lambda ctx: fail(RpcError("down")),
            error_handler=lambda ctx, f: {"code": 503, "msg": f.getErrorMessage()},
        )
        d = dispatcher.dispatch("chat.chatHandler.send", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 503, "msg": "down"})

    def test_forward_filters_not_run(self) -> None:
        """Forwarded requests skip this process's filters (the backend runs its own)."""
        seen: list[str] = []
        dispatcher, _, _ = make_dispatcher(
            forward=lambda ctx: None, before=[lambda ctx: seen.append(ctx.route)]
        )
        self.assertEqual(self.successResultOf(dispatcher.dispatch("chat.a.b", 1, SESSION)), {})
        self.assertEqual(seen, [])


class TimeoutTests(SynchronousTestCase):
    """context.timeout, set by a before-filter, bounds the handler."""

    def set_timeout(self, seconds: float) -> Any:
        def before(context: RequestContext) -> None:
            context.timeout = seconds

        return before

    def test_slow_handler_answered_504(self) -> None:
        """A handler slower than context.timeout is answered 504 and cancelled."""
        dispatcher, handler, clock = make_dispatcher(before=[self.set_timeout(2)])
        d = dispatcher.dispatch("connector.entryHandler.hang", 1, SESSION)
        clock.advance(1.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), {"code": 504, "msg": "request timed out"})
        self.assertEqual(handler.cancelled, [1])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_late_result_ignored(self) -> None:
        """A result (or failure) arriving after the timeout changes nothing."""
        dispatcher, _, clock = make_dispatcher(before=[self.set_timeout(0.5)])
        d = dispatcher.dispatch("connector.entryHandler.later", {"delay": 3}, SESSION)
        clock.advance(0.5)
        self.assertEqual(self.successResultOf(d)["code"], 504)
        clock.advance(3)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_fast_handler_unaffected(self) -> None:
        """A handler within its timeout answers normally and leaves no timer behind."""
        dispatcher, _, clock = make_dispatcher(before=[self.set_timeout(5)])
        d = dispatcher.dispatch("connector.entryHandler.later", {"delay": 1}, SESSION)
        clock.advance(1)
        self.assertEqual(self.successResultOf(d), {"delay": 1})
        self.assertEqual(clock.getDelayedCalls(), [])
        sync = dispatcher.dispatch("connector.entryHandler.crash", 1, SESSION)
        self.assertEqual(self.successResultOf(sync)["code"], 500)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.flushLoggedErrors(ValueError)

    def test_handler_rpcs_are_cut_to_its_timeout(self) -> None:
        """A local handler with a timeout runs within that deadline: what it reads with
        budget.remaining (and the RPCs it makes are cut to) is the timeout, also after an
        await; without a timeout there is no deadline."""
        seen: list[float | None] = []

        class Timed:
            def __init__(self, clock: Clock) -> None:
                self.clock = clock

            async def slow(self, session: Any, msg: Any) -> dict[str, Any]:
                seen.append(remaining(self.clock))
                await deferLater(self.clock, 1.0, lambda: None)
                seen.append(remaining(self.clock))
                return {}

        dispatcher, _, clock = make_dispatcher(before=[self.set_timeout(3)])
        dispatcher.registry.register("connector", "timed", Timed(clock))
        d = dispatcher.dispatch("connector.timed.slow", {}, SESSION)
        clock.advance(1)
        self.assertEqual(self.successResultOf(d), {})
        self.assertEqual(seen, [3.0, 2.0])
        plain, _, clock = make_dispatcher()
        plain.registry.register("connector", "timed", Timed(clock))
        plain.dispatch("connector.timed.slow", {}, SESSION)
        self.assertEqual(seen[2:], [None])

    def test_cancelled_caller(self) -> None:
        """Cancelling a timed dispatch cancels the handler and its timer, quietly."""
        dispatcher, handler, clock = make_dispatcher(before=[self.set_timeout(2)])
        d = dispatcher.dispatch("connector.entryHandler.hang", 1, SESSION)
        d.cancel()
        self.assertEqual(self.successResultOf(d), {"code": 500, "msg": "request cancelled"})
        self.assertEqual(handler.cancelled, [1])
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_other_failure_at_the_timeout_logged_once(self) -> None:
        """A handler failing otherwise when cancelled at its timeout is answered 504; its
        failure is logged once, with its traceback."""
        dispatcher, handler, clock = make_dispatcher(before=[self.set_timeout(1)])
        self.patch(
            handler, "echo", lambda session, msg: Deferred(lambda d: d.errback(ValueError("late")))
        )
        d = dispatcher.dispatch("connector.entryHandler.echo", 1, SESSION)
        clock.advance(1)
        self.assertEqual(self.successResultOf(d), {"code": 504, "msg": "request timed out"})
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_coroutine_timeout(self) -> None:
        """An async def handler is bounded too."""
        dispatcher, _, clock = make_dispatcher(before=[self.set_timeout(0.25)])
        d = dispatcher.dispatch("connector.entryHandler.coro", 1, SESSION)
        clock.advance(0.25)
        self.assertEqual(self.successResultOf(d), {"code": 504, "msg": "request timed out"})
        clock.advance(1)
        self.assertEqual(self.flushLoggedErrors(), [])


class CallTests(SynchronousTestCase):
    """``call``: the body itself when it is ready at once, else a Deferred of it."""

    def test_plain_value_without_deferred(self) -> None:
        """Without filters a plain result comes back as is; None becomes {}."""
        dispatcher, handler, _ = make_dispatcher()
        self.assertEqual(
            dispatcher.call("connector.entryHandler.echo", {"a": 1}, SESSION), {"a": 1}
        )
        self.assertEqual(dispatcher.call("connector.entryHandler.nothing", 1, SESSION), {})
        self.assertEqual(handler.calls, [("echo", {"a": 1}), ("nothing", 1)])

    def test_errors_answered_at_once(self) -> None:
        """Refusals, crashes and bad routes are bodies too, not Deferreds."""
        dispatcher, _, _ = make_dispatcher()
        cases = {
            "connector.entryHandler.refuse": {"code": 42, "msg": "refused"},
            "connector.entryHandler.crash": {"code": 500, "msg": "internal server error"},
            "connector.entryHandler.nope": {
                "code": 404,
                "msg": "handler 'entryHandler' has no method 'nope'",
            },
            "a.b": {"code": 404, "msg": "no route 'a.b'"},
            "chat.chatHandler.send": {"code": 404, "msg": "no route 'chat.chatHandler.send'"},
        }
        for route, body in cases.items():
            self.assertEqual(dispatcher.call(route, 1, SESSION), body, route)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_deferred_and_coroutine_results(self) -> None:
        """A Deferred or a coroutine gives a Deferred that fires with the body."""
        dispatcher, handler, clock = make_dispatcher()
        later = dispatcher.call("connector.entryHandler.later", {"delay": 1}, SESSION)
        coro = dispatcher.call("connector.entryHandler.coro", 3, SESSION)
        failing = dispatcher.call("connector.entryHandler.refuse_async", 1, SESSION)
        hung = dispatcher.call("connector.entryHandler.hang", 1, SESSION)
        for d in (later, coro, hung):
            self.assertIsInstance(d, Deferred)
        self.assertEqual(self.successResultOf(failing), {"code": 43, "msg": "refused later"})
        clock.advance(1)
        self.assertEqual(self.successResultOf(later), {"delay": 1})
        self.assertEqual(self.successResultOf(coro), {"async": 3})
        handler.pending[0].callback(None)
        self.assertEqual(self.successResultOf(hung), {})

    def test_returned_failure(self) -> None:
        """A handler returning a Failure is answered as if it had raised."""
        dispatcher, handler, _ = make_dispatcher()
        handler.echo = lambda session, msg: Failure(HandlerError(418, "teapot"))  # type: ignore[method-assign]
        self.assertEqual(
            dispatcher.call("connector.entryHandler.echo", 1, SESSION),
            {"code": 418, "msg": "teapot"},
        )

    def test_error_handler_sees_the_context(self) -> None:
        """The error handler gets the request's context on the direct path as well."""
        seen: list[tuple[str, float, bool]] = []

        def on_error(context: RequestContext, failure: Failure) -> object:
            seen.append((context.route, context.started, context.notify))
            return {"code": 599}

        dispatcher, _, clock = make_dispatcher(error_handler=on_error)
        clock.advance(4)
        d = dispatcher.dispatch("connector.entryHandler.crash", 1, SESSION, notify=True)
        self.assertEqual(self.successResultOf(d), {"code": 599})
        self.assertEqual(seen, [("connector.entryHandler.crash", 4.0, True)])

    def test_filters_of_another_type_keep_the_direct_path(self) -> None:
        """Only filters of the request's type (or global ones) bring the filter chain."""
        dispatcher, _, _ = make_dispatcher()
        dispatcher.add_before(lambda ctx: None, "chat")
        self.assertEqual(dispatcher.call("connector.entryHandler.echo", 1, SESSION), 1)
        dispatcher.add_after(lambda ctx, response: {"after": response}, "connector")
        d = dispatcher.call("connector.entryHandler.echo", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"after": 1})

    def test_parsed_routes_are_bounded(self) -> None:
        """Clients choose routes: the parse cache stops growing at ROUTE_CACHE_SIZE."""
        dispatcher, _, _ = make_dispatcher()
        for i in range(ROUTE_CACHE_SIZE + 10):
            dispatcher.call(f"connector.entryHandler.m{i}", 1, SESSION)
        self.assertEqual(len(dispatcher._routes), ROUTE_CACHE_SIZE)
        self.assertEqual(
            dispatcher.call(f"connector.entryHandler.m{ROUTE_CACHE_SIZE + 5}", 1, SESSION)["code"],
            404,
        )
