"""Which requests of one connection are taken: the rate limit and the in-flight bound.

A request over the rate limit is answered 429, one beyond ``max_inflight`` unanswered
requests 503 (see :mod:`pomelo_twisted.responses`); a notify over the rate limit is
dropped. The agent counts a request in flight while its answer is pending.

Refusals are counted in fixed windows of ``refusal_window`` seconds: more than
``max_refusals`` in one window makes ``persistent`` true, and the agent kicks the
client. A package the protocol state ignores spends a token like a request
(``charge_ignored``); one over the limit is a refusal too.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime

from ..errors import error_response
from ..responses import CODE_BUSY, CODE_RATE_LIMITED
from .config import AgentConfig
from .metrics import ConnectionMetrics
from .ratelimit import TokenBucket

__all__ = ["Admission"]


class Admission:
    """The admission rules of one connection, from its ``AgentConfig``."""

    __slots__ = (
        "_bucket",
        "_clock",
        "_max_refusals",
        "_refusal_window",
        "_refusals",
        "_window_start",
        "inflight",
        "max_inflight",
        "metrics",
    )

    def __init__(
        self, clock: IReactorTime, config: AgentConfig, metrics: ConnectionMetrics
    ) -> None:
        self.metrics = metrics
        self.max_inflight = config.max_inflight
        self.inflight = 0
        """Requests taken whose answer is pending."""
        self._clock = clock
        self._max_refusals = config.max_refusals
        self._refusal_window = config.refusal_window
        self._refusals = 0
        self._window_start = 0.0
        self._bucket = (
            TokenBucket(clock, config.request_rate, config.request_burst)
            if config.request_rate is not None
            else None
        )

    def refuse_request(self) -> dict[str, Any] | None:
        """The error body refusing a new request (429 or 503), or None to take it."""
        bucket = self._bucket
        if bucket is not None and not bucket.take():
            self._refused()
            return error_response(CODE_RATE_LIMITED, "request rate limit exceeded")
        if self.inflight >= self.max_inflight:
            return error_response(CODE_BUSY, "too many requests in flight")
        return None

    def admit_notify(self) -> bool:
        """Whether a notify is within the rate limit (counted as dropped if not)."""
        bucket = self._bucket
        if bucket is None or bucket.take():
            return True
        self._refused()
        self.metrics.dropped["notify over the rate limit"] += 1
        return False

    def charge_ignored(self) -> None:
        """An ignored package spends a token (a refusal when there is none)."""
        bucket = self._bucket
        if bucket is not None and not bucket.take():
            self._refused()

    @property
    def persistent(self) -> bool:
        """Whether the client went on over the limit: more than ``max_refusals`` refusals
        in the current window."""
        return self._refusals > self._max_refusals

    def _refused(self) -> None:
        self.metrics.rate_limited += 1
        now = self._clock.seconds()
        if now - self._window_start >= self._refusal_window:
            self._window_start = now
            self._refusals = 0
        self._refusals += 1

    def answered(self, result: object) -> object:
        """A request in flight was answered (a callback on its Deferred)."""
        self.inflight -= 1
        return result
