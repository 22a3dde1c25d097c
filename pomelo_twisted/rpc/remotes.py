"""RemoteDispatcher: the table of remote services one server declares.

A remote is declared, never looked up from an arbitrary string: ``add(name, obj)``
computes once the set of ``obj``'s public methods, and a call whose service or
method is not in that set is refused before anything runs. This is the server
side of ``app.rpc.<type>.<service>.<method>``; a transport (in-process or
Perspective Broker) calls the dispatcher as ``dispatcher(service, method, args)``,
or its :meth:`~RemoteDispatcher.invoke`.

:class:`CallRunner` is the callee side of *batched* calls, whatever carries them:
it runs each ``[id, target, service, method, args, budget]`` (or, from a caller
older than budgets, ``[id, target, service, method, args]``) of a batch and hands back
each answer, on its own and as soon as it is ready, as msgpack bytes of
``[id, OK, result]``, ``[id, HANDLER_ERROR, code, msg]``, ``[id, ERROR, message]`` or
``[id, TIMEOUT, message]`` (:mod:`~pomelo_twisted.rpc.payload`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..budget import DEADLINE
from ..callcontext import CALL_CONTEXT, checked_context
from ..errors import ConfigError, HandlerError, PomeloError, RpcError
from ..handlers.registry import LIFECYCLE_HOOKS, public_methods
from ..instruments import end_call, start_serve
from ..interfaces import IRpcHooks
from ..results import call_settled, is_later, settle
from .logagg import RepeatedWarning
from .payload import ERROR, HANDLER_ERROR, OK, TIMEOUT, pack_plain, unpack_plain

__all__ = [
    "LIFECYCLE_HOOKS",
    "CallRunner",
    "RemoteDispatcher",
    "ServeRemote",
    "declared_methods",
]

log = Logger()

#: Refused or malformed rpcs: one line per interval and kind, with a count.
_refusals = RepeatedWarning(log)

#: What a transport calls to serve a server's remotes: ``serve(service, method, args)``
#: returns the result, a Deferred or a coroutine, and raises ``RpcError`` for an
#: undeclared remote (e.g. :meth:`RemoteDispatcher.invoke`).
ServeRemote = Callable[[str, str, Sequence[Any]], object]

#: Hooks the application runs on handlers, remotes and modules; never remote methods.


def declared_methods(obj: object) -> frozenset[str]:
    """The names ``obj`` serves as remote methods: the same rule as handler routes
    (:func:`~pomelo_twisted.handlers.registry.public_methods`): public methods its
    class defines, lifecycle hooks and properties excluded, nothing evaluated."""
    return public_methods(obj)


def _check_name(what: str, name: str) -> None:
    if not name or name.startswith("_"):
        raise ConfigError(f"{what} {name!r} must not be empty or private")


class RemoteDispatcher:
    """One server's declared remote services, callable by a transport.

    ``add(name, obj)`` declares the public methods of an object (see
    :func:`declared_methods`); ``add_function(service, method, fn)`` declares one
    function at a time (system remotes). A service name is declared once.
    """

    def __init__(self) -> None:
        self._methods: dict[str, dict[str, Callable[..., Any]]] = {}
        self._objects: dict[str, object] = {}

    def add(self, name: str, obj: object) -> None:
        """Declare every public method of ``obj`` as ``name.<method>``.

        Raises ``ConfigError`` when ``name`` is empty, private or declared already,
        or when ``obj`` has no public method.
        """
        self._check_new_service(name)
        names = declared_methods(obj)
        if not names:
            raise ConfigError(f"remote {name!r} ({type(obj).__name__}) has no public method")
        self._methods[name] = {method: getattr(obj, method) for method in names}
        self._objects[name] = obj

    def replace_objects(self, objects: list[tuple[str, object]]) -> None:
        """Serve exactly ``objects`` as the services declared by :meth:`add` from now on, in
        one step (a reload); services of :meth:`add_function` stay. A call already
        dispatched finishes on its old object. ConfigError, and nothing changes, when a
        name is bad, repeated or a function service's, or an object has no public method."""
        functions = {
            service: methods
            for service, methods in self._methods.items()
            if service not in self._objects
        }
        new_methods: dict[str, dict[str, Callable[..., Any]]] = dict(functions)
        new_objects: dict[str, object] = {}
        for name, obj in objects:
            _check_name("remote name", name)
            if "." in name:
                raise ConfigError(f"remote name {name!r} must not contain a dot")
            if name in new_methods:
                raise ConfigError(f"remote {name!r} is declared already")
            names = declared_methods(obj)
            if not names:
                raise ConfigError(f"remote {name!r} ({type(obj).__name__}) has no public method")
            new_methods[name] = {method: getattr(obj, method) for method in names}
            new_objects[name] = obj
        self._methods = new_methods
        self._objects = new_objects

    def add_function(self, service: str, method: str, fn: Callable[..., Any]) -> None:
        """Declare ``fn`` as ``service.method``.

        Several functions may share a service, but not a service declared by
        :meth:`add`, and a method is declared once (``ConfigError`` otherwise).
        """
        _check_name("remote name", service)
        _check_name("remote method name", method)
        if service in self._objects:
            raise ConfigError(f"remote {service!r} is declared already by an object")
        if not callable(fn):
            raise ConfigError(f"remote {service}.{method} is not callable")
        methods = self._methods.setdefault(service, {})
        if method in methods:
            raise ConfigError(f"remote {service}.{method} is declared already")
        methods[method] = fn

    def _check_new_service(self, name: str) -> None:
        _check_name("remote name", name)
        if "." in name:
            raise ConfigError(
                f"remote name {name!r} must not contain a dot (dotted names are the framework's)"
            )
        if name in self._methods:
            raise ConfigError(f"remote {name!r} is declared already")

    def services(self) -> dict[str, frozenset[str]]:
        """Each declared service and the names of its methods."""
        return {service: frozenset(methods) for service, methods in self._methods.items()}

    def objects(self) -> Iterator[tuple[str, object]]:
        """``(name, obj)`` for each object declared with :meth:`add` (for lifecycle hooks)."""
        yield from self._objects.items()

    def _lookup(self, service: str, method: str) -> Callable[..., Any]:
        methods = self._methods.get(service)
        if methods is None:
            raise RpcError(f"unknown remote service {service!r} (method {method!r})")
        fn = methods.get(method)
        if fn is None:
            raise RpcError(f"unknown remote method {service}.{method}")
        return fn

    def invoke(self, service: str, method: str, args: Sequence[Any]) -> object:
        """Call ``service.method(*args)`` and return what it returns, as it is.

        The transports' entry point (a :data:`ServeRemote`):
        a value, a Deferred or a coroutine, without wrapping a value in a Deferred; an
        exception of the method propagates. An undeclared service or method raises
        ``RpcError`` (nothing runs).
        """
        return self._lookup(service, method)(*args)

    def __call__(self, service: str, method: str, args: Sequence[Any]) -> Deferred[Any]:
        """Call ``service.method(*args)``; a Deferred of its result.

        An undeclared service or method raises ``RpcError`` at once (nothing runs).
        Otherwise the result is always a Deferred: the method's value, the result
        of the Deferred it returns, or of its coroutine (``async def``); an
        exception it raises becomes a failed Deferred.
        """
        result = call_settled(self._lookup(service, method), *args)
        if isinstance(result, Deferred):
            return result
        return succeed(result)


