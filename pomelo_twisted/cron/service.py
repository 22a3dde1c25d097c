"""CronService: runs a server's crons on the injected clock (a child Service of the app).

Each cron is scheduled with ``clock.callLater`` at its next time after
``clock.seconds()`` (UTC). When it fires it calls ``handler.method()`` (a value, a
Deferred or a coroutine) and schedules its next time after the later of the time it
was due and now, so times missed while the process was busy are skipped, not
run in a burst. A run that fails is logged with the cron's id and the cron keeps its
schedule. A run still going when the next time comes is not started a second time:
that time is skipped (and counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..handlers.registry import class_public_methods
from ..results import call_settled
from .spec import CronSpec

__all__ = ["CronJob", "CronService", "check_action"]

log = Logger()


def check_action(spec: CronSpec, handlers: Mapping[str, object]) -> None:
    """ValueError naming what is missing when ``spec.action`` is not a public method of
    one of ``handlers``."""
    handler = handlers.get(spec.handler)
    if handler is None:
        known = ", ".join(sorted(handlers)) or "none"
        raise ValueError(f"no cron handler {spec.handler!r} (cron handlers: {known})")
    methods = class_public_methods(type(handler))
    if spec.method not in methods:
        raise ValueError(
            f"cron handler {spec.handler!r} has no public method {spec.method!r} "
            f"(it has: {', '.join(sorted(methods)) or 'none'})"
        )


@dataclass
class CronJob:
    """One scheduled cron and its counters."""

    spec: CronSpec
    next_time: float | None = None
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    running: Deferred[Any] | None = None
    call: IDelayedCall | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """Plain data for the admin CLI."""
        out = self.spec.to_dict()
        nxt = self.next_time
        out["next"] = None if nxt is None else datetime.fromtimestamp(nxt, tz=UTC).isoformat()
        out.update(
            runs=self.runs,
            failures=self.failures,
            skipped=self.skipped,
            running=self.running is not None,
        )
        return out


class CronService(Service):
    """The crons of one server; ``handlers`` maps a cron handler's name to its object."""

    name = "cron"

    def __init__(
        self, clock: IReactorTime, handlers: Mapping[str, object], server_id: str = ""
    ) -> None:
        self.clock = clock
        self.server_id = server_id
        self.handlers: dict[str, object] = dict(handlers)
        self.jobs: dict[str, CronJob] = {}

    # -- crons ---------------------------------------------------------------

    def add(self, spec: CronSpec) -> CronJob:
        """Schedule ``spec`` (at once when running); ValueError when its id is taken or its
        action names no public method of a cron handler."""
        if spec.id in self.jobs:
            raise ValueError(f"a cron with id {spec.id!r} exists already on {self.server_id}")
        check_action(spec, self.handlers)
        job = CronJob(spec)
        self.jobs[spec.id] = job
        if self.running:
            self._schedule(job, self.clock.seconds())
        return job

    def remove(self, cron_id: str) -> CronJob | None:
        """Unschedule cron ``cron_id`` (a run in progress finishes); None if unknown."""
        job = self.jobs.pop(cron_id, None)
        if job is not None:
            self._cancel(job)
        return job

    def check_handlers(self, handlers: Mapping[str, object]) -> None:
        """ValueError naming the cron when one's action is not in ``handlers``."""
        for job in self.jobs.values():
            try:
                check_action(job.spec, handlers)
            except ValueError as exc:
                raise ValueError(f"cron {job.spec.id!r} ({job.spec.action}): {exc}") from None

    def replace_handlers(self, handlers: Mapping[str, object]) -> None:
        """Use ``handlers`` from the next run on (a reload); ValueError, and nothing
        changes, when a cron's action is not in them. A run in progress finishes on
        its old handler."""
        self.check_handlers(handlers)
        self.handlers = dict(handlers)

    def describe(self) -> list[dict[str, Any]]:
        """Every cron with its next time and counters, by id."""
        return [self.jobs[key].describe() for key in sorted(self.jobs)]

    # -- service ---------------------------------------------------------------

    def startService(self) -> None:
        """Schedule every cron from now."""
        super().startService()
        now = self.clock.seconds()
        for job in self.jobs.values():
            self._schedule(job, now)

    def stopService(self) -> None:
        """Cancel every pending time (runs in progress are not waited for)."""
        super().stopService()
        for job in self.jobs.values():
            self._cancel(job)

    # -- scheduling --------------------------------------------------------------

    def _cancel(self, job: CronJob) -> None:
        if job.call is not None and job.call.active():
            job.call.cancel()
        job.call = None
        job.next_time = None

    def _schedule(self, job: CronJob, after: float) -> None:
        due = job.spec.time.next_after(after)
        job.next_time = due
        job.call = self.clock.callLater(max(0.0, due - self.clock.seconds()), self._fire, job)

    def _fire(self, job: CronJob) -> None:
        due = job.next_time if job.next_time is not None else self.clock.seconds()
        job.call = None
        if self.jobs.get(job.spec.id) is not job:  # removed meanwhile
            return
        self._schedule(job, max(due, self.clock.seconds()))
        if job.running is not None:
            job.skipped += 1
            log.info(
                "cron {cron} on {server}: still running, its run due at {due} is skipped",
                cron=job.spec.id,
                server=self.server_id,
                due=datetime.fromtimestamp(due, tz=UTC).isoformat(),
            )
            return
        self._run(job)

    def _run(self, job: CronJob) -> None:
        job.runs += 1
        handler = self.handlers.get(job.spec.handler)
        method = getattr(handler, job.spec.method, None)
        if method is None:  # only if a handler lost it in place; check_action guards the rest
            self._failed(Failure(LookupError(f"action {job.spec.action!r} is gone")), job)
            return
        result = call_settled(method)
        if isinstance(result, Deferred):
            job.running = result
            result.addErrback(self._failed, job)
            result.addBoth(self._finished, job, result)

    def _finished(self, _: object, job: CronJob, run: Deferred[Any]) -> None:
        if job.running is run:
            job.running = None

    def _failed(self, failure: Failure, job: CronJob) -> None:
        job.failures += 1
        log.failure(
            "cron {cron} ({action}) on {server} failed; it keeps its schedule",
            failure,
            cron=job.spec.id,
            action=job.spec.action,
            server=self.server_id,
        )
