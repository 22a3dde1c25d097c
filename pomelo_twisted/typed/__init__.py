"""Typed routes: a handler method's request and response declared as ``msgspec.Struct``
type hints, read once when the handler is loaded, checked by compiled validators.

See ``docs/typed-routes.md``.
"""

from __future__ import annotations

from .declaration import RouteTypes, pushes, route_types, typed_methods
from .validation import RequestValidator, TypedCall, invalid_request, validators_of

__all__ = [
    "RequestValidator",
    "RouteTypes",
    "TypedCall",
    "invalid_request",
    "pushes",
    "route_types",
    "typed_methods",
    "validators_of",
]
