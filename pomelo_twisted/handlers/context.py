"""RequestContext: one request on its way through filters to a handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RequestContext", "parse_route"]


def parse_route(route: str) -> tuple[str, str, str] | None:
    """``type.handler.method`` split in three non-empty parts, or ``None``."""
    parts = route.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


@dataclass(slots=True)
class RequestContext:
    """What filters and the error handler see of a request.

    ``session`` is a frontend ``Session`` or a ``BackendSession`` (same API).
    ``timeout``, when a before-filter sets it, aborts a slower handler with 504.
    ``attributes`` is free space for filters (e.g. the serial filter's ticket).
    """

    route: str
    server_type: str
    handler: str
    method: str
    msg: Any
    session: Any
    started: float
    notify: bool = False
    timeout: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
