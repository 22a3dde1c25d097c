"""Dispatcher: before/after filter chains and the error handler hook."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.handlers import Dispatcher, HandlerRegistry, RequestContext
from pomelo_twisted.interfaces import IAfterFilter, IBeforeFilter

from .helpers import FakeSession, make_dispatcher

SESSION = FakeSession(1)
ECHO = "connector.entryHandler.echo"


@implementer(IBeforeFilter, IAfterFilter)
class Recorder:
    """A filter object appending ``name:before`` / ``name:after`` to a shared log."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def before(self, context: Any) -> None:
        self.log.append(f"{self.name}:before")

    def after(self, context: Any, response: Any) -> Any:
        self.log.append(f"{self.name}:after")
        return None


class FilterOrderTests(SynchronousTestCase):
    """Filters run in order, global ones first."""

    def test_recorder_provides_interfaces(self) -> None:
        """The test filter object provides both filter interfaces."""
        verifyObject(IBeforeFilter, Recorder("x", []))
        verifyObject(IAfterFilter, Recorder("x", []))

    def test_order(self) -> None:
        """Before-filters in order, handler, after-filters in order; global before type's."""
        log: list[str] = []
        dispatcher, _, _ = make_dispatcher(server_types={"connector", "chat"})
        dispatcher.add_filter(Recorder("typed", log), server_type="connector")
        dispatcher.add_filter(Recorder("g1", log))
        dispatcher.add_before(lambda ctx: log.append("g2:before"))
        dispatcher.add_after(lambda ctx, resp: log.append("g2:after"))
        dispatcher.add_filter(Recorder("chat", log), server_type="chat")
        d = dispatcher.dispatch(ECHO, 1, SESSION)
        self.assertEqual(self.successResultOf(d), 1)
        self.assertEqual(
            log,
            ["g1:before", "g2:before", "typed:before", "g1:after", "g2:after", "typed:after"],
        )

    def test_constructor_filters(self) -> None:
        """before= and after= given to the constructor are global filters."""
        log: list[str] = []
        dispatcher, _, _ = make_dispatcher(
            before=[Recorder("a", log)], after=[lambda ctx, resp: log.append("b:after")]
        )
        self.successResultOf(dispatcher.dispatch(ECHO, 1, SESSION))
        self.assertEqual(log, ["a:before", "b:after"])

    def test_deferred_before_waits(self) -> None:
        """A before-filter's Deferred holds the handler until it fires."""
        gate: Deferred[None] = Deferred()
        dispatcher, handler, _ = make_dispatcher(before=[lambda ctx: gate])
        d = dispatcher.dispatch(ECHO, 1, SESSION)
        self.assertEqual(handler.calls, [])
        gate.callback(None)
        self.assertEqual(self.successResultOf(d), 1)

    def test_after_changes_response(self) -> None:
        """Each after-filter receives the previous one's response; None keeps it."""
        dispatcher, _, _ = make_dispatcher(
            after=[
                lambda ctx, resp: {"wrapped": resp},
                lambda ctx, resp: None,
                lambda ctx, resp: succeed({**resp, "more": True}),
            ]
        )
        d = dispatcher.dispatch(ECHO, 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"wrapped": 1, "more": True})

    def test_before_can_change_message(self) -> None:
        """A before-filter may change what the handler receives."""

        def before(context: RequestContext) -> None:
            context.msg = {"changed": context.msg}

        dispatcher, _, _ = make_dispatcher(before=[before])
        self.assertEqual(
            self.successResultOf(dispatcher.dispatch(ECHO, 1, SESSION)), {"changed": 1}
        )

    def test_before_failure_skips_handler(self) -> None:
        """A failing before-filter stops the chain and the handler; after-filters still
        run, on the error body."""
        seen: list[Any] = []
        later: list[str] = []
        dispatcher, handler, _ = make_dispatcher(
            before=[lambda ctx: fail(HandlerError(401, "login first")), later.append],
            after=[lambda ctx, resp: seen.append(resp)],
        )
        d = dispatcher.dispatch(ECHO, 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 401, "msg": "login first"})
        self.assertEqual((handler.calls, later), ([], []))
        self.assertEqual(seen, [{"code": 401, "msg": "login first"}])

    def test_error_bodies_pass_after_filters(self) -> None:
        """Unknown methods and crashes are after-filtered like any response."""
        seen: list[Any] = []
        dispatcher, _, _ = make_dispatcher(after=[lambda ctx, resp: seen.append(resp)])
        dispatcher.dispatch("connector.entryHandler.nope", 1, SESSION)
        dispatcher.dispatch("connector.entryHandler.crash", 1, SESSION)
        self.assertEqual([body["code"] for body in seen], [404, 500])
        self.flushLoggedErrors(ValueError)

    def test_after_failure_logged_response_kept(self) -> None:
        """A failing after-filter is logged; the response goes on unchanged."""

        def broken(context: RequestContext, response: Any) -> Any:
            raise KeyError("oops")

        dispatcher, _, _ = make_dispatcher(after=[broken, lambda ctx, resp: {"r": resp}])
        self.assertEqual(self.successResultOf(dispatcher.dispatch(ECHO, 1, SESSION)), {"r": 1})
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_not_a_filter(self) -> None:
        """Objects that are neither filters nor callables are refused when added."""
        dispatcher = Dispatcher({"connector"}, HandlerRegistry(), None)  # type: ignore[arg-type]
        self.assertRaises(TypeError, dispatcher.add_before, 42)
        self.assertRaises(TypeError, dispatcher.add_after, "x")
        self.assertRaises(TypeError, dispatcher.add_filter, object())


class ErrorHandlerTests(SynchronousTestCase):
    """error_handler(context, failure) decides the body of a failed request."""

    def test_decides(self) -> None:
        """Its body (or Deferred of one) answers the failure; after-filters see it."""
        calls: list[tuple[str, type]] = []

        def on_error(context: RequestContext, failure: Failure) -> Any:
            calls.append((context.route, type(failure.value)))
            return succeed({"code": 418, "msg": "teapot"})

        seen: list[Any] = []
        dispatcher, _, _ = make_dispatcher(
            error_handler=on_error, after=[lambda ctx, resp: seen.append(resp)]
        )
        d = dispatcher.dispatch("connector.entryHandler.crash", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 418, "msg": "teapot"})
        self.assertEqual(calls, [("connector.entryHandler.crash", ValueError)])
        self.assertEqual(seen, [{"code": 418, "msg": "teapot"}])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_none_falls_back(self) -> None:
        """An error handler returning None leaves the default mapping in place."""
        dispatcher, _, _ = make_dispatcher(error_handler=lambda ctx, f: None)
        d = dispatcher.dispatch("connector.entryHandler.refuse", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 42, "msg": "refused"})

    def test_own_failure_falls_back(self) -> None:
        """When the error handler fails, it is logged and the default mapping answers."""

        def on_error(context: RequestContext, failure: Failure) -> Any:
            raise RuntimeError("handler of errors broke")

        dispatcher, _, _ = make_dispatcher(error_handler=on_error)
        d = dispatcher.dispatch("connector.entryHandler.refuse", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 42, "msg": "refused"})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        d = dispatcher.dispatch("connector.entryHandler.crash", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 500, "msg": "internal server error"})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_settable_later(self) -> None:
        """error_handler is an attribute an application sets after construction."""
        dispatcher, _, _ = make_dispatcher()
        dispatcher.error_handler = lambda ctx, f: {"code": 1}
        d = dispatcher.dispatch("connector.entryHandler.refuse", 1, SESSION)
        self.assertEqual(self.successResultOf(d), {"code": 1})
