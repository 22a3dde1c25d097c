"""Running lifecycle phases: each step may return a Deferred, steps run one after another."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["PhaseError", "call_hook", "run_in_order"]

log = Logger()


class PhaseError(Exception):
    """A lifecycle step failed; names the phase and the object."""

    def __init__(self, phase: str, name: str, failure: Failure) -> None:
        super().__init__(f"{phase} of {name} failed: {failure.getErrorMessage()}")
        self.phase = phase
        self.name = name
        self.failure = failure


def call_hook(obj: object, hook: str, *args: Any) -> Deferred[Any]:
    """Call ``obj.hook(*args)`` if it exists (value, Deferred or coroutine)."""
    method = getattr(obj, hook, None)
    if method is None:
        return succeed(None)
    d = maybeDeferred(method, *args)

    def unwrap(result: object) -> object:
        if hasattr(result, "__await__") and not isinstance(result, Deferred):
            return ensureDeferred(result)  # type: ignore[arg-type]
        return result

    return d.addCallback(unwrap)


def run_in_order(
    phase: str,
    steps: Iterable[tuple[str, object]],
    hook: str,
    *args: Any,
    stop_on_error: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> Deferred[None]:
    """Run ``hook`` on each (name, obj) in order, waiting for each.

    With ``stop_on_error`` the first failure ends the phase with a
    :class:`PhaseError`; without, failures are logged and the phase goes on
    (stopping must reach every step).
    """
    pending = list(steps)

    def next_step(_: object = None) -> Deferred[None] | None:
        if not pending:
            return None
        name, obj = pending.pop(0)
        if on_step is not None:
            on_step(name)
        d = call_hook(obj, hook, *args)

        def failed(failure: Failure) -> object:
            if stop_on_error:
                return Failure(PhaseError(phase, name, failure))
            log.failure("{phase} of {name} failed", failure, phase=phase, name=name)
            return None

        d.addErrback(failed)
        d.addCallback(next_step)
        return d

    result: Deferred[None] = succeed(None)
    result.addCallback(next_step)
    return result
