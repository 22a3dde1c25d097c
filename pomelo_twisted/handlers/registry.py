"""HandlerRegistry: the handlers (or remotes) one server process serves, by server type.

A handler is a plain object whose public methods are routes
``<server type>.<handler name>.<method>``. Which names are routes is computed once,
when the handler is registered (:func:`public_methods`); :meth:`HandlerRegistry.lookup`
checks a route against that set before it touches the object, so a client can never
reach an attribute that is not a declared route.

One registry holds one server type's handlers, or every type's in standalone mode.
Remotes are declared the same way: a second instance, ``HandlerRegistry(kind="remote")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, RouteNotFound
from ..typed.declaration import typed_methods
from ..typed.validation import TypedCall

__all__ = [
    "LIFECYCLE_HOOKS",
    "HandlerRegistry",
    "RouteNotFound",
    "class_public_methods",
    "default_name",
    "public_methods",
]

#: Hooks the application runs on handlers and remotes; never routes.
LIFECYCLE_HOOKS = frozenset({"init", "after_init", "before_shutdown", "shutdown"})

#: Class attribute naming a handler in its routes; never a route itself.
ROUTE_NAME = "route_name"


def _is_route(name: str, attr: object) -> bool:
    if name.startswith("_") or name in LIFECYCLE_HOOKS or name == ROUTE_NAME:
        return False
    if isinstance(attr, classmethod):
        return True
    # Functions and staticmethods are callable; properties and other computed
    # descriptors are not (and are never evaluated here), nested classes are no methods.
    return callable(attr) and not isinstance(attr, type)


def class_public_methods(cls: type) -> frozenset[str]:
    """The route names a handler class serves.

    A name is a route when a class of ``cls``'s MRO other than ``object`` defines it
    (the most derived definition decides), it does not start with ``_``, it is neither
    a lifecycle hook (``init``, ``after_init``, ``before_shutdown``, ``shutdown``) nor
    ``route_name``, and it is a method (function, staticmethod, classmethod or another
    callable, not a class or a property).
    """
    names: set[str] = set()
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name, attr in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            if _is_route(name, attr):
                names.add(name)
    return frozenset(names)


def public_methods(obj: object) -> frozenset[str]:
    """The route (or remote method) names ``obj`` serves: see :func:`class_public_methods`."""
    return class_public_methods(type(obj))


def default_name(obj: object) -> str:
    """``obj``'s ``route_name`` attribute, else its class name with a lower-case first letter
    (``EntryHandler`` -> ``entryHandler``)."""
    name = getattr(obj, ROUTE_NAME, None)
    if isinstance(name, str) and name:
        return name
    cls_name = type(obj).__name__
    return cls_name[:1].lower() + cls_name[1:]


def check_name(kind: str, name: str) -> None:
    """Refuse a name that cannot be one part of a ``type.handler.method`` route."""
    if not name or "." in name or name.startswith("_"):
        raise ConfigError(f"{kind} name {name!r} must be non-empty, public and without '.'")


class HandlerRegistry:
    """Handler (or remote) objects of one process, keyed by server type and name.

    ``kind`` ("handler" or "remote") only words the error messages.
    """

    def __init__(self, kind: str = "handler") -> None:
        self.kind = kind
        self._objects: dict[str, dict[str, object]] = {}
        self._methods: dict[str, dict[str, frozenset[str]]] = {}
        # Typed routes (pomelo_twisted.typed), per type and name; no entry when untyped.
        self._typed: dict[str, dict[str, dict[str, Any]]] = {}
        #: Check typed routes' responses against their declared type (development mode).
        self.validate_responses = False

    def register(self, server_type: str, name: str | None, obj: object) -> str:
        """Serve ``obj``'s public methods as ``server_type.name.<method>``; returns the name.

        ``name`` defaults to :func:`default_name`. Raises ``ConfigError`` when the name
        is already registered for ``server_type`` or cannot be a route part.
        """
        check_name("server type", server_type)
        key = default_name(obj) if name is None else name
        check_name(self.kind, key)
        objects = self._objects.setdefault(server_type, {})
        if key in objects:
            raise ConfigError(
                f"{self.kind} {key!r} is registered already on server type {server_type!r} "
                f"({type(objects[key]).__name__}; refused {type(obj).__name__})"
            )
        objects[key] = obj
        methods = self._methods.setdefault(server_type, {})[key] = public_methods(obj)
        self._set_typed(server_type, key, obj, methods)
        return key

    def _set_typed(self, server_type: str, name: str, obj: object, methods: frozenset[str]) -> None:
        typed = self._typed.setdefault(server_type, {})
        found = typed_methods(type(obj), methods)
        if found:
            typed[name] = found
        else:
            typed.pop(name, None)

    def replace(self, server_type: str, objects: list[tuple[str, object]]) -> None:
        """Serve exactly ``objects`` on ``server_type`` from now on, in one step (a reload):
        a lookup sees either every old object or every new one; a method already looked
        up runs on its old object. ConfigError, and nothing changes, on a bad or
        repeated name."""
        check_name("server type", server_type)
        new_objects: dict[str, object] = {}
        for name, obj in objects:
            check_name(self.kind, name)
            if name in new_objects:
                raise ConfigError(f"{self.kind} {name!r} is given twice for {server_type!r}")
            new_objects[name] = obj
        new_methods = {name: public_methods(obj) for name, obj in new_objects.items()}
        new_typed = {}
        for name, obj in new_objects.items():
            found = typed_methods(type(obj), new_methods[name])
            if found:
                new_typed[name] = found
        self._objects[server_type] = new_objects
        self._methods[server_type] = new_methods
        self._typed[server_type] = new_typed

    def routes(self) -> list[str]:
        """Every ``type.name.method`` route, sorted (for the route dictionary)."""
        return sorted(
            f"{server_type}.{name}.{method}"
            for server_type, by_name in self._methods.items()
            for name, methods in by_name.items()
            for method in methods
        )

    def server_types(self) -> frozenset[str]:
        """The server types that have at least one registered object."""
        return frozenset(self._objects)

    def methods(self, server_type: str, name: str) -> frozenset[str]:
        """The route names of one registered object (empty when it is not registered)."""
        return self._methods.get(server_type, {}).get(name, frozenset())

    def get(self, server_type: str, name: str) -> object | None:
        """The object registered as ``name`` on ``server_type``, or None."""
        return self._objects.get(server_type, {}).get(name)

    def handlers(self) -> list[tuple[str, object]]:
        """``("type.name", obj)`` for every registered object, in registration order."""
        return [
            (f"{server_type}.{name}", obj)
            for server_type, by_name in self._objects.items()
            for name, obj in by_name.items()
        ]

    def lookup(self, server_type: str, handler: str, method: str) -> Callable[..., Any]:
        """The bound method serving ``server_type.handler.method``.

        Raises :class:`~pomelo_twisted.errors.RouteNotFound` (code 404) naming what is
        missing of the route the client sent. The method name
        is checked against the registered set before any attribute is read.
        """
        by_name = self._methods.get(server_type)
        methods = by_name.get(handler) if by_name is not None else None
        if methods is None:
            raise RouteNotFound(f"no {self.kind} {handler!r} on server type {server_type!r}")
        if method not in methods:
            raise RouteNotFound(f"{self.kind} {handler!r} has no method {method!r}")
        bound = getattr(self._objects[server_type][handler], method, None)
        if not callable(bound):  # shadowed by a non-callable instance attribute
            raise RouteNotFound(f"{self.kind} {handler!r} has no method {method!r}")
        typed = self._typed[server_type].get(handler)
        if typed is not None and method in typed:
            route = f"{server_type}.{handler}.{method}"
            return TypedCall(route, bound, typed[method], self.validate_responses)
        return bound
