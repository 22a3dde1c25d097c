"""The request validators of a frontend: every typed route of the game's handlers.

A frontend forwards a route of another server type with its body undecoded; when the
route is typed (:mod:`pomelo_twisted.typed`) it checks the body first. Every server of
a game loads the same game folder, so the frontend reads the handler classes of every
server type from disk (as it does for the route dictionary and ``@concurrent``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..handlers.discovery import discover_classes
from ..handlers.registry import HandlerRegistry, class_public_methods
from ..typed.validation import RequestValidator, validators_of

__all__ = ["request_validators"]


def request_validators(
    registry: HandlerRegistry, base_dir: Path | None, server_types: Iterable[str]
) -> dict[str, RequestValidator]:
    """``route -> validator`` of the typed routes of ``registry``'s handlers and, with a
    game folder ``base_dir``, of the handlers of ``server_types`` on disk."""
    handlers = [
        (key, type(obj), class_public_methods(type(obj))) for key, obj in registry.handlers()
    ]
    if base_dir is not None:
        for server_type in server_types:
            for name, cls in discover_classes(base_dir, server_type, "handler"):
                handlers.append((f"{server_type}.{name}", cls, class_public_methods(cls)))
    return validators_of(handlers)
