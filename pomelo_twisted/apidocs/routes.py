"""The routes of a game folder as the docs and stubs see them: every handler route of
every server type, with what it declares (:mod:`pomelo_twisted.typed`)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import msgspec.inspect as mi

from ..handlers.discovery import discover_classes
from ..handlers.registry import class_public_methods
from ..typed.declaration import RouteTypes, route_types

__all__ = ["ERROR_SCHEMA", "RouteDoc", "collect_routes", "server_types_of", "structs_of"]

ERROR_SCHEMA = {
    "title": "Error",
    "description": "Any route may answer this instead of its response (400 invalid request, "
    "404 no such route, 500 handler error, 504 timeout...).",
    "type": "object",
    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
    "required": ["code", "msg"],
}
"""The error body every route may answer (:func:`pomelo_twisted.responses.failure_response`)."""


@dataclass(frozen=True)
class RouteDoc:
    """One handler route: ``server_type.handler.method``, what it declares, its doc."""

    server_type: str
    handler: str
    method: str
    types: RouteTypes
    doc: str

    @property
    def route(self) -> str:
        """The route clients send."""
        return f"{self.server_type}.{self.handler}.{self.method}"

    @property
    def typed(self) -> bool:
        """Whether the route declares anything."""
        types = self.types
        return types.request is not None or types.response is not None or bool(types.pushes)


def server_types_of(base_dir: Path) -> list[str]:
    """The server types of the game folder ``base_dir`` that have handlers, sorted."""
    servers = base_dir / "servers"
    if not servers.is_dir():
        return []
    return sorted(p.name for p in servers.iterdir() if (p / "handler").is_dir())


def collect_routes(base_dir: Path, server_types: Iterable[str] | None = None) -> list[RouteDoc]:
    """Every handler route of ``server_types`` (default: all) of the game folder, sorted."""
    types = server_types_of(base_dir) if server_types is None else list(server_types)
    found: list[RouteDoc] = []
    for server_type in types:
        for name, cls in discover_classes(base_dir, server_type, "handler"):
            for method in sorted(class_public_methods(cls)):
                declared = route_types(cls, method)
                doc = inspect.getdoc(getattr(cls, method)) or ""
                found.append(
                    RouteDoc(server_type, name, method, declared or RouteTypes(doc=doc), doc)
                )
    return sorted(found, key=lambda r: r.route)


def _nested(info: mi.Type) -> Iterator[type[msgspec.Struct]]:
    if isinstance(info, mi.StructType):
        yield info.cls
        for f in info.fields:
            yield from _nested(f.type)
    elif isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        yield from _nested(info.item_type)
    elif isinstance(info, mi.DictType):
        yield from _nested(info.value_type)
    elif isinstance(info, mi.UnionType):
        for t in info.types:
            yield from _nested(t)
    elif isinstance(info, mi.TupleType):
        for t in info.item_types:
            yield from _nested(t)


def structs_of(routes: Iterable[RouteDoc]) -> list[type[msgspec.Struct]]:
    """Every Struct the routes declare, nested ones included, each once, dependencies
    first (a Struct after the Structs of its fields)."""
    seen: dict[type[msgspec.Struct], None] = {}
    for route in routes:
        declared = [route.types.request, route.types.response, *route.types.pushes.values()]
        for struct in declared:
            if struct is None:
                continue
            for found in reversed(list(_nested(mi.type_info(struct)))):
                seen.setdefault(found, None)
    return list(seen)
