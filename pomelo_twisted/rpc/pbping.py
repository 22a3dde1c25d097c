"""Hung peer detection: a logged-in PB connection pings its peer and notices silence.

A peer that is stopped (SIGSTOP), stuck in a long computation or stops reading keeps
its TCP connection open: without a probe, every call to it waits for its deadline.
:class:`Pinger` sends a tiny Banana message ``[b"ping", n]`` every ``interval`` seconds
(default 1) on the connection; the peer's broker answers ``[b"pong", n]`` at once
(:func:`answer_ping`, a broker verb, see :func:`~pomelo_twisted.compat.add_broker_verb`).
When no pong came for ``timeout`` seconds (default 3), the peer is *not answering*:
``on_state(False)``; the first pong after that: ``on_state(True)``. The deadline is
re-armed at every pong, so a peer is declared silent ``timeout`` seconds after its
last answer, whatever the phase of the pings. A deadline that fires more than one
``interval`` late says that this process stalled (SIGSTOP, a long computation), not its
peer: the pong may be waiting unread, so the peer gets ``timeout`` seconds more.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.spread import pb

__all__ = ["PING_INTERVAL", "PING_TIMEOUT", "Pinger", "answer_ping"]

#: Seconds between two pings of a logged-in peer.
PING_INTERVAL = 1.0
#: Seconds without a pong after which a peer is not answering.
PING_TIMEOUT = 3.0


def answer_ping(broker: pb.Broker, *args: object) -> None:
    """The ``ping`` verb: answer ``[b"pong", n]`` (an int token, else nothing)."""
    if len(args) == 1 and type(args[0]) is int:
        broker.sendEncoded([b"pong", args[0]])


class Pinger:
    """Pings a peer through ``send(n)`` on ``clock``; ``on_state(answering)`` on changes.

    Feed it the peer's pongs with :meth:`pong`. ``answering`` is the current state.
    """

    def __init__(
        self,
        clock: IReactorTime,
        send: Callable[[int], None],
        on_state: Callable[[bool], None],
        interval: float = PING_INTERVAL,
        timeout: float = PING_TIMEOUT,
    ) -> None:
        if not interval > 0 or not timeout > 0:
            raise ValueError(f"ping interval and timeout must be positive: {interval}, {timeout}")
        self._clock = clock
        self._send = send
        self._on_state = on_state
        self.interval = interval
        self.timeout = timeout
        self.answering = True
        self.sent = 0
        self._tick: IDelayedCall | None = None
        self._deadline: IDelayedCall | None = None
        self._due = 0.0

    def start(self) -> None:
        """Start pinging (the peer counts as answering until ``timeout`` of silence)."""
        if self._tick is not None:
            return
        self._tick = self._clock.callLater(self.interval, self._ping)
        self._arm()

    def stop(self) -> None:
        """Stop pinging (the connection is gone)."""
        for call in (self._tick, self._deadline):
            if call is not None and call.active():
                call.cancel()
        self._tick = self._deadline = None

    def pong(self, token: object) -> None:
        """A pong from the peer: it answers."""
        if type(token) is not int or self._tick is None:
            return
        deadline = self._deadline
        if deadline is not None and deadline.active():
            deadline.reset(self.timeout)
            self._due = self._clock.seconds() + self.timeout
        else:
            self._arm()
        if not self.answering:
            self.answering = True
            self._on_state(True)

    def _ping(self) -> None:
        self.sent += 1
        self._tick = self._clock.callLater(self.interval, self._ping)
        self._send(self.sent)

    def _arm(self) -> None:
        self._due = self._clock.seconds() + self.timeout
        self._deadline = self._clock.callLater(self.timeout, self._silent)

    def _silent(self) -> None:
        self._deadline = None
        if self._clock.seconds() - self._due > self.interval:
            self._arm()  # we were stalled, not the peer: its pong may be unread
            return
        if self.answering:
            self.answering = False
            self._on_state(False)
