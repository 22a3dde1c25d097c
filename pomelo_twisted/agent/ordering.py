"""Per-user ordering: the requests and notifies of one connection are handed to the
handler one after the other, in arrival order, end to end.

A request or notify whose result comes later (a Deferred: a forwarded request waiting
for its backend, a local handler waiting for a database) holds the connection's order
until it is answered; what the client sends meanwhile waits in a queue and is handed
over, in order, once it is. So a "buy" forwarded to one backend is answered before a
"sell" sent after it is even handed to another (pitaya #312's race cannot happen). A
request answered at once costs one check: no queue, no Deferred, no timer.

- **Timeout**: a held request that is not answered within ``order_timeout`` seconds is
  answered 504 (``"request timed out"``, through
  :func:`~pomelo_twisted.responses.failure_response`) and releases the queue; its late
  answer is dropped and counted (``ConnectionMetrics.late_answers``). A held notify
  releases the queue the same way (nothing to answer).
- **Concurrent routes** (``AgentConfig.concurrent_routes``, filled from handler methods
  marked :func:`~pomelo_twisted.handlers.concurrent`) opt out: they are handed over at
  once, even while another is held, and never hold the queue themselves.
- **Bounds**: a queued request still counts against ``max_inflight`` (the runner counts
  it when it queues it) and spent its rate-limit token on arrival; queued notifies are
  bounded by ``max_inflight`` too (one more is dropped and counted).
- **Turns**: at most ``slice_events`` queued ones are handed over in one reactor turn (as
  the slice reader bounds a read, :mod:`.reading`); the rest go on in the next turn, and
  what arrives meanwhile queues behind them.
- **Close**: closing the connection drops the queue (nothing queued is handed over).

``ordered: false`` in a frontend's connector settings turns it off: every request is
handed over as it arrives and answers may overtake each other.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..deadlines import DeadlineHandle, DeadlineScheduler
from ..errors import RequestTimeout
from ..interfaces import IAgent
from ..protocol import Notify, Request
from ..responses import TIMED_OUT, failure_response
from .config import AgentConfig
from .metrics import ConnectionMetrics

__all__ = ["DROPPED_NOTIFY", "OrderMaker", "RequestOrder", "order_maker"]

DROPPED_NOTIFY = "notify over the ordering queue bound"

log = Logger()


class _Runner(Protocol):
    """What the order hands events back to (the :class:`.RequestRunner`)."""

    agent: IAgent

    def run_request(self, event: Request, queued: bool) -> None: ...
    def run_notify(self, event: Notify) -> None: ...
    def answer(self, msg_id: int, body: object) -> None: ...


class RequestOrder:
    """The order of one connection's requests and notifies (see the module)."""

    __slots__ = (
        "_closed",
        "_current",
        "_deadline",
        "_deadlines",
        "_draining",
        "_held",
        "_held_since",
        "_issued",
        "_queue",
        "_resume",
        "busy",
        "clock",
        "concurrent",
        "max_queued",
        "metrics",
        "runner",
        "slice_events",
        "timeout",
    )

    def __init__(
        self,
        runner: _Runner,
        clock: IReactorTime,
        deadlines: DeadlineScheduler,
        metrics: ConnectionMetrics,
        *,
        timeout: float,
        concurrent: frozenset[str],
        max_queued: int,
        slice_events: int,
    ) -> None:
        self.runner = runner
        self.clock = clock
        self.slice_events = slice_events
        self.metrics = metrics
        self.timeout = timeout
        self.concurrent = concurrent
        """Routes that neither wait nor hold the queue."""
        self.max_queued = max_queued
        self.busy = False
        """Whether what arrives now is queued: one holds the order, or queued ones wait
        for the next turn."""
        self._deadlines = deadlines
        self._deadline: DeadlineHandle | None = None
        self._queue: deque[Request | Notify] | None = None
        """What waits, made on first use: most connections never queue (memory per idle
        connection: a deque is 600 bytes)."""
        self._current = 0
        """The token of the held one (0: none); a settled one with another token is late."""
        self._held: tuple[int, str] = (0, "")
        """The message id (0: a notify) and route of the held one."""
        self._held_since = 0.0
        """When the held one was handed over (clock time)."""
        self._issued = 0
        self._draining = False
        self._resume: IDelayedCall | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Requests and notifies queued (the held one not included)."""
        return len(self._queue) if self._queue is not None else 0

    def hold(self, event: Request | Notify) -> bool:
        """Called while ``busy``: True when ``event`` is queued behind what holds the order
        (or dropped: a notify over the bound, counted); False when it is not to wait (a
        concurrent route: the runner hands it over now)."""
        if event.route in self.concurrent:
            return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if isinstance(event, Notify) and len(queue) >= self.max_queued:
            self.metrics.dropped[DROPPED_NOTIFY] += 1
            return True
        queue.append(event)
        return True

    def follows(self, route: str) -> bool:
        """Whether a request or notify of ``route`` whose result comes later holds the order."""
        return route not in self.concurrent

    def wait(self, result: Deferred[Any], msg_id: int, route: str) -> None:
        """Hold the order until ``result`` settles; for a request (``msg_id`` not 0) answer
        it then, or with 504 at the timeout."""
        self._issued += 1
        token = self._current = self._issued
        self._held = (msg_id, route)
        self.busy = True
        self._held_since = now = self.clock.seconds()
        # One deadline per connection, re-armed lazily when it passes (as the agent's idle
        # deadline is): a stream of quick answers adds and cancels nothing.
        if self._deadline is None:
            self._deadline = self._deadlines.add_at(now + self.timeout, self, 0)
        result.addBoth(self._settled, token, msg_id, route)

    def _settled(self, result: object, token: int, msg_id: int, route: str) -> None:
        if token != self._current:  # timed out already, or the connection closed
            if self._closed:
                if msg_id:  # as the runner counts an answer the closed connection refuses
                    self.metrics.responses_dropped += 1
                return None
            if msg_id:
                self.metrics.late_answers += 1
                if isinstance(result, Failure):
                    log.debug(
                        "late failure of request {route} dropped: {error}",
                        route=route,
                        error=result.getErrorMessage(),
                    )
            return None
        self._release()
        if msg_id:
            self.runner.answer(
                msg_id, failure_response(result, route) if isinstance(result, Failure) else result
            )
        self._next()
        return None

    def deadline_passed(self, kind: int, now: float) -> None:
        """The connection's order deadline came: the held one, if it has held the order
        for ``order_timeout``, is timed out; else the deadline moves to its due time."""
        self._deadline = None
        if self._current == 0:  # nothing held: the next wait arms it again
            return
        due = self._held_since + self.timeout
        if due > now:
            self._deadline = self._deadlines.add_at(due, self, 0)
            return
        self._current = 0
        self.busy = False
        self.metrics.ordering_timeouts += 1
        msg_id, route = self._held
        log.info(
            "{agent}: {route} held the order over {timeout}s: the next goes on",
            agent=self.runner.agent,
            route=route,
            timeout=self.timeout,
        )
        if msg_id:
            self.runner.answer(msg_id, failure_response(Failure(RequestTimeout(TIMED_OUT)), route))
        self._next()

    def _release(self) -> None:
        self._current = 0
        self.busy = False

    def _next(self) -> None:
        """Hand over what waits, in order, until one holds the order again (at most
        ``slice_events`` in this turn: the rest go on in the next)."""
        if self._draining:  # settled at once, inside the loop below: it goes on
            return
        queue = self._queue
        if not queue:
            return
        self._draining = True
        runner = self.runner
        handed = 0
        try:
            while queue and not self.busy:
                if handed == self.slice_events:
                    self.busy = True
                    self._resume = self.clock.callLater(0, self._resumed)
                    return
                handed += 1
                event = queue.popleft()
                if isinstance(event, Request):
                    runner.run_request(event, True)
                else:
                    runner.run_notify(event)
        finally:
            self._draining = False

    def _resumed(self) -> None:
        self._resume = None
        self.busy = False
        self._next()

    def close(self) -> None:
        """The connection closed: drop the queue (nothing queued is handed over), forget
        the held one (its answer has no one to go to) and stop its timer."""
        self._closed = True
        self._release()
        if self._queue is not None:
            self._queue.clear()
        deadline = self._deadline
        if deadline is not None:
            self._deadlines.cancel(deadline)
            self._deadline = None
        resume = self._resume
        if resume is not None:
            resume.cancel()
            self._resume = None


class OrderMaker:
    """Makes a connection's :class:`RequestOrder` when it first needs one (a result that
    comes later): a listener's connections share one maker, and a connection whose
    requests are all answered at once (or an idle one) never holds an order."""

    __slots__ = ("clock", "config", "deadlines", "metrics")

    def __init__(
        self,
        clock: IReactorTime,
        deadlines: DeadlineScheduler,
        config: AgentConfig,
        metrics: ConnectionMetrics,
    ) -> None:
        self.clock = clock
        self.deadlines = deadlines
        self.config = config
        self.metrics = metrics

    def make(self, runner: _Runner) -> RequestOrder:
        """The order of ``runner``'s connection."""
        config = self.config
        return RequestOrder(
            runner,
            self.clock,
            self.deadlines,
            self.metrics,
            timeout=config.order_timeout,
            concurrent=config.concurrent_routes,
            max_queued=config.max_inflight,
            slice_events=config.slice_events,
        )


def order_maker(
    clock: IReactorTime,
    deadlines: DeadlineScheduler,
    config: AgentConfig,
    metrics: ConnectionMetrics,
) -> OrderMaker | None:
    """The maker of the orders of connections under ``config`` (None: ``ordered`` is off)."""
    if not config.ordered:
        return None
    return OrderMaker(clock, deadlines, config, metrics)
