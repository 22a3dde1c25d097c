"""LocalRpcTransport: server-to-server calls between servers of one process.

Used by standalone mode (every server type in one process) and by tests. It
behaves like a network transport where it matters to the code above it:

- a call to a server that is not registered fails at once (a failed Deferred);
- the remote runs on the next turn of the clock (``callLater(0)``), never
  inside ``call``;
- arguments and results are copied through msgpack, so only plain data
  crosses (tuples arrive as lists) and neither side sees the other's objects;
- a deadline of ``timeout`` seconds on the clock fails the call with
  ``RpcTimeout``; a result arriving later is dropped (and counted as late).

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
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import ConfigError, HandlerError, PomeloError, RpcError, RpcTimeout
from ..interfaces import IRpcTransport
from .metrics import RpcCounters
from .payload import copy_plain

__all__ = ["Dispatcher", "LocalRpcTransport"]

log = Logger()

#: What a server registers: ``dispatcher(service, method, args)`` returns the result,
#: a Deferred or a coroutine, and raises ``RpcError`` for an undeclared remote.
Dispatcher = Callable[[str, str, Sequence[Any]], object]


def _unavailable(server_id: str, service: str, method: str) -> RpcError:
    return RpcError(f"server {server_id!r} is not available (rpc {service}.{method})")


class _Call:
    """One call in flight: its names, its caller's Deferred and its two timers."""

    __slots__ = ("deferred", "done", "hop", "method", "server_id", "service", "timeout", "timer")

    def __init__(self, server_id: str, service: str, method: str, timeout: float) -> None:
        self.server_id = server_id
        self.service = service
        self.method = method
        self.timeout = timeout
        self.done = False
        self.hop: IDelayedCall | None = None
        self.timer: IDelayedCall | None = None
        self.deferred: Deferred[Any] = Deferred(self._cancel)

    def __str__(self) -> str:
        return f"rpc {self.service}.{self.method} to server {self.server_id!r}"

    def finish(self) -> None:
        """No result is expected any more: stop both timers."""
        self.done = True
        for delayed in (self.hop, self.timer):
            if delayed is not None and delayed.active():
                delayed.cancel()
        self.hop = self.timer = None

    def _cancel(self, _: Deferred[Any]) -> None:
        self.finish()


@implementer(IRpcTransport)
class LocalRpcTransport:
    """Calls between the servers registered on it, one clock turn apart."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._servers: dict[str, Dispatcher] = {}
        self._counters: dict[str, RpcCounters] = {}
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
        self._servers[server_id] = dispatcher
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
        self, server_id: str, service: str, method: str, args: tuple[Any, ...], timeout: float
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
        call = _Call(server_id, service, method, timeout)
        if not timeout > 0:  # also refuses NaN
            counters.failures += 1
            return fail(RpcError(f"{call}: timeout must be positive, not {timeout!r}"))
        try:
            copied = copy_plain(list(args))
        except ValueError as exc:
            counters.failures += 1
            return fail(RpcError(f"{call}: arguments are not plain data ({exc})"))
        call.hop = self._clock.callLater(0, self._deliver, call, copied)
        call.timer = self._clock.callLater(timeout, self._expire, call)
        return call.deferred

    def _deliver(self, call: _Call, args: list[Any]) -> None:
        call.hop = None
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

    def _expire(self, call: _Call) -> None:
        call.timer = None
        self._counters[call.server_id].timeouts += 1
        call.finish()
        call.deferred.errback(RpcTimeout(f"{call} timed out after {call.timeout:g} seconds"))
