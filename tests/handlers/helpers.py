"""Shared pieces of the handler and filter tests: sessions, handlers, a dispatcher."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater
from twisted.logger import ILogObserver, Logger
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.handlers import Dispatcher, HandlerRegistry, RequestContext


@dataclass
class FakeSession:
    """What filters read of a session: its id and frontend."""

    id: int
    frontend_id: str | None = None


class EntryHandler:
    """A handler exercising every kind of result."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, Any]] = []
        self.pending: list[Deferred[Any]] = []
        self.cancelled: list[Any] = []

    def echo(self, session: FakeSession, msg: Any) -> Any:
        self.calls.append(("echo", msg))
        return msg

    def nothing(self, session: FakeSession, msg: Any) -> None:
        self.calls.append(("nothing", msg))

    def later(self, session: FakeSession, msg: Any) -> Deferred[Any]:
        """Answers ``msg`` after ``msg["delay"]`` seconds."""
        self.calls.append(("later", msg))
        return deferLater(self.clock, msg["delay"], lambda: msg)

    def hang(self, session: FakeSession, msg: Any) -> Deferred[Any]:
        """Answers when the test fires ``self.pending[-1]``."""
        self.calls.append(("hang", msg))
        d: Deferred[Any] = Deferred(lambda _: self.cancelled.append(msg))
        self.pending.append(d)
        return d

    async def coro(self, session: FakeSession, msg: Any) -> Any:
        self.calls.append(("coro", msg))
        value = await deferLater(self.clock, 1.0, lambda: msg)
        return {"async": value}

    def refuse(self, session: FakeSession, msg: Any) -> Any:
        raise HandlerError(42, "refused")

    async def refuse_async(self, session: FakeSession, msg: Any) -> Any:
        raise HandlerError(43, "refused later")

    def crash(self, session: FakeSession, msg: Any) -> Any:
        raise ValueError("boom")

    def own_code(self, session: FakeSession, msg: Any) -> Any:
        return {"code": 200, "msg": "mine"}


def make_dispatcher(
    server_types: set[str] | None = None, **kwargs: Any
) -> tuple[Dispatcher, EntryHandler, Clock]:
    """A dispatcher of ``connector`` with an ``entryHandler`` on a Clock."""
    clock = Clock()
    registry = HandlerRegistry()
    handler = EntryHandler(clock)
    registry.register("connector", None, handler)
    dispatcher = Dispatcher(server_types or {"connector"}, registry, clock, **kwargs)
    return dispatcher, handler, clock


def context_for(route: str, session_id: int = 1, started: float = 0.0) -> RequestContext:
    """A RequestContext for filter unit tests."""
    server_type, handler, method = route.split(".")
    return RequestContext(
        route=route,
        server_type=server_type,
        handler=handler,
        method=method,
        msg={},
        session=FakeSession(session_id),
        started=started,
    )


def capture_log(case: SynchronousTestCase, module: ModuleType) -> list[dict[str, Any]]:
    """The events ``module.log`` emits during the test ``case``."""
    events: list[dict[str, Any]] = []
    case.patch(module, "log", Logger(observer=cast(ILogObserver, events.append)))
    return events
