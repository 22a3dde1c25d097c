"""RemoteDispatcher: the table of remote services one server declares.

A remote is declared, never looked up from an arbitrary string: ``add(name, obj)``
computes once the set of ``obj``'s public methods, and a call whose service or
method is not in that set is refused before anything runs. This is the server
side of ``app.rpc.<type>.<service>.<method>``; a transport (in-process or
Perspective Broker) calls the dispatcher as ``dispatcher(service, method, args)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from types import CoroutineType
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed

from ..errors import ConfigError, RpcError
from ..handlers.registry import LIFECYCLE_HOOKS, public_methods

__all__ = ["LIFECYCLE_HOOKS", "RemoteDispatcher", "declared_methods"]

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

    def __call__(self, service: str, method: str, args: Sequence[Any]) -> Deferred[Any]:
        """Call ``service.method(*args)``; a Deferred of its result.

        An undeclared service or method raises ``RpcError`` at once (nothing runs).
        Otherwise the result is always a Deferred: the method's value, the result
        of the Deferred it returns, or of its coroutine (``async def``); an
        exception it raises becomes a failed Deferred.
        """
        methods = self._methods.get(service)
        if methods is None:
            raise RpcError(f"unknown remote service {service!r} (method {method!r})")
        fn = methods.get(method)
        if fn is None:
            raise RpcError(f"unknown remote method {service}.{method}")
        try:
            result = fn(*args)
        except Exception:
            return fail()
        if isinstance(result, Deferred):
            return result
        if isinstance(result, CoroutineType):
            return ensureDeferred(result)
        return succeed(result)
