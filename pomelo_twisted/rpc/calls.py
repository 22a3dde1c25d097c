"""RpcCall: one call in flight on any transport, from the caller's side.

A call has names (server, service, method), a deadline on the transport's
:class:`~pomelo_twisted.deadlines.DeadlineScheduler` and its caller's ``Deferred``
(cancelling it ends the call). It ends once, whichever comes first: its result
(:meth:`RpcCall.resolve`), a failure (:meth:`RpcCall.fail`), its deadline (an
``RpcTimeout``) or the caller's cancel; an outcome arriving after the end is counted
as late and dropped. Transports subclass it to forget what they keep of a call
(:meth:`RpcCall._ended`).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.python.failure import Failure

from ..deadlines import DeadlineHandle, DeadlineScheduler
from ..errors import RpcTimeout
from ..instruments import end_call
from ..interfaces import CallEnd
from .metrics import RpcCounters

__all__ = ["DEFAULT_RPC_TIMEOUT", "RpcCall", "call_label", "expired"]

#: The default deadline of a server-to-server call, in seconds (the ``rpc_timeout``
#: setting of an application, and of its RPC proxies). It sits below the clients'
#: request timeout (10 s in the bundled client and bots), so a request forwarded to a
#: slow server is answered with an error before its client gives up on it.
DEFAULT_RPC_TIMEOUT = 5.0


def call_label(server_id: str, service: str, method: str) -> str:
    """How errors and logs name a call."""
    return f"rpc {service}.{method} to server {server_id!r}"


def expired(label: str, counters: RpcCounters) -> Deferred[Any]:
    """The failed Deferred of a call not sent because its request's deadline passed."""
    counters.expired += 1
    counters.timeouts += 1
    return fail(RpcTimeout(f"{label}: not sent, the deadline of its request has passed"))


class RpcCall:
    """One call: its names, its deadline, its caller's Deferred (see the module)."""

    __slots__ = (
        "counters",
        "deadline",
        "deadlines",
        "deferred",
        "done",
        "end",
        "method",
        "server_id",
        "service",
        "timeout",
    )

    def __init__(
        self,
        server_id: str,
        service: str,
        method: str,
        timeout: float,
        counters: RpcCounters,
        deadlines: DeadlineScheduler,
    ) -> None:
        self.server_id = server_id
        self.service = service
        self.method = method
        self.timeout = timeout
        self.counters = counters
        self.deadlines = deadlines
        self.done = False
        #: The hooks' end of the call (:mod:`pomelo_twisted.instruments`), told the
        #: outcome before the caller is, or None.
        self.end: CallEnd | None = None
        self.deferred: Deferred[Any] = Deferred(self._cancelled)
        self.deadline: DeadlineHandle = deadlines.add(timeout, self, 0)

    def __str__(self) -> str:
        return call_label(self.server_id, self.service, self.method)

    def finish(self) -> bool:
        """End the call; False (and counted late) when it had ended already."""
        if self.done:
            self.counters.late += 1
            return False
        self.done = True
        self.deadlines.cancel(self.deadline)
        self._ended()
        return True

    def _ended(self) -> None:
        """The call ended: a transport forgets what it keeps of it."""

    def ended_with(self, failure: Failure | None) -> None:
        """Tell the hooks' end (if any) the outcome, once."""
        end = self.end
        if end is not None:
            self.end = None
            end_call(failure, end)

    def resolve(self, result: object) -> None:
        """The result came: the caller gets it (unless the call ended already)."""
        if self.finish():
            if self.end is not None:
                self.ended_with(None)
            self.deferred.callback(result)

    def fail(self, error: Exception) -> None:
        """The call failed with ``error`` (unless it ended already)."""
        if self.finish():
            self.counters.failures += 1
            if self.end is not None:
                self.ended_with(Failure(error))
            self.deferred.errback(error)

    def timed_out(self, error: RpcTimeout) -> None:
        """The call timed out (here, or its budget was spent at the callee)."""
        if self.finish():
            self.counters.timeouts += 1
            if self.end is not None:
                self.ended_with(Failure(error))
            self.deferred.errback(error)

    def deadline_passed(self, kind: int, now: float) -> None:
        """The deadline came first: ``RpcTimeout``."""
        self.timed_out(RpcTimeout(f"{self} timed out after {self.timeout:g} seconds"))

    def _cancelled(self, _: Deferred[Any]) -> None:
        if self.finish() and self.end is not None:
            self.ended_with(Failure(CancelledError()))
