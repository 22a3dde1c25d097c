"""A token bucket: the per-connection request rate limit."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; one token per request."""

    __slots__ = ("_at", "_tokens", "burst", "clock", "rate")

    def __init__(self, clock: IReactorTime, rate: float, burst: int) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = clock.seconds()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self.clock.seconds()
        tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True
