"""Holding the calls to a peer that restarts on purpose (a rolling restart).

When discovery says a peer is ``restarting`` (drained by the master to be spawned
again, not crashed), :class:`CallHolds` keeps the calls made to it from then on instead
of sending them to a process about to exit, or failing them: each waits until the peer's
link logs in again (its next incarnation), then is sent. A hold ends when the link is up
again, when the peer is removed or crashes for good (``release``), or after its limit;
each held call also ends at its own deadline. What is waited for never grows without
bound: the hold limit (setting ``rpc_hold_limit``, default :data:`HOLD_LIMIT`) caps it.

``hold`` answers once no call to the peer is in flight any more (the calls sent before
the hold have been answered, or after ``settle`` seconds): the master waits for every
server's answer before the restarting server counts what it still serves.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from ..errors import RpcTimeout
from .calls import call_label

__all__ = ["HOLD_LIMIT", "CallHolds"]

log = Logger()

#: Seconds calls to a restarting peer are held at most unless configured.
HOLD_LIMIT = 30.0
#: Seconds between two looks at a peer's calls in flight while settling.
SETTLE_POLL = 0.01

Send = Callable[[str, str, str, Sequence[Any], float], Deferred[Any]]


class _Hold:
    __slots__ = ("held", "since", "timer")

    def __init__(self, since: float) -> None:
        self.since = since
        self.held: list[Deferred[bool]] = []
        self.timer: IDelayedCall | None = None


class CallHolds:
    """The holds of one transport, by peer id (see the module docstring).

    ``in_flight(peer)`` counts the calls sent to ``peer`` and not answered;
    ``link_up(peer, timeout)`` fires True once the peer's link is up (False after
    ``timeout``); ``send`` sends a call (the transport's own ``call``)."""

    def __init__(
        self,
        clock: IReactorTime,
        in_flight: Callable[[str], int],
        link_up: Callable[[str, float], Deferred[bool]],
        send: Send,
        limit: float = HOLD_LIMIT,
    ) -> None:
        self._clock = clock
        self._in_flight = in_flight
        self._link_up = link_up
        self._send = send
        self.limit = limit
        #: The held peers (a dict: the transport's hot path tests it for emptiness).
        self.peers: dict[str, _Hold] = {}
        self._holds = self.peers
        #: Calls held so far (each counted once).
        self.held_calls = 0

    def __bool__(self) -> bool:
        return bool(self._holds)

    def __contains__(self, peer: object) -> bool:
        return peer in self._holds

    def holding(self) -> list[str]:
        """The peers held now, sorted."""
        return sorted(self._holds)

    def hold(self, peer: str, settle: float) -> Deferred[int]:
        """Hold new calls to ``peer`` (for at most :attr:`limit` seconds); fires with the
        number of its calls still in flight once there are none, or after ``settle``."""
        if peer not in self._holds:
            hold = self._holds[peer] = _Hold(self._clock.seconds())
            hold.timer = self._clock.callLater(self.limit, self._expired, peer, hold)
            log.info("holding calls to {peer} while it restarts", peer=peer)
        return self._settled(peer, self._clock.seconds() + settle)

    def _settled(self, peer: str, until: float) -> Deferred[int]:
        left = self._in_flight(peer)
        if left == 0 or self._clock.seconds() >= until:
            return succeed(left)
        d: Deferred[int] = Deferred()

        def look() -> None:
            self._settled(peer, until).chainDeferred(d)

        self._clock.callLater(SETTLE_POLL, look)
        return d

    def _expired(self, peer: str, hold: _Hold) -> None:
        hold.timer = None
        if self._holds.get(peer) is hold:
            log.info(
                "calls to {peer} held for {limit}s (the hold limit): sending them now",
                peer=peer,
                limit=self.limit,
            )
            self._end(peer, True)

    def release(self, peer: str, back: bool = True) -> None:
        """End the hold of ``peer``: its held calls are sent (``back``: its link is up
        again) or sent to fail as a call to an unavailable peer does."""
        if peer in self._holds:
            self._end(peer, back)

    def _end(self, peer: str, back: bool) -> None:
        hold = self._holds.pop(peer)
        if hold.timer is not None and hold.timer.active():
            hold.timer.cancel()
        waiting, hold.held = hold.held, []
        if waiting:
            log.info("sending {count} held calls to {peer}", count=len(waiting), peer=peer)
        for waiter in waiting:
            waiter.callback(back)

    def call(
        self, peer: str, service: str, method: str, args: Sequence[Any], timeout: float
    ) -> Deferred[Any]:
        """Hold a call to a held ``peer``: sent once the hold ends and the link is up,
        within ``timeout`` seconds of now (an RpcTimeout otherwise)."""
        hold = self._holds[peer]
        self.held_calls += 1
        context = contextvars.copy_context()  # the call context and deadline of the caller
        began = self._clock.seconds()
        released: Deferred[bool] = Deferred()
        hold.held.append(released)

        def left() -> float:
            return timeout - (self._clock.seconds() - began)

        def timed_out(result: object, _timeout: float) -> bool:
            if released in hold.held:
                hold.held.remove(released)
            return False

        def wait_link(back: bool) -> Deferred[bool] | bool:
            remaining = left()
            if not back or not remaining > 0:
                return back
            return self._link_up(peer, remaining)

        def send(_: object) -> Deferred[Any]:
            remaining = left()
            if not remaining > 0:
                label = call_label(peer, service, method)
                raise RpcTimeout(f"{label}: held {timeout:g}s while {peer} restarted")
            return context.run(self._send, peer, service, method, args, remaining)

        released.addTimeout(timeout, self._clock, onTimeoutCancel=timed_out)
        released.addCallback(wait_link)
        return released.addCallback(send)