def _error_answer(call_id: int, failure: Failure, where: Callable[[], str]) -> bytes:
    """The answer of a failed remote; a bug of the remote (not a ``PomeloError``) is logged."""
    exc = failure.value
    if isinstance(exc, HandlerError):
        return pack_plain([call_id, HANDLER_ERROR, exc.code, exc.msg])
    if not isinstance(exc, PomeloError):
        log.failure("{where} failed", failure, where=where(), level=LogLevel.error)
        return pack_plain([call_id, ERROR, f"{type(exc).__name__}: {exc}"])
    return pack_plain([call_id, ERROR, str(exc)])


class CallRunner:
    """Runs the batches of calls one peer sends; hands each answer to ``answer``.

    ``dispatchers(target)`` is the dispatcher serving server ``target`` here (None when
    it is not served): a callable ``(service, method, args)`` returning a value, a
    Deferred or a coroutine, e.g. :meth:`RemoteDispatcher.invoke`. A batch is msgpack
    bytes of a list of ``[id, target, service, method, args, budget]`` (``budget``
    optional); a batch that is not such a list runs nothing (and is logged), a call whose
    names are not ``str``, whose ``args`` is not a list or whose budget is not a number
    is answered with an error. An answer whose bytes exceed ``max_size`` is replaced by
    an error.

    A call with a budget runs within the deadline ``clock.seconds() + budget`` (the
    calls the remote makes are cut to it); one whose budget is spent (0 or less) is
    answered ``TIMEOUT`` without running (counted in ``expired``).
    """

    def __init__(
        self,
        dispatchers: Callable[[str], ServeRemote | None],
        answer: Callable[[bytes], object],
        peer: str,
        max_size: int,
        clock: IReactorTime,
        hooks: Callable[[], IRpcHooks | None] = lambda: None,
    ) -> None:
        self._dispatchers = dispatchers
        self._hooks = hooks
        self._answer = answer
        self.peer = peer
        self._max_size = max_size
        self._clock = clock
        #: Calls not run because their budget was spent when they arrived.
        self.expired = 0

    def run(self, batch: bytes) -> None:
        """Run every call of ``batch``."""
        try:
            calls = unpack_plain(batch)
        except ValueError as exc:
            calls = exc
        if not isinstance(calls, list):
            _refusals.warn("refused a malformed batch of rpcs from {peer}", peer=self.peer)
            return
        for item in calls:
            if type(item) is not list or not 5 <= len(item) <= 7 or type(item[0]) is not int:
                _refusals.warn(
                    "refused a malformed rpc from {peer}: {item!r}", peer=self.peer, item=item
                )
            else:
                self._run(*item)

    def _run(
        self,
        call_id: int,
        target: Any,
        service: Any,
        method: Any,
        args: Any,
        budget: Any = None,
        context: Any = None,
    ) -> None:
        if context is not None:
            try:
                context = checked_context(context)
            except ValueError as exc:
                _refusals.warn("refused an rpc from {peer}: {why}", peer=self.peer, why=exc)
                self._answer(pack_plain([call_id, ERROR, f"refused: {exc}"]))
                return
        if not (
            type(target) is str
            and type(service) is str
            and type(method) is str
            and type(args) is list
            and (budget is None or type(budget) in (float, int))
        ):
            values = (target, service, method, args, budget)
            kinds = ", ".join(type(v).__name__ for v in values if v is not None)
            _refusals.warn("refused an rpc from {peer} with ({kinds})", peer=self.peer, kinds=kinds)
            message = f"refused: expected (str, str, str, list[, number]), got ({kinds})"
            self._answer(pack_plain([call_id, ERROR, message]))
            return
        dispatcher = self._dispatchers(target)
        if dispatcher is None:
            message = f"server {target!r} is not served at this address"
            self._answer(pack_plain([call_id, ERROR, message]))
            return
        end = None
        hooks = self._hooks()
        if hooks is not None:
            context, end = start_serve(hooks, self.peer, service, method, context)
        token = None
        if budget is not None:
            if not budget > 0:  # spent (or NaN) on arrival: the remote does not start
                self.expired += 1
                message = f"the deadline had passed when it arrived ({budget!r} seconds left)"
                self._answer(pack_plain([call_id, TIMEOUT, message]))
                return
            # The remote, and what it starts (a coroutine too), run within the deadline.
            token = DEADLINE.set(self._clock.seconds() + budget)
        in_context = CALL_CONTEXT.set(context) if context is not None else None
        try:
            try:
                result = dispatcher(service, method, args)
                if is_later(result):  # a Deferred, a coroutine (started here) or a Failure
                    result = settle(result)
            except Exception:
                failure = Failure()
                if end is not None:
                    end_call(failure, end)
                self._failed(failure, call_id, target, service, method)
                return
            if isinstance(result, Deferred):
                names = (call_id, target, service, method)
                if end is not None:
                    result.addBoth(end_call, end)
                result.addCallbacks(
                    self._returned, self._failed, callbackArgs=names, errbackArgs=names
                )
                return
        finally:
            if in_context is not None:
                CALL_CONTEXT.reset(in_context)
            if token is not None:
                DEADLINE.reset(token)
        if end is not None:
            end_call(result, end)
        self._returned(result, call_id, target, service, method)

    def _where(self, target: str, service: str, method: str) -> str:
        return f"remote {service}.{method} on server {target} (called by {self.peer})"

    def _returned(
        self, result: object, call_id: int, target: str, service: str, method: str
    ) -> None:
        try:
            item = pack_plain([call_id, OK, result])
        except ValueError as exc:
            where = self._where(target, service, method)
            item = pack_plain([call_id, ERROR, f"{where}: the result is not plain data ({exc})"])
        if len(item) > self._max_size:
            where = self._where(target, service, method)
            size = f"{len(item)} bytes, at most {self._max_size}"
            item = pack_plain([call_id, ERROR, f"{where}: the result is too large ({size})"])
        self._answer(item)

    def _failed(
        self, failure: Failure, call_id: int, target: str, service: str, method: str
    ) -> None:
        self._answer(_error_answer(call_id, failure, lambda: self._where(target, service, method)))
