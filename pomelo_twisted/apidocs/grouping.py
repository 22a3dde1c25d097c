"""How stubs name routes: ``api.<server type>.<method>``, or ``<handler>_<method>`` when
two handlers of one server type share a method name."""

from __future__ import annotations

import keyword
from collections import Counter
from collections.abc import Sequence

from .routes import RouteDoc

__all__ = ["by_server_type", "identifier"]


def identifier(name: str) -> str:
    """``name`` as an identifier of both Python and TypeScript."""
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not text or text[0].isdigit():
        text = "_" + text
    return text + "_" if keyword.iskeyword(text) else text


def by_server_type(routes: Sequence[RouteDoc]) -> dict[str, list[tuple[str, RouteDoc]]]:
    """``server type -> [(stub method name, route)]`` in route order."""
    grouped: dict[str, list[tuple[str, RouteDoc]]] = {}
    for server_type in sorted({r.server_type for r in routes}):
        mine = [r for r in routes if r.server_type == server_type]
        counts = Counter(r.method for r in mine)
        grouped[server_type] = [
            (identifier(r.method if counts[r.method] == 1 else f"{r.handler}_{r.method}"), r)
            for r in mine
        ]
    return grouped
