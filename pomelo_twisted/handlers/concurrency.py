"""Concurrent routes: handler methods whose requests skip the per-user order.

A frontend hands one client's requests to their handlers one after the other
(:mod:`pomelo_twisted.agent.ordering`). A route whose requests may run alongside
others of the same player (a read-only query, a ping, a long poll that would otherwise
hold everything behind it) is marked where its handler is declared::

    from pomelo_twisted.handlers import concurrent

    class ShopHandler:
        @concurrent
        def prices(self, msg, session): ...

The frontend must know without asking the backend, per request: every server of a game
loads the same game folder, so a frontend reads the handler classes of every server type
from disk, as it does for the route dictionary (:func:`concurrent_routes_of_game`), plus
the handlers registered on it in code (:func:`concurrent_routes_of_registry`), and gives
the set to its agents (``AgentConfig.concurrent_routes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from .discovery import discover_classes
from .registry import HandlerRegistry, class_public_methods

__all__ = [
    "CONCURRENT",
    "concurrent",
    "concurrent_methods",
    "concurrent_routes",
    "concurrent_routes_of_game",
    "concurrent_routes_of_registry",
]

CONCURRENT = "__pomelo_concurrent__"
"""The attribute :func:`concurrent` sets on a handler method."""

F = TypeVar("F", bound=Callable[..., Any])


def concurrent(fn: F) -> F:
    """Mark the handler method ``fn`` concurrent: its requests are handed over as they
    arrive, neither waiting for the player's earlier requests nor holding later ones."""
    target = fn.__func__ if isinstance(fn, staticmethod | classmethod) else fn
    if not callable(target):
        raise TypeError(f"@concurrent marks handler methods, not {fn!r}")
    setattr(target, CONCURRENT, True)
    return fn


def concurrent_methods(cls: type) -> frozenset[str]:
    """The route methods of handler class ``cls`` marked :func:`concurrent`."""
    return frozenset(
        name
        for name in class_public_methods(cls)
        if getattr(getattr(cls, name, None), CONCURRENT, False) is True
    )


def concurrent_routes_of_game(base_dir: Path, server_types: Iterable[str]) -> frozenset[str]:
    """``type.handler.method`` of every marked handler method of ``server_types`` in the
    game folder ``base_dir`` (classes imported, not instantiated)."""
    return frozenset(
        f"{server_type}.{name}.{method}"
        for server_type in server_types
        for name, cls in discover_classes(base_dir, server_type, "handler")
        for method in concurrent_methods(cls)
    )


def concurrent_routes_of_registry(registry: HandlerRegistry) -> frozenset[str]:
    """``type.handler.method`` of every marked method of the handlers in ``registry``."""
    return frozenset(
        f"{key}.{method}"
        for key, obj in registry.handlers()
        for method in concurrent_methods(type(obj))
    )


def concurrent_routes(
    registry: HandlerRegistry, base_dir: Path | None, server_types: Iterable[str]
) -> frozenset[str]:
    """Every concurrent route a frontend knows: its registered handlers' and, with a game
    folder ``base_dir``, those of ``server_types`` (the cluster's) read from disk."""
    routes = concurrent_routes_of_registry(registry)
    if base_dir is not None:
        routes |= concurrent_routes_of_game(base_dir, server_types)
    return routes
