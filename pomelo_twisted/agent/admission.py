"""Which requests of one connection are taken: the rate limit and the in-flight bound.

A request over the rate limit is answered 429, one beyond ``max_inflight`` unanswered
requests 503 (see :mod:`pomelo_twisted.responses`); a notify over the rate limit is
dropped. The agent counts a request in flight while its answer is pending.
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

    __slots__ = ("_bucket", "inflight", "max_inflight", "metrics")

    def __init__(
        self, clock: IReactorTime, config: AgentConfig, metrics: ConnectionMetrics
    ) -> None:
        self.metrics = metrics
        self.max_inflight = config.max_inflight
        self.inflight = 0
        """Requests taken whose answer is pending."""
        self._bucket = (
            TokenBucket(clock, config.request_rate, config.request_burst)
            if config.request_rate is not None
            else None
        )

    def refuse_request(self) -> dict[str, Any] | None:
        """The error body refusing a new request (429 or 503), or None to take it."""
        bucket = self._bucket
        if bucket is not None and not bucket.take():
            self.metrics.rate_limited += 1
            return error_response(CODE_RATE_LIMITED, "request rate limit exceeded")
        if self.inflight >= self.max_inflight:
            return error_response(CODE_BUSY, "too many requests in flight")
        return None

    def admit_notify(self) -> bool:
        """Whether a notify is within the rate limit (counted as dropped if not)."""
        bucket = self._bucket
        if bucket is None or bucket.take():
            return True
        self.metrics.rate_limited += 1
        self.metrics.dropped["notify over the rate limit"] += 1
        return False

    def answered(self, result: object) -> object:
        """A request in flight was answered (a callback on its Deferred)."""
        self.inflight -= 1
        return result
