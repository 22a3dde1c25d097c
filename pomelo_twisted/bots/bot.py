"""Bot and BotContext: what a scenario works with.

A :class:`Bot` wraps one connected :class:`~pomelo_twisted.client.PomeloClient`
and counts everything it does in the run's :class:`~.stats.Stats`:

- ``await bot.request(route, msg)`` — the response body (error bodies such as
  ``{"code": 500, "msg": ...}`` included: they are counted as errors by code);
  a timeout or a closed connection raises, counted as ``timeout`` / ``closed``;
- ``bot.notify(route, msg)``;
- ``await bot.wait_push(route, timeout)`` — the next push on ``route`` (pushes
  that arrived before the call wait in a small inbox, oldest first);
- ``await bot.think(seconds)`` — pause on the run's clock;
- ``bot.count(name, n)`` — a counter of the scenario's own (summed over bots);
- ``bot.running`` — False once the run's duration is over: loop on it.

A :class:`BotContext` gives the bot's index (0..N-1 over every worker), the
number of bots, data shared by the bots of this process, a ``random.Random``
seeded from the run's seed and the index, and the clock.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import deferLater

from ..client import ConnectionClosed, PomeloClient, RequestTimeout
from ..errors import PomeloError
from .stats import Stats

__all__ = ["INBOX_LIMIT", "Bot", "BotContext", "PushTimeout", "RateLimiter", "error_kind"]

#: Pushes kept per route for wait_push (the oldest are dropped beyond it).
INBOX_LIMIT = 1000


class PushTimeout(PomeloError):
    """``wait_push`` saw no push on its route in time."""


def error_kind(body: object) -> str | None:
    """The error a response body reports: its ``code`` when it is 400 or more, else None."""
    if isinstance(body, dict):
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool) and code >= 400:
            return str(code)
    return None


class RateLimiter:
    """Paces requests to ``rate`` per second on ``clock`` (shared by the bots of a run)."""

    def __init__(self, clock: IReactorTime, rate: float) -> None:
        if not rate > 0:
            raise ValueError(f"the rate must be positive, not {rate!r}")
        self._clock = clock
        self._interval = 1.0 / rate
        self._next = 0.0

    def acquire(self) -> Deferred[None] | None:
        """None when a request may go now, else a Deferred firing at its turn."""
        now = self._clock.seconds()
        turn = max(now, self._next)
        self._next = turn + self._interval
        if turn <= now:
            return None
        return deferLater(self._clock, turn - now, lambda: None)


@dataclass
class BotContext:
    """What a scenario knows about its bot's place in the run."""

    index: int
    bots: int
    clock: IReactorTime
    random: random.Random
    shared: dict[str, Any] = field(default_factory=dict)


class Bot:
    """One connected client whose requests, notifies and pushes are counted."""

    def __init__(
        self,
        client: PomeloClient,
        stats: Stats,
        context: BotContext,
        *,
        limiter: RateLimiter | None = None,
        request_timeout: float | None = None,
        is_running: Callable[[], bool] = lambda: True,
    ) -> None:
        self.client = client
        self.stats = stats
        self.context = context
        self._limiter = limiter
        self._request_timeout = request_timeout
        self._is_running = is_running
        self._inbox: dict[str, deque[Any]] = {}
        self._waiters: dict[str, deque[Deferred[Any]]] = {}
        client.on_any_push(self._pushed)
        client.on_kick(stats.record_kick)

    @property
    def index(self) -> int:
        """The bot's index in the run."""
        return self.context.index

    @property
    def random(self) -> random.Random:
        """The bot's seeded random generator."""
        return self.context.random

    @property
    def running(self) -> bool:
        """True until the run's duration is over (and while the client is connected)."""
        return self._is_running() and self.client.connected

    async def request(
        self,
        route: str,
        msg: Any = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the client's deadline, on the reactor)
    ) -> Any:
        """Send a request; its response body (error bodies included, and counted)."""
        if self._limiter is not None:
            turn = self._limiter.acquire()
            if turn is not None:
                await turn
        clock = self.context.clock
        started = clock.seconds()
        seconds = self._request_timeout if timeout is None else timeout
        try:
            body = await self.client.request(route, {} if msg is None else msg, seconds)
        except RequestTimeout:
            self.stats.record_response(route, None, "timeout")
            raise
        except ConnectionClosed:
            if self._is_running():
                self.stats.record_response(route, None, "closed")
            raise
        self.stats.record_response(route, clock.seconds() - started, error_kind(body))
        return body

    def notify(self, route: str, msg: Any = None) -> None:
        """Send a notify (no response)."""
        self.stats.record_notify(route)
        self.client.notify(route, {} if msg is None else msg)

    def wait_push(self, route: str, timeout: float = 5.0) -> Deferred[Any]:
        """The next push on ``route``; ``PushTimeout`` after ``timeout`` seconds."""
        inbox = self._inbox.get(route)
        if inbox:
            d: Deferred[Any] = Deferred()
            d.callback(inbox.popleft())
            return d
        waiter: Deferred[Any] = Deferred()
        waiters = self._waiters.setdefault(route, deque())
        waiters.append(waiter)
        timer: IDelayedCall = self.context.clock.callLater(
            timeout, self._push_timed_out, route, waiter, timeout
        )
        waiter.addBoth(_cancel_timer, timer)
        return waiter

    def _push_timed_out(self, route: str, waiter: Deferred[Any], timeout: float) -> None:
        waiters = self._waiters.get(route)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
        waiter.errback(PushTimeout(f"no push on {route} within {timeout:g} s"))

    def _pushed(self, route: str, body: Any) -> None:
        self.stats.record_push(route)
        waiters = self._waiters.get(route)
        if waiters:
            waiters.popleft().callback(body)
            return
        inbox = self._inbox.setdefault(route, deque(maxlen=INBOX_LIMIT))
        inbox.append(body)

    def pending_pushes(self, route: str) -> int:
        """Pushes on ``route`` received and not yet taken by ``wait_push``."""
        return len(self._inbox.get(route, ()))

    def think(self, seconds: float) -> Deferred[None]:
        """Pause for ``seconds`` on the run's clock."""
        return deferLater(self.context.clock, max(0.0, seconds), lambda: None)

    def count(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the scenario's own counter ``name`` (reported summed)."""
        self.stats.record_counter(name, amount)


def _cancel_timer(result: object, timer: IDelayedCall) -> object:
    if timer.active():
        timer.cancel()
    return result
