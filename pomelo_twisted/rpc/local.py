"""LocalRpcTransport: server-to-server calls between servers of one process.

Used by standalone mode (every server type in one process) and by tests. It
behaves like a network transport where it matters to the code above it:

- a call to a server that is not registered fails at once (a failed Deferred);
- the remote runs on the next turn of the clock, never inside ``call`` (the
  calls of one turn are delivered together, by one ``callLater(0)``);
- arguments and results are copied through msgpack, so only plain data
  crosses (tuples arrive as lists) and neither side sees the other's objects;
- a deadline of ``timeout`` seconds on the clock fails the call with
  ``RpcTimeout``; a result arriving later is dropped (and counted as late).
  Deadlines are kept by :class:`Deadlines`: one timer for every call, not one each.

Errors: a remote exception becomes ``RpcError`` carrying the remote's message,
except ``HandlerError``, which is raised again as ``HandlerError(code, msg)``
(a new instance of the base class) so that a request forwarded to a backend
answers the client with the backend handler's code. A remote exception that
is not a ``PomeloError`` is a bug of the remote: it is logged with its
traceback, as the remote server would log it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import CoroutineType
from typing import Any, Protocol

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import ConfigError, HandlerError, PomeloError, RpcError, RpcTimeout
from ..interfaces import IRpcTransport
from .metrics import RpcCounters
from .payload import copy_plain
from .remotes import RemoteDispatcher

__all__ = ["Deadlines", "Dispatcher", "LocalRpcTransport", "entry_point"]

log = Logger()

#: What a server registers: ``dispatcher(service, method, args)`` returns the result,
#: a Deferred or a coroutine, and raises ``RpcError`` for an undeclared remote.
Dispatcher = Callable[[str, str, Sequence[Any]], object]


def entry_point(dispatcher: Dispatcher) -> Dispatcher:
    """What a transport calls for a registered ``dispatcher``: a ``RemoteDispatcher``'s
    :meth:`~pomelo_twisted.rpc.remotes.RemoteDispatcher.invoke` (a plain value is not
    wrapped in a Deferred), any other callable as it is."""
    if isinstance(dispatcher, RemoteDispatcher):
        return dispatcher.invoke
    return dispatcher


class Expiring(Protocol):
    """What :class:`Deadlines` keeps: a call with a ``timeout`` and an ``expire()``."""

    timeout: float
    deadline: float

    def expire(self) -> None:
        """The deadline passed."""


class Deadlines:
    """The deadlines of many calls on one timer of the clock.

    ``add(entry)`` sets ``entry.deadline`` to now + ``entry.timeout``; ``remove(entry)``
    forgets it (answered, cancelled); once its deadline passes, ``entry.expire()`` runs.
    Entries are grouped by timeout (a handful of distinct values in practice: the
    ``rpc_timeout`` setting, the proxies' defaults), and within a group they are in
    deadline order (added in time order), so a sweep looks only at the heads of the
    groups and the timer is set to the earliest head: adding or removing costs a dict
    operation, not a ``callLater`` and a ``cancel``. The timer is cancelled when nothing
    is left (no timer outlives the calls).
    """

    __slots__ = ("_at", "_clock", "_groups", "_timer")

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._groups: dict[float, dict[Expiring, None]] = {}
        self._timer: IDelayedCall | None = None
        self._at = 0.0

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def add(self, entry: Expiring) -> None:
        """Expire ``entry`` in ``entry.timeout`` seconds unless removed first."""
        timeout = entry.timeout
        deadline = entry.deadline = self._clock.seconds() + timeout
        group = self._groups.get(timeout)
        if group is None:
            group = self._groups[timeout] = {}
        group[entry] = None
        if self._timer is None:
            self._timer = self._clock.callLater(timeout, self._sweep)
            self._at = deadline
        elif deadline < self._at:
            self._timer.reset(timeout)
            self._at = deadline

    def remove(self, entry: Expiring) -> None:
        """Forget ``entry`` (nothing happens if it is not kept)."""
        group = self._groups.get(entry.timeout)
        if group is None or entry not in group:
            return
        del group[entry]
        if not group:
            del self._groups[entry.timeout]
            if not self._groups and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _sweep(self) -> None:
        # One entry at a time: an expiring entry may end others (its caller's errback
        # cancels them), which must then not expire too.
        self._timer = None
        now = self._clock.seconds()
        groups = self._groups
        for timeout in list(groups):
            while group := groups.get(timeout):
                entry = next(iter(group))
                if entry.deadline > now:
                    break
                del group[entry]
                if not group:
                    del groups[timeout]
                entry.expire()
        self._arm()

    def _arm(self) -> None:
        if not self._groups:
            return
        earliest = min(next(iter(group)).deadline for group in self._groups.values())
        delay = max(0.0, earliest - self._clock.seconds())
        if self._timer is None:
            self._timer = self._clock.callLater(delay, self._sweep)
            self._at = earliest
        elif earliest < self._at:
            self._timer.reset(delay)
            self._at = earliest


def _unavailable(server_id: str, service: str, method: str) -> RpcError:
    return RpcError(f"server {server_id!r} is not available (rpc {service}.{method})")


class _Call:
    """One call: its names, its copied arguments until delivered, its caller's Deferred."""

    __slots__ = (
        "args",
        "deadline",
        "deferred",
        "done",
        "method",
        "queued",
        "server_id",
        "service",
        "timeout",
        "transport",
    )

    def __init__(
        self,
        transport: LocalRpcTransport,
        server_id: str,
        service: str,
        method: str,
        timeout: float,
        args: list[Any],
    ) -> None:
        self.transport = transport
        self.server_id = server_id
        self.service = service
        self.method = method
        self.timeout = timeout
        self.deadline = 0.0
        self.args: list[Any] | None = args
        self.done = False
        self.queued = True
        self.deferred: Deferred[Any] = Deferred(self._cancel)

    def __str__(self) -> str:
        return f"rpc {self.service}.{self.method} to server {self.server_id!r}"

    def finish(self) -> None:
        """No result is expected any more: forget the deadline (and the delivery)."""
        self.done = True
        self.args = None
        self.transport._forget(self)

    def expire(self) -> None:
        """The deadline passed first."""
        if self.done:
            return
        self.transport._counters[self.server_id].timeouts += 1
        self.finish()
        self.deferred.errback(RpcTimeout(f"{self} timed out after {self.timeout:g} seconds"))

    def _cancel(self, _: Deferred[Any]) -> None:
        self.finish()


@implementer(IRpcTransport)
class LocalRpcTransport:
    """Calls between the servers registered on it, one clock turn apart."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._servers: dict[str, Dispatcher] = {}
        self._counters: dict[str, RpcCounters] = {}
        self._queue: list[_Call] = []
        self._hop: IDelayedCall | None = None
        self._deadlines = Deadlines(clock)
        #: Calls to a server id that was never registered.
        self.unknown_calls = 0

    def __repr__(self) -> str:
        return f"<LocalRpcTransport serving {sorted(self._servers)}>"

    # -- membership -----------------------------------------------------------

    def register(self, server_id: str, dispatcher: object) -> None:
        """Serve calls to ``server_id`` with ``dispatcher``, a :data:`Dispatcher` such as
        a ``RemoteDispatcher``; ``ConfigError`` if the id is taken or it is not callable."""
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
            where = f"rpc {service}.{method} to server {server_id!r}"
            return fail(RpcError(f"{where}: timeout must be positive, not {timeout!r}"))
        try:  # msgpack packs a tuple or a list as an array: a list arrives
            copied = copy_plain(args if type(args) in (tuple, list) else list(args))
        except ValueError as exc:
            counters.failures += 1
            where = f"rpc {service}.{method} to server {server_id!r}"
            return fail(RpcError(f"{where}: arguments are not plain data ({exc})"))
        call = _Call(self, server_id, service, method, timeout, copied)
        self._queue.append(call)
        if self._hop is None:
            self._hop = self._clock.callLater(0, self._deliver_queued)
        self._deadlines.add(call)
        return call.deferred

    def _forget(self, call: _Call) -> None:
        """``call`` ended (answered, failed, expired, cancelled): drop its deadline, and
        its delivery if it was not delivered yet."""
        self._deadlines.remove(call)
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

    def _deliver(self, call: _Call, args: list[Any]) -> None:
        dispatcher = self._servers.get(call.server_id)
        if dispatcher is None:
            self._fail(call, _unavailable(call.server_id, call.service, call.method))
            return
        try:
            result = dispatcher(call.service, call.method, args)
        except Exception:
            self._remote_failed(Failure(), call)
            return
        if isinstance(result, CoroutineType):
            result = ensureDeferred(result)
        if isinstance(result, Deferred):
            result.addCallbacks(
                self._returned, self._remote_failed, callbackArgs=(call,), errbackArgs=(call,)
            )
        else:
            self._returned(result, call)

    def _returned(self, result: object, call: _Call) -> None:
        if call.done:
            self._counters[call.server_id].late += 1
            return
        try:
            copied = copy_plain(result)
        except ValueError as exc:
            self._fail(call, RpcError(f"{call}: the result is not plain data ({exc})"))
            return
        call.finish()
        call.deferred.callback(copied)

    def _remote_failed(self, failure: Failure, call: _Call) -> None:
        exc = failure.value
        if not isinstance(exc, PomeloError):
            log.failure(
                "remote {service}.{method} failed on server {server_id}",
                failure,
                service=call.service,
                method=call.method,
                server_id=call.server_id,
            )
        if call.done:
            self._counters[call.server_id].late += 1
            return
        error: Exception
        if isinstance(exc, HandlerError):
            error = HandlerError(exc.code, exc.msg)
        elif isinstance(exc, RpcError):
            error = RpcError(f"{call} failed: {exc}")
        else:
            error = RpcError(f"{call} failed: {type(exc).__name__}: {exc}")
        self._fail(call, error)

    def _fail(self, call: _Call, error: Exception) -> None:
        self._counters[call.server_id].failures += 1
        call.finish()
        call.deferred.errback(error)
