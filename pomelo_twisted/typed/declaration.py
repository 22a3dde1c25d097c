"""The declaration of a typed route: type hints on a handler method, plus ``@pushes``.

A handler method is typed when its ``msg`` parameter (the second after ``self``) or its
return value is annotated with a ``msgspec.Struct`` subclass::

    class SendRequest(msgspec.Struct):
        rid: str
        content: str

    class ChatHandler:
        @pushes(onChat=ChatMessage)
        async def send(self, session, msg: SendRequest) -> Ok: ...

The hints are read once, when the class is loaded (:func:`typed_methods`); an untyped
method has no entry and costs nothing at request time.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from ..errors import ConfigError

__all__ = ["PUSHES", "RouteTypes", "pushes", "route_types", "typed_methods"]

PUSHES = "__pomelo_pushes__"
"""The attribute :func:`pushes` sets on a handler method."""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteTypes:
    """What one route declares: its request and response Struct (None when not
    declared) and the pushes it sends (route -> Struct)."""

    request: type[msgspec.Struct] | None = None
    response: type[msgspec.Struct] | None = None
    pushes: Mapping[str, type[msgspec.Struct]] = field(default_factory=dict)
    doc: str = ""


def _is_struct(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, msgspec.Struct)


def pushes(**declared: type[msgspec.Struct]) -> Callable[[F], F]:
    """Declare the pushes a handler method sends: ``@pushes(onChat=ChatMessage)``
    (push route -> the Struct of its body); documentation and stubs only."""
    for route, struct in declared.items():
        if not _is_struct(struct):
            raise TypeError(f"@pushes({route}=...) needs a msgspec.Struct, not {struct!r}")

    def mark(fn: F) -> F:
        setattr(fn, PUSHES, dict(declared))
        return fn

    return mark


def _msg_parameter(fn: Callable[..., Any]) -> str | None:
    """The name of the body parameter of a handler method ``fn(session, msg)``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params[1].name if len(params) >= 2 else None


def route_types(cls: type, method: str) -> RouteTypes | None:
    """The types ``cls.method`` declares, or None when it declares none.

    Raises ``ConfigError`` naming the method when its hints cannot be resolved."""
    fn = inspect.getattr_static(cls, method)
    if isinstance(fn, staticmethod | classmethod):
        fn = fn.__func__
    if not callable(fn):
        return None
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:
        raise ConfigError(
            f"{cls.__name__}.{method}: its type hints cannot be resolved: {exc}"
        ) from exc
    name = _msg_parameter(fn)
    request = hints.get(name) if name is not None else None
    response = hints.get("return")
    declared = getattr(fn, PUSHES, {})
    if not _is_struct(request):
        request = None
    if not _is_struct(response):
        response = None
    if request is None and response is None and not declared:
        return None
    return RouteTypes(request, response, declared, inspect.getdoc(fn) or "")


def typed_methods(cls: type, methods: Iterable[str]) -> dict[str, RouteTypes]:
    """``method -> RouteTypes`` of every typed one of ``methods`` (the routes of ``cls``)."""
    found: dict[str, RouteTypes] = {}
    for method in sorted(methods):
        types = route_types(cls, method)
        if types is not None:
            found[method] = types
    return found
