"""The lifecycle of an Application's service tree: ordered children, components, hooks.

An :class:`OrderedServices` is a ``MultiService`` whose children start one after
another, each once the previous one is ready (:class:`IReadyService`: it listens,
connects, loads), and stop in reverse order, each once the next one has stopped.
The Application is one; its children are its components, in load order:

- a component that is a service (the connector, holding its acceptor) is a child
  as it is;
- a game's :class:`~pomelo_twisted.interfaces.IComponent` is run by a
  :class:`ComponentService` (``start`` on start, ``stop(False)`` on stop);
- a :class:`HooksService`, always last, runs the hooks of the game's modules,
  handlers and remotes: ``init``/``after_init`` once every component has started,
  ``before_shutdown``/``shutdown`` before any component stops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import IComponent
from ..results import call_settled

__all__ = [
    "ComponentService",
    "HooksService",
    "IReadyService",
    "OrderedServices",
    "PhaseError",
    "call_hook",
    "run_in_order",
]

log = Logger()

HOOKS_UP = ("init", "after_init")
HOOKS_DOWN = ("before_shutdown", "shutdown")


class PhaseError(Exception):
    """A lifecycle step failed; names the phase and the object."""

    def __init__(self, phase: str, name: str, failure: Failure) -> None:
        super().__init__(f"{phase} of {name} failed: {failure.getErrorMessage()}")
        self.phase = phase
        self.name = name
        self.failure = failure


class IReadyService(IService):
    """A service whose start finishes later (it listens, connects, loads state)."""

    def when_ready() -> Deferred[None]:
        """After ``startService``: fires once the service serves, or fails with why not."""


def call_hook(obj: object, hook: str, *args: Any) -> Deferred[Any]:
    """Call ``obj.hook(*args)`` if it exists (value, Deferred or coroutine) -> Deferred."""
    method = getattr(obj, hook, None)
    if method is None:
        return succeed(None)
    result = call_settled(method, *args)
    return result if isinstance(result, Deferred) else succeed(result)


def _step_failed(phase: str, name: str, failure: Failure, *, stop_on_error: bool) -> object:
    if stop_on_error:
        return failure if failure.check(PhaseError) else Failure(PhaseError(phase, name, failure))
    log.failure("{phase} of {name} failed", failure, phase=phase, name=name)
    return None


def _in_order(
    phase: str,
    steps: Iterable[tuple[str, Callable[[], Deferred[Any]]]],
    stop_on_error: bool,
) -> Deferred[None]:
    """Run each (name, step) after the previous one's Deferred has fired."""
    pending = list(steps)

    def next_step(_: object = None) -> Deferred[None] | None:
        if not pending:
            return None
        name, step = pending.pop(0)
        d = step()
        d.addErrback(partial(_step_failed, phase, name, stop_on_error=stop_on_error))
        return d.addCallback(next_step)

    return succeed(None).addCallback(next_step)


def run_in_order(
    phase: str,
    steps: Iterable[tuple[str, object]],
    hook: str,
    *args: Any,
    stop_on_error: bool = True,
) -> Deferred[None]:
    """Run ``hook`` on each (name, obj) in order, waiting for each.

    With ``stop_on_error`` the first failure ends the phase with a
    :class:`PhaseError`; without, failures are logged and the phase goes on
    (stopping must reach every step).
    """
    return _in_order(
        phase, [(name, partial(call_hook, obj, hook, *args)) for name, obj in steps], stop_on_error
    )


def _start(child: IService) -> Deferred[None]:
    child.startService()
    return IReadyService(child).when_ready() if IReadyService.providedBy(child) else succeed(None)


def _stop(child: IService) -> Deferred[None]:
    return call_hook(child, "stopService")


def _name(child: IService) -> str:
    return child.name or repr(child)


class _ReadyAfterStart:
    """``when_ready`` of a service whose ``startService`` sets ``_ready``."""

    _ready: Deferred[None] | None = None

    def when_ready(self) -> Deferred[None]:
        """Fires once started (or fails with why not); called once, after startService."""
        assert self._ready is not None, "when_ready() before startService()"
        ready, self._ready = self._ready, None
        return ready


@implementer(IReadyService)
class OrderedServices(_ReadyAfterStart, MultiService):
    """A MultiService starting its children in order, each once the previous is ready,
    and stopping them in reverse order, each once the next has stopped."""

    def startService(self) -> None:
        """Start the children one after another; :meth:`when_ready` fires once every child
        is ready, or with the :class:`PhaseError` of the first that failed (the later ones
        never start)."""
        Service.startService(self)
        self._ready = _in_order("start", [(_name(c), partial(_start, c)) for c in self], True)

    def stopService(self) -> Deferred[None]:
        """Stop the children in reverse order; a failure is logged and the others go on."""
        Service.stopService(self)
        children = list(self)
        children.reverse()
        return _in_order("stop", [(_name(c), partial(_stop, c)) for c in children], False)


@implementer(IReadyService)
class ComponentService(_ReadyAfterStart, Service):
    """Runs an :class:`~pomelo_twisted.interfaces.IComponent` as a child service."""

    def __init__(self, component: IComponent, name: str) -> None:
        self.component = component
        self.setName(name)

    def startService(self) -> None:
        """``component.start()``."""
        super().startService()
        self._ready = call_hook(self.component, "start").addCallback(lambda _: None)

    def stopService(self) -> Deferred[None]:
        """``component.stop(False)``."""
        super().stopService()
        return call_hook(self.component, "stop", False).addCallback(lambda _: None)


@implementer(IReadyService)
class HooksService(_ReadyAfterStart, Service):
    """The lifecycle hooks of a server's modules, handlers and remotes.

    ``hooked()`` gives the (name, object) pairs at each phase, modules first.
    """

    def __init__(self, hooked: Callable[[], list[tuple[str, object]]]) -> None:
        self.hooked = hooked

    def _run(self, hooks: Iterable[str], stop_on_error: bool) -> Deferred[None]:
        steps = [(hook, partial(self._run_hook, hook, stop_on_error)) for hook in hooks]
        return _in_order("hooks", steps, stop_on_error)

    def _run_hook(self, hook: str, stop_on_error: bool) -> Deferred[None]:
        return run_in_order(hook, self.hooked(), hook, stop_on_error=stop_on_error)

    def startService(self) -> None:
        """``init`` then ``after_init`` of every hooked object, in order."""
        super().startService()
        self._ready = self._run(HOOKS_UP, stop_on_error=True)

    def stopService(self) -> Deferred[None]:
        """``before_shutdown`` then ``shutdown`` of every hooked object; failures are logged."""
        super().stopService()
        return self._run(HOOKS_DOWN, stop_on_error=False)
