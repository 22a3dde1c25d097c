"""The caller side of one peer of :class:`~pomelo_twisted.rpc.pb.PbRpcTransport`.

:class:`Peer` is a peer server: its address, its persistent connection and its circuit
breaker. :class:`Channel` holds the calls made over one logged-in connection to it,
batched per reactor turn and kept by id until answered. :class:`PbCall` is one of those
calls; its outcome feeds the peer's breaker (an answer is a success; a timeout or a lost
connection a failure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail

from ..errors import HandlerError, RpcError, RpcTimeout
from ..gameconfig import ServerInfo
from .batcher import TurnBatcher
from .breaker import CircuitBreaker
from .calls import RpcCall
from .metrics import RpcCounters
from .payload import ERROR, HANDLER_ERROR, OK, TIMEOUT
from .pbconnection import LoginBroker, PersistentLogin

__all__ = ["Channel", "PbCall", "Peer", "not_sent"]


class Peer:
    """One peer server: its address, the connection to it, the calls on that connection."""

    __slots__ = ("breaker", "channel", "connection", "info", "wire_version")

    def __init__(
        self, info: ServerInfo, connection: PersistentLogin, breaker: CircuitBreaker
    ) -> None:
        self.info = info
        self.connection = connection
        self.breaker = breaker
        self.channel: Channel | None = None
        #: The RPC wire version agreed on the current link (:mod:`.wireversion`).
        self.wire_version = 1


class Channel:
    """The calls made over one logged-in connection to a peer: batched per reactor turn,
    kept by id until answered."""

    __slots__ = ("batcher", "broker", "calls", "counters", "peer")

    def __init__(self, peer: Peer, broker: LoginBroker, counters: RpcCounters) -> None:
        self.peer = peer
        self.broker = broker
        self.counters = counters
        self.calls: dict[int, PbCall] = {}
        self.batcher: TurnBatcher  # set by the transport, whose send it calls


class PbCall(RpcCall):
    """A call to a peer: its channel, its id there, its ticket in the channel's batch
    (set by the transport once built). Its outcome feeds the peer's circuit breaker."""

    __slots__ = ("breaker", "call_id", "channel", "ticket")

    channel: Channel
    call_id: int
    ticket: int
    breaker: CircuitBreaker

    def broken(self, error: Exception) -> None:
        """The link failed the call (connection lost, peer down): a breaker failure."""
        if not self.done:
            self.breaker.failure()
            self.fail(error)

    def deadline_passed(self, kind: int, now: float) -> None:
        if not self.done:
            self.breaker.failure()
        super().deadline_passed(kind, now)

    def _cancelled(self, _: Deferred[Any]) -> None:
        if not self.done:
            self.breaker.abandoned()
        super()._cancelled(_)

    def _ended(self) -> None:
        channel = self.channel
        channel.calls.pop(self.call_id, None)
        batcher = channel.batcher
        if self.ticket >= batcher.sent:  # ended before its batch left: leave it out
            batcher.withdraw(self.ticket)

    def answered(self, answer: list[Any]) -> None:
        """``answer`` is ``[id, kind, ...]`` from the peer."""
        self.breaker.success()
        kind, size = answer[1], len(answer)
        if kind == OK and size == 3:
            self.resolve(answer[2])
        elif kind == HANDLER_ERROR and size == 4 and type(answer[2]) is int:
            self.fail(HandlerError(answer[2], str(answer[3])))
        elif kind == ERROR and size == 3:
            self.fail(RpcError(f"{self} failed: {answer[2]}"))
        elif kind == TIMEOUT and size == 3:
            self.timed_out(RpcTimeout(f"{self} timed out: {answer[2]}"))
        else:
            self.fail(RpcError(f"{self}: the peer sent a malformed answer"))


def not_sent(
    counters: RpcCounters, breaker_step: Callable[[], object] | None, error: Exception
) -> Deferred[Any]:
    """A call refused before it was sent: counted as a failure, ``breaker_step`` (the
    peer breaker's ``failure`` or ``abandoned``, if any) taken, failed with ``error``."""
    counters.failures += 1
    if breaker_step is not None:
        breaker_step()
    return fail(error)
