"""Handlers: their registry and discovery, the request context, and the dispatcher."""

from __future__ import annotations

from .concurrency import concurrent
from .context import RequestContext, parse_route
from .discovery import discover, discover_classes, discover_routes
from .dispatch import Dispatcher, HandlerTimeout
from .registry import (
    LIFECYCLE_HOOKS,
    HandlerRegistry,
    RouteNotFound,
    class_public_methods,
    default_name,
    public_methods,
)

__all__ = [
    "LIFECYCLE_HOOKS",
    "Dispatcher",
    "HandlerRegistry",
    "HandlerTimeout",
    "RequestContext",
    "RouteNotFound",
    "class_public_methods",
    "concurrent",
    "default_name",
    "discover",
    "discover_classes",
    "discover_routes",
    "parse_route",
    "public_methods",
]
