"""The drain of one server, step by step, on an injected clock.

1. close the client listener (a frontend): no new connections, the open ones stay;
2. tell discovery the server leaves (the master publishes it ``draining`` or
   ``restarting``, and answers once every other server has ended its calls to it);
3. let the requests and calls in flight finish, for at most the grace (seconds,
   counted from the start of the drain);
4. kick every client still connected with :data:`KICK_RESTARTING` (a Pomelo kick
   package with that reason), and wait (at most :data:`KICK_WAIT` seconds) until their
   connections are closed and the calls their close made (leaving rooms) are answered;
5. hand the server's state to its next incarnation.

Each step is a callable given to :class:`DrainSequence`, so each can be tested alone;
:mod:`pomelo_twisted.drain.component` builds them from an Application. A drain runs
once: asking again gives the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["DRAIN_GRACE", "KICK_RESTARTING", "DrainSequence"]

log = Logger()

#: The reason of the kick a drained server's clients get.
KICK_RESTARTING = "server restarting"
#: Seconds a drain waits for the requests in flight unless configured (``drain_grace``).
DRAIN_GRACE = 5.0
#: Seconds between two counts of the requests in flight.
POLL = 0.01
#: Seconds the kicked clients' connections (and the calls their close makes) may take.
KICK_WAIT = 2.0
#: Seconds beyond the grace that discovery may take to answer the announcement.
ANNOUNCE_SLACK = 1.0


class DrainSequence:
    """The steps of a drain (see the module docstring).

    ``close_listener()`` may return a Deferred; ``announce(grace)`` fires with the state
    discovery published (``""``: none); ``in_flight()`` counts what is still being
    served; ``kick_all(reason)`` kicks every client and returns how many;
    ``hand_off()`` writes the state and returns how many bytes.
    """

    def __init__(
        self,
        clock: IReactorTime,
        server_id: str,
        *,
        close_listener: Callable[[], object],
        announce: Callable[[float], Deferred[str]],
        in_flight: Callable[[], int],
        kick_all: Callable[[str], int],
        hand_off: Callable[[], int],
        remaining: Callable[[], int] = lambda: 0,
        kick_wait: float = KICK_WAIT,
    ) -> None:
        self.clock = clock
        self.server_id = server_id
        self._close_listener = close_listener
        self._announce = announce
        self._in_flight = in_flight
        self._kick_all = kick_all
        self._hand_off = hand_off
        self._remaining = remaining
        self.kick_wait = kick_wait
        self._result: Deferred[dict[str, Any]] | None = None
        self._report: dict[str, Any] = {}
        #: The step the drain is at: ``idle``, ``closing``, ``announcing``,
        #: ``finishing``, ``kicking``, ``handing off``, ``drained``.
        self.step = "idle"

    @property
    def started(self) -> bool:
        """Whether the drain has begun."""
        return self._result is not None

    def run(self, grace: float) -> Deferred[dict[str, Any]]:
        """Drain (once); fires with the report: ``state``, ``waited`` (seconds),
        ``left`` (still in flight at the end of the grace), ``kicked``, ``handoff``
        (bytes)."""
        if self._result is not None:
            return self._observe()
        if not grace >= 0:
            raise ValueError(f"the drain grace must be 0 or more seconds, not {grace!r}")
        self._result = Deferred()
        began = self.clock.seconds()
        until = began + grace
        log.info("{server}: draining (grace {grace}s)", server=self.server_id, grace=grace)
        self.step = "closing"
        d: Deferred[Any] = maybeDeferred(self._close_listener)
        d.addCallback(self._announcing, grace)
        d.addCallback(self._finishing, until)
        d.addCallback(self._kicking, began)
        d.addCallback(self._closing)
        d.addCallback(self._handing_off)
        d.addBoth(self._done)
        return self._observe()

    def _observe(self) -> Deferred[dict[str, Any]]:
        assert self._result is not None
        if self._result.called:
            return succeed(dict(self._report))
        observer: Deferred[dict[str, Any]] = Deferred()

        def relay(report: dict[str, Any]) -> dict[str, Any]:
            observer.callback(dict(report))
            return report

        self._result.addCallback(relay)
        return observer

    def _announcing(self, _: object, grace: float) -> Deferred[None]:
        self.step = "announcing"
        answer = self._announce(grace)

        def unanswered(_result: object, _timeout: float) -> str:
            log.info(
                "{server}: discovery did not answer within {grace}s; draining anyway",
                server=self.server_id,
                grace=grace,
            )
            return ""

        # A peer that never answers (stopped, hung) cannot keep this server from leaving.
        answer.addTimeout(grace + ANNOUNCE_SLACK, self.clock, onTimeoutCancel=unanswered)
        d: Deferred[None] = answer.addCallback(self._announced)
        return d

    def _announced(self, state: str) -> None:
        self._report["state"] = state or "draining"
        log.info(
            "{server}: the cluster knows it is {state}",
            server=self.server_id,
            state=self._report["state"],
        )

    def _finishing(self, _: object, until: float) -> Deferred[int]:
        self.step = "finishing"
        return self._until_zero(self._in_flight, until)

    def _until_zero(self, count: Callable[[], int], until: float) -> Deferred[int]:
        """Fires with ``count()`` once it is 0, or at ``until`` (seconds of the clock)."""
        d: Deferred[int] = Deferred()

        def look() -> None:
            left = count()
            if left == 0 or self.clock.seconds() >= until:
                d.callback(left)
            else:
                self.clock.callLater(POLL, look)

        look()
        return d

    def _closing(self, _: object) -> Deferred[None]:
        self.step = "closing connections"
        d = self._until_zero(self._remaining, self.clock.seconds() + self.kick_wait)
        return d.addCallback(lambda _: None)

    def _kicking(self, left: int, began: float) -> None:
        self._report["left"] = left
        self._report["waited"] = round(self.clock.seconds() - began, 3)
        if left:
            log.info(
                "{server}: {left} requests still in flight at the end of the grace",
                server=self.server_id,
                left=left,
            )
        self.step = "kicking"
        self._report["kicked"] = self._kick_all(KICK_RESTARTING)

    def _handing_off(self, _: object) -> None:
        self.step = "handing off"
        self._report["handoff"] = self._hand_off()

    def _done(self, result: object) -> None:
        assert self._result is not None
        if isinstance(result, Failure):
            log.failure("{server}: the drain failed", result, server=self.server_id)
            self._report["error"] = result.getErrorMessage()
        self.step = "drained"
        log.info(
            "{server}: drained ({kicked} clients kicked, {left} requests left)",
            server=self.server_id,
            kicked=self._report.get("kicked", 0),
            left=self._report.get("left", 0),
        )
        self._result.callback(self._report)
