"""LocalRpcTransport: server-to-server calls between servers of one process.

Used by standalone mode (every server type in one process) and by tests. It
behaves like a network transport where it matters to the code above it:

- a call to a server that is not registered fails at once (a failed Deferred);
- the remote runs on the next turn of the clock, never inside ``call`` (the
  calls of one turn are delivered together, by one ``callLater(0)``);
- arguments and results are copied through msgpack, so only plain data
  crosses (tuples arrive as lists) and neither side sees the other's objects;
- a deadline of ``timeout`` seconds on the clock fails the call with
  ``RpcTimeout``; a result arriving later is dropped (and counted as late). The
  timeout is cut to the current deadline of a call being served
  (:mod:`~pomelo_twisted.budget`), and the remote runs within its call's deadline.
  Deadlines are kept by a :class:`~pomelo_twisted.deadlines.DeadlineScheduler`:
  one timer for every call, not one each.

Errors: a remote exception becomes ``RpcError`` carrying the remote's message,
except ``HandlerError``, which is raised again as ``HandlerError(code, msg)``
(a new instance of the base class) so that a request forwarded to a backend
answers the client with the backend handler's code. A remote exception that
is not a ``PomeloError`` is a bug of the remote: it is logged with its
traceback, as the remote server would log it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from ..budget import budget_of, within_deadline
from ..callcontext import CALL_CONTEXT, CallContext
from ..deadlines import DeadlineScheduler
from ..errors import ConfigError, HandlerError, PeerUnavailable, PomeloError, RpcError
from ..instruments import end_call, start_call, start_serve
from ..interfaces import IHookedTransport, IRpcHooks, IRpcTransport
from ..results import call_settled
from .calls import RpcCall, call_label, expired
from .metrics import RpcCounters
from .payload import copy_plain
from .remotes import RemoteDispatcher, ServeRemote

__all__ = ["LocalRpcTransport", "entry_point"]

log = Logger()


def entry_point(serve: ServeRemote) -> ServeRemote:
    """What a transport calls for a registered ``serve``: a ``RemoteDispatcher``'s
    :meth:`~pomelo_twisted.rpc.remotes.RemoteDispatcher.invoke` (a plain value is not
    wrapped in a Deferred), any other callable as it is."""
    if isinstance(serve, RemoteDispatcher):
        return serve.invoke
    return serve


def _unavailable(server_id: str, service: str, method: str) -> PeerUnavailable:
    return PeerUnavailable(f"server {server_id!r} is not available (rpc {service}.{method})")


class _LocalCall(RpcCall):
    """An in-process call: its copied arguments until delivered (set by the transport
    once built)."""

    __slots__ = ("args", "context", "queued", "transport")

    transport: LocalRpcTransport
    args: list[Any] | None
    queued: bool
    context: CallContext | None

    def _ended(self) -> None:
        self.args = None
        self.transport._forget(self)


@implementer(IRpcTransport, IHookedTransport)
class LocalRpcTransport:
    """Calls between the servers registered on it, one clock turn apart.

    ``deadlines``: the scheduler keeping the calls' deadlines (a new one on ``clock``
    by default; a network transport shares its own).
    """

    def __init__(self, clock: IReactorTime, deadlines: DeadlineScheduler | None = None) -> None:
        self._clock = clock
        self._servers: dict[str, ServeRemote] = {}
        self._counters: dict[str, RpcCounters] = {}
        self._queue: list[_LocalCall] = []
        self._hop: IDelayedCall | None = None
        self._deadlines = deadlines if deadlines is not None else DeadlineScheduler(clock)
        #: Calls to a server id that was never registered.
        self.unknown_calls = 0
        #: The :class:`~pomelo_twisted.instruments.IRpcHooks` around every call, or None.
        self.hooks: IRpcHooks | None = None

    def __repr__(self) -> str:
        return f"<LocalRpcTransport serving {sorted(self._servers)}>"

    # -- membership -----------------------------------------------------------

    def register(self, server_id: str, dispatcher: object) -> None:
        """Serve calls to ``server_id`` with ``dispatcher``, a :data:`ServeRemote` such
        as a ``RemoteDispatcher``; ``ConfigError`` if the id is taken or it is not callable."""
        if server_id in self._servers:
            raise ConfigError(f"server {server_id!r} is registered already on this transport")
        if not callable(dispatcher):
            raise ConfigError(f"the dispatcher of server {server_id!r} is not callable")
        self._servers[server_id] = entry_point(dispatcher)
        self._counters.setdefault(server_id, RpcCounters())

    def unregister(self, server_id: str) -> None:
        """Stop serving ``server_id``: new calls, and calls not yet delivered, fail.

        Remotes already running finish, and their results are still delivered.
        Unregistering an unknown id does nothing; the counters are kept.
        """
        self._servers.pop(server_id, None)

    def serving(self) -> list[str]:
        """The ids of the registered servers, sorted."""
        return sorted(self._servers)

    def peers(self) -> dict[str, str]:
        """No peers: every server this transport reaches is in this process."""
        return {}

    def when_peers_up(self, timeout: float) -> Deferred[list[str]]:
        """At once: there are no peers to wait for."""
        return succeed([])

    # -- metrics --------------------------------------------------------------

    def counters(self, server_id: str) -> RpcCounters:
        """The counters of calls to ``server_id`` (zeros for an id never registered)."""
        return self._counters.get(server_id) or RpcCounters()

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Every server's counters as plain data."""
        return {server_id: c.snapshot() for server_id, c in sorted(self._counters.items())}

    # -- calls ------------------------------------------------------------------

    def call(
        self, server_id: str, service: str, method: str, args: Sequence[Any], timeout: float
    ) -> Deferred[Any]:
        """A Deferred of ``service.method(*args)`` on ``server_id``; never raises.

        Fails with ``RpcError`` at once when the server is not registered, the
        arguments are not plain data or ``timeout`` is not a positive number;
        later with ``RpcError``/``HandlerError`` when the remote fails, or with
        ``RpcTimeout`` when ``timeout`` seconds pass first.
        """
        counters = self._counters.get(server_id)
        if counters is None:
            self.unknown_calls += 1
        else:
            counters.calls += 1
        if counters is None or server_id not in self._servers:
            if counters is not None:
                counters.failures += 1
            return fail(_unavailable(server_id, service, method))
        if not timeout > 0:  # also refuses NaN
            counters.failures += 1
            where = call_label(server_id, service, method)
            return fail(RpcError(f"{where}: timeout must be positive, not {timeout!r}"))
        timeout = budget_of(timeout, self._clock)
        if not timeout > 0:
            return expired(call_label(server_id, service, method), counters)
        try:  # msgpack packs a tuple or a list as an array: a list arrives
            copied = copy_plain(args if type(args) in (tuple, list) else list(args))
        except ValueError as exc:
            counters.failures += 1
            where = call_label(server_id, service, method)
            return fail(RpcError(f"{where}: arguments are not plain data ({exc})"))
        call = _LocalCall(server_id, service, method, timeout, counters, self._deadlines)
        call.transport = self
        call.args = copied
        call.queued = True
        context = CALL_CONTEXT.get()
        end = None
        if self.hooks is not None:
            context, end = start_call(self.hooks, server_id, service, method, context)
        call.context = context
        call.end = end  # told the outcome by the call itself: no Deferred callback
        self._queue.append(call)
        if self._hop is None:
            self._hop = self._clock.callLater(0, self._deliver_queued)
        return call.deferred

    def _forget(self, call: _LocalCall) -> None:
        """``call`` ended (answered, failed, expired, cancelled): drop its delivery if it
        was not delivered yet."""
        if call.queued:
            call.queued = False
            self._queue.remove(call)
            if not self._queue and self._hop is not None:
                self._hop.cancel()
                self._hop = None

    def _deliver_queued(self) -> None:
        self._hop = None
        queue, self._queue = self._queue, []
        for call in queue:
            call.queued = False
        for call in queue:
            args, call.args = call.args, None
            if args is not None:  # None: it ended (e.g. was cancelled) before delivery
                self._deliver(call, args)

    def _deliver(self, call: _LocalCall, args: list[Any]) -> None:
        serve = self._servers.get(call.server_id)
        if serve is None:
            call.fail(_unavailable(call.server_id, call.service, call.method))
            return
        context, end = call.context, None
        if self.hooks is not None:
            context, end = start_serve(self.hooks, "local", call.service, call.method, context)
        # The remote runs within the call's deadline (its own calls are cut to it) and
        # its call context.
        token = CALL_CONTEXT.set(context)
        try:
            result = within_deadline(
                call.deadline[0], call_settled, serve, call.service, call.method, args
            )
        finally:
            CALL_CONTEXT.reset(token)
        if isinstance(result, Deferred):
            if end is not None:
                result.addBoth(end_call, end)
            result.addCallbacks(
                self._returned, self._remote_failed, callbackArgs=(call,), errbackArgs=(call,)
            )
        else:
            if end is not None:
                end_call(result, end)
            self._returned(result, call)

    def _returned(self, result: object, call: _LocalCall) -> None:
        if call.done:
            call.counters.late += 1
            return
        try:
            copied = copy_plain(result)
        except ValueError as exc:
            call.fail(RpcError(f"{call}: the result is not plain data ({exc})"))
            return
        call.resolve(copied)

    def _remote_failed(self, failure: Failure, call: _LocalCall) -> None:
        exc = failure.value
        if not isinstance(exc, PomeloError):
            log.failure(
                "remote {service}.{method} failed on server {server_id}",
                failure,
                service=call.service,
                method=call.method,
                server_id=call.server_id,
                level=LogLevel.error,
            )
        if call.done:
            call.counters.late += 1
            return
        error: Exception
        if isinstance(exc, HandlerError):
            error = HandlerError(exc.code, exc.msg)
        elif isinstance(exc, RpcError):
            error = RpcError(f"{call} failed: {exc}")
        else:
            error = RpcError(f"{call} failed: {type(exc).__name__}: {exc}")
        call.fail(error)
