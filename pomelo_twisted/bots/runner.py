"""Runner: N bots of one scenario against one target, in this process.

Bot ``i`` (of ``bots`` in the whole run) connects ``i * ramp_up / bots`` seconds
after the start, so the bots arrive evenly over the ramp-up; a run with
several workers gives each worker its share of the indices and keeps the same
timetable. The run lasts ``duration`` seconds from the start: then
``bot.running`` turns False, scenarios get ``grace`` seconds to return, and
every connection still open is closed. A run whose bots have all finished
ends at once. Everything is counted in one :class:`~.stats.Stats`; time is
the reactor passed in (a ``Clock`` in tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..client import ClientError, PomeloClient, connect
from ..interfaces import IServerReactor
from .bot import Bot, BotContext, PushTimeout, RateLimiter
from .scenario import Scenario, run_scenario
from .stats import Stats

__all__ = ["Connector", "Runner"]

log = Logger()

#: How a runner connects a bot: ``connect(reactor, target, **options)``.
Connector = Callable[..., "Deferred[PomeloClient]"]

#: Failures that end a bot's scenario when its connection or the run ends.
_ENDINGS = (ClientError, PushTimeout)


class Runner:
    """Runs the bots ``indices`` (default: all ``bots``) of ``scenario`` against ``target``."""

    def __init__(
        self,
        reactor: IServerReactor,
        scenario: Scenario,
        target: str,
        *,
        bots: int,
        indices: Sequence[int] | None = None,
        ramp_up: float = 0.0,
        duration: float = 10.0,
        rate: float | None = None,
        seed: int = 0,
        request_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        grace: float = 2.0,
        user: Any = None,
        connector: Connector = connect,
        progress: Callable[[Runner], object] | None = None,
        progress_interval: float = 1.0,
    ) -> None:
        if bots < 1:
            raise ValueError("a run needs at least one bot")
        if ramp_up < 0 or not duration > 0:
            raise ValueError("the ramp-up must be >= 0 and the duration > 0")
        self.reactor = reactor
        self.scenario = scenario
        self.target = target
        self.bots = bots
        self.indices = list(range(bots) if indices is None else indices)
        self.ramp_up = ramp_up
        self.duration = duration
        self.seed = seed
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.grace = grace
        self.user = user
        self.connector = connector
        self.limiter = RateLimiter(reactor, rate) if rate else None
        self.stats = Stats()
        self.shared: dict[str, Any] = {}
        self.running = False
        self.started_at = 0.0
        self.clients: set[PomeloClient] = set()
        self._active = 0
        self._launched = 0
        self._timers: list[IDelayedCall] = []
        self._progress = progress
        self._progress_interval = progress_interval
        self._ticker: LoopingCall | None = None
        self.done: Deferred[Stats] = Deferred()

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return self.reactor.seconds() - self.started_at

    def run(self) -> Deferred[Stats]:
        """Start the run; fires with the stats once every bot has finished."""
        self.running = True
        self.started_at = self.reactor.seconds()
        for index in self.indices:
            delay = index * self.ramp_up / self.bots
            self._timers.append(self.reactor.callLater(delay, self._launch, index))
        self._timers.append(self.reactor.callLater(self.duration, self.finish))
        if self._progress is not None:
            self._ticker = LoopingCall(self._progress, self)
            self._ticker.clock = self.reactor
            self._ticker.start(self._progress_interval, now=False)
        return self.done

    def finish(self) -> None:
        """End the run: scenarios see ``running`` False; open connections close after grace."""
        if not self.running:
            return
        self.running = False
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers = [self.reactor.callLater(self.grace, self._close_all)]
        self._maybe_done()

    def _close_all(self) -> None:
        for client in list(self.clients):
            client.close()

    # -- one bot --------------------------------------------------------------------

    def _launch(self, index: int) -> None:
        if not self.running:
            return
        self._launched += 1
        self._active += 1
        self.stats.record_bot_started()
        d = self.connector(
            self.reactor,
            self.target,
            user=self.user,
            timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
        )
        d.addCallbacks(self._connected, self._connect_failed, callbackArgs=(index,))

    def _connect_failed(self, failure: Failure) -> None:
        self.stats.record_connection_failure()
        log.debug("bot connection failed: {error}", error=failure.getErrorMessage())
        self._bot_done()

    def _connected(self, client: PomeloClient, index: int) -> None:
        self.clients.add(client)
        self.stats.record_bot_connected()
        client.on_close(lambda _reason: self._disconnected(client))
        context = BotContext(
            index=index,
            bots=self.bots,
            clock=self.reactor,
            random=random.Random(self.seed * 1_000_003 + index),
            shared=self.shared,
        )
        bot = Bot(
            client,
            self.stats,
            context,
            limiter=self.limiter,
            request_timeout=self.request_timeout,
            is_running=lambda: self.running,
        )
        d = ensureDeferred(self._drive(bot, context))
        d.addBoth(lambda _: self._bot_done(client))

    async def _drive(self, bot: Bot, context: BotContext) -> None:
        try:
            await run_scenario(self.scenario, bot, context)
        except _ENDINGS as exc:
            if self.running and bot.client.connected:
                self.stats.record_scenario_error(type(exc).__name__)
        except Exception as exc:
            self.stats.record_scenario_error(type(exc).__name__)
            log.failure("scenario of bot {index} failed", index=context.index)
            del exc

    def _disconnected(self, client: PomeloClient) -> None:
        if client in self.clients:
            self.clients.discard(client)
            self.stats.record_bot_disconnected()

    def _bot_done(self, client: PomeloClient | None = None) -> None:
        self._active -= 1
        self.stats.record_bot_finished()
        if client is not None:
            if client.connected:
                client.close()
            self._disconnected(client)
        self._maybe_done()

    def _maybe_done(self) -> None:
        every_bot_done = self._active == 0 and self._launched == len(self.indices)
        if self.running and every_bot_done:
            self.finish()
            return
        if self.running or self._active or self.done.called:
            return
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self.done.callback(self.stats)
