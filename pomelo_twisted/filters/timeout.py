"""TimeoutFilter: warn about slow requests, and optionally abort them with 504."""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from ..handlers.context import RequestContext
from ..interfaces import IAfterFilter, IBeforeFilter

__all__ = ["TimeoutFilter"]

log = Logger()


@implementer(IBeforeFilter, IAfterFilter)
class TimeoutFilter:
    """Logs a warning when a request runs longer than ``warn_after`` seconds.

    With ``abort_after``, it also sets ``context.timeout`` (keeping a shorter one a
    previous filter set), so the dispatcher answers ``{"code": 504, ...}`` when the
    handler runs longer than that.
    """

    def __init__(
        self, clock: IReactorTime, warn_after: float = 3.0, abort_after: float | None = None
    ) -> None:
        self.clock = clock
        self.warn_after = warn_after
        self.abort_after = abort_after
        self._key = f"timeout.{id(self):x}"

    def before(self, context: Any) -> None:
        """Schedule the warning; set the abort deadline."""
        if self.abort_after is not None and (
            context.timeout is None or self.abort_after < context.timeout
        ):
            context.timeout = self.abort_after
        context.attributes[self._key] = self.clock.callLater(self.warn_after, self._warn, context)

    def after(self, context: Any, response: Any) -> Any:
        """Cancel the warning if it has not been logged; the response passes unchanged."""
        call: IDelayedCall | None = context.attributes.pop(self._key, None)
        if call is not None and call.active():
            call.cancel()
        return response

    def _warn(self, context: RequestContext) -> None:
        log.warn(
            "request {route} still running after {elapsed:.3f}s",
            route=context.route,
            elapsed=self.clock.seconds() - context.started,
        )
