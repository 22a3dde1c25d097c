"""Circuit breakers: calls to a peer that keeps failing fail fast for a while.

One :class:`CircuitBreaker` per peer server, kept by the network transport
(:class:`~pomelo_twisted.rpc.pb.PbRpcTransport`) in a :class:`BreakerBoard`:

- **closed** (normal): calls go out; ``failures`` consecutive failures open it. A
  failure is a call that could not be sent because the peer is not connected or down
  (a connect error), that timed out, or whose connection was lost before the answer.
  Any answer (a result, the remote's ``HandlerError`` or another error of the remote)
  is a success: the peer is alive, its application errors are not its link's;
- **open**: calls fail at once with :class:`~pomelo_twisted.errors.CircuitOpen` (an
  ``RpcError``; a client is answered 503) until ``cool_down`` seconds have passed;
- **half-open**: the next call is let through as a probe (the others still fail fast);
  its success closes the breaker, its failure opens it again for another cool-down. A
  probe cancelled by its caller lets the next call probe.

Interplay with :mod:`~pomelo_twisted.rpc.pbping`: the connection to a peer knows first
when the peer is gone or hung (no answer to its pings within ``ping_timeout``). Calls to
such a peer fail fast whatever the breaker says (``PeerUnavailable``: "the server is
down"), and count as failures, so the breaker shows in ``list`` that the peer is
failing. When the connection logs in again, or the peer answers its pings again, its
breaker closes: the connection's evidence is newer than the breaker's. The breaker adds
what the pings cannot see: a peer that answers pings but whose calls time out
(overloaded, a blocking remote) is given ``cool_down`` seconds of rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

__all__ = [
    "BREAKER_COOL_DOWN",
    "BREAKER_FAILURES",
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "BreakerBoard",
    "BreakerSettings",
    "CircuitBreaker",
]

log = Logger()

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

BREAKER_FAILURES = 5
"""Consecutive failures that open a breaker (the ``rpc_breaker_failures`` setting)."""

BREAKER_COOL_DOWN = 5.0
"""Seconds an open breaker fails calls fast before it lets a probe through (the
``rpc_breaker_cool_down`` setting)."""


class BreakerSettings:
    """How many consecutive failures open a breaker, and how long it stays open."""

    __slots__ = ("cool_down", "failures")

    def __init__(
        self, failures: int = BREAKER_FAILURES, cool_down: float = BREAKER_COOL_DOWN
    ) -> None:
        if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
            raise ValueError(f"rpc_breaker_failures must be a positive integer, not {failures!r}")
        if not isinstance(cool_down, int | float) or not cool_down > 0:
            raise ValueError(f"rpc_breaker_cool_down must be a positive number, not {cool_down!r}")
        self.failures = failures
        self.cool_down = float(cool_down)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> BreakerSettings:
        """The ``rpc_breaker_failures`` and ``rpc_breaker_cool_down`` settings (defaults
        for those missing); ``ValueError`` naming the setting that is wrong."""
        return cls(
            settings.get("rpc_breaker_failures", BREAKER_FAILURES),
            settings.get("rpc_breaker_cool_down", BREAKER_COOL_DOWN),
        )


class CircuitBreaker:
    """The breaker of calls to one peer (see the module); ``clock`` times the cool-down."""

    __slots__ = (
        "_clock",
        "_opened_at",
        "_probing",
        "consecutive",
        "opened",
        "peer",
        "rejected",
        "settings",
        "state",
    )

    def __init__(self, peer: str, clock: IReactorTime, settings: BreakerSettings) -> None:
        self.peer = peer
        self._clock = clock
        self.settings = settings
        self.state = CLOSED
        #: Consecutive failures while closed.
        self.consecutive = 0
        #: Times it opened (closed -> open, or a failed probe).
        self.opened = 0
        #: Calls it failed fast.
        self.rejected = 0
        self._opened_at = 0.0
        self._probing = False

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.peer} {self.state}>"

    def allow(self) -> bool:
        """May a call go out now? False (counted in ``rejected``) while open, and while
        half-open with its probe in flight; the first call after the cool-down is the
        probe."""
        state = self.state
        if state is CLOSED:
            return True
        if state is OPEN:
            if self._clock.seconds() - self._opened_at < self.settings.cool_down:
                self.rejected += 1
                return False
            self.state = HALF_OPEN
            log.info("circuit breaker of {peer} half-open: probing", peer=self.peer)
        if self._probing:
            self.rejected += 1
            return False
        self._probing = True
        return True

    def success(self) -> None:
        """A call was answered: the peer works."""
        if self.state is not CLOSED:
            log.info("circuit breaker of {peer} closed: the probe succeeded", peer=self.peer)
            self.state = CLOSED
            self._probing = False
        self.consecutive = 0

    def failure(self) -> None:
        """A call could not be sent, timed out or lost its connection."""
        if self.state is CLOSED:
            self.consecutive += 1
            if self.consecutive < self.settings.failures:
                return
            log.warn(
                "circuit breaker of {peer} open after {n} consecutive failures",
                peer=self.peer,
                n=self.consecutive,
            )
        elif self.state is HALF_OPEN:
            log.info("circuit breaker of {peer} open again: the probe failed", peer=self.peer)
        else:
            return  # open: a call let through before it opened failed too
        self.state = OPEN
        self.opened += 1
        self._probing = False
        self._opened_at = self._clock.seconds()

    def abandoned(self) -> None:
        """A call let through ended without an outcome (its caller cancelled it): if it
        was the probe, the next call probes."""
        if self.state is HALF_OPEN:
            self._probing = False

    def reset(self) -> None:
        """The connection to the peer came up (again): closed, whatever it was."""
        if self.state is not CLOSED:
            log.info("circuit breaker of {peer} closed: the peer is up again", peer=self.peer)
        self.state = CLOSED
        self.consecutive = 0
        self._probing = False

    def snapshot(self) -> dict[str, Any]:
        """The state and counters as plain data."""
        return {
            "state": self.state,
            "consecutive": self.consecutive,
            "opened": self.opened,
            "rejected": self.rejected,
        }


class BreakerBoard:
    """The breakers of every peer of one transport, with one :class:`BreakerSettings`."""

    __slots__ = ("_breakers", "_clock", "settings")

    def __init__(self, clock: IReactorTime, settings: BreakerSettings | None = None) -> None:
        self._clock = clock
        self.settings = settings or BreakerSettings()
        self._breakers: dict[str, CircuitBreaker] = {}

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(self._breakers.values())

    def configure(self, settings: BreakerSettings) -> None:
        """Use ``settings`` from now on (for every breaker, existing ones included)."""
        self.settings = settings
        for breaker in self._breakers.values():
            breaker.settings = settings

    def of(self, peer: str) -> CircuitBreaker:
        """The breaker of ``peer`` (a closed one on first use)."""
        breaker = self._breakers.get(peer)
        if breaker is None:
            breaker = self._breakers[peer] = CircuitBreaker(peer, self._clock, self.settings)
        return breaker

    def forget(self, peer: str) -> None:
        """``peer`` left the cluster: drop its breaker."""
        self._breakers.pop(peer, None)

    def states(self) -> dict[str, str]:
        """Each peer's breaker state, by peer id."""
        return {peer: b.state for peer, b in sorted(self._breakers.items())}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Each peer's breaker state and counters, by peer id."""
        return {peer: b.snapshot() for peer, b in sorted(self._breakers.items())}
