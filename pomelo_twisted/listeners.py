"""Listeners: callables told of events of one kind, in the order they subscribed.

One failing listener is logged (naming what it listened to) and the others still run;
:meth:`Listeners.subscribe` returns the function that removes the listener again (safe to
call twice). Discovery's membership events, the session directories' bind and close
events and a session service's bind and unbind hooks all fan out through one of these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec

from twisted.logger import Logger, LogLevel

__all__ = ["Listeners"]

log = Logger()

P = ParamSpec("P")


class Listeners(Generic[P]):
    """The listeners of one kind of event (``what`` names it in the log)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._listeners: list[Callable[P, object]] = []

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def __len__(self) -> int:
        return len(self._listeners)

    def subscribe(self, listener: Callable[P, object]) -> Callable[[], None]:
        """Add ``listener``; the function that removes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every listener with these arguments; a failing one is logged."""
        for listener in list(self._listeners):
            try:
                listener(*args, **kwargs)
            except Exception:
                log.failure(
                    "{what} listener {listener!r} failed",
                    what=self.what,
                    listener=listener,
                    level=LogLevel.error,
                )
