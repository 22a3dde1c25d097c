"""ForwardReceiver calls its handler hooks around the handler of a forwarded request."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pomelo_twisted.app.forward import ForwardReceiver
from pomelo_twisted.callcontext import CallContext, current_context, within_context
from pomelo_twisted.handlers import Dispatcher, HandlerRegistry
from pomelo_twisted.interfaces import IHandlerHooks, RequestEnd
from pomelo_twisted.serializers import JsonSerializer

JSON = JsonSerializer()


class Room:
    """Handlers reporting the call context they run within."""

    def __init__(self) -> None:
        self.later: Deferred[Any] | None = None

    def now(self, session: Any, msg: Any) -> dict[str, Any]:
        return {"code": 200, "context": current_context()}

    def wait(self, session: Any, msg: Any) -> Deferred[Any]:
        self.later = Deferred()
        return self.later


@implementer(IHandlerHooks)
class Recording:
    """Adds ``span`` to the context; records each start and end."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def handler_started(
        self, route: str, session: object, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        self.events.append(("start", (route, getattr(session, "uid", None), notify, context)))
        return {**(context or {}), "span": route}, lambda body: self.events.append(("end", body))


@implementer(IHandlerHooks)
class Broken:
    """A hook that raises."""

    def handler_started(self, *args: Any) -> Any:
        raise RuntimeError("broken hook")


class ForwardHookTests(SynchronousTestCase):
    """The hooks of a backend's ForwardReceiver."""

    def setUp(self) -> None:
        registry = HandlerRegistry()
        self.room = Room()
        registry.register("chat", "room", self.room)
        self.receiver = ForwardReceiver(
            Dispatcher({"chat"}, registry, Clock()), lambda *a: Deferred(), lambda: 16
        )

    def serve(self, route: str, context: CallContext | None = None) -> Any:
        args = ("connector-1", 3, "ann", 1, {}, route, "json", b"{}", False)
        return within_context(context, self.receiver.serve, *args)

    def test_no_hooks_by_default(self) -> None:
        """A new receiver has no hooks; the handler runs within the call's context."""
        self.assertIsNone(self.receiver.hooks)
        answer = JSON.decode(self.serve("chat.room.now", {"rid": "r"}))
        self.assertEqual(answer, {"code": 200, "context": {"rid": "r"}})

    def test_the_handler_runs_within_the_hooks_context(self) -> None:
        """handler_started gets route, session and context; the handler runs within
        what it returns; the end gets the body."""
        hooks = Recording()
        self.receiver.hooks = hooks
        answer = JSON.decode(self.serve("chat.room.now", {"rid": "r"}))
        context = {"rid": "r", "span": "chat.room.now"}
        self.assertEqual(answer, {"code": 200, "context": context})
        self.assertEqual(
            hooks.events,
            [
                ("start", ("chat.room.now", "ann", False, {"rid": "r"})),
                ("end", {"code": 200, "context": context}),
            ],
        )
        self.assertIsNone(current_context())

    def test_a_later_answer_ends_when_it_comes(self) -> None:
        """A Deferred answer: the end runs when it fires."""
        hooks = Recording()
        self.receiver.hooks = hooks
        d = self.serve("chat.room.wait")
        self.assertEqual([e[0] for e in hooks.events], ["start"])
        assert self.room.later is not None
        self.room.later.callback({"code": 201})
        self.assertEqual(JSON.decode(self.successResultOf(d)), {"code": 201})
        self.assertEqual(hooks.events[-1], ("end", {"code": 201}))

    def test_a_raising_hook_is_skipped(self) -> None:
        """A hook that raises is logged; the request is still served."""
        self.receiver.hooks = Broken()
        answer = JSON.decode(self.serve("chat.room.now"))
        self.assertEqual(answer, {"code": 200, "context": None})
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
