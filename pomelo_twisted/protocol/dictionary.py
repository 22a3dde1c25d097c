"""The route dictionary: route strings and the 2-byte codes that replace them.

Codes follow the reference server: handler routes sorted as strings and
numbered from 1, then the extra routes (``config/dictionary.json``, push
routes such as ``onChat``) numbered on. The version is the base64 MD5 of the
dictionary's compact JSON (``JSON.stringify``), so a client that already
holds this dictionary is not sent it again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping

from .message import MAX_ROUTE_CODE

__all__ = ["RouteDictionary"]


class RouteDictionary:
    """An immutable, two-way map between routes and codes."""

    __slots__ = ("_code_to_route", "_route_to_code", "_version")

    def __init__(self, route_to_code: Mapping[str, int]) -> None:
        codes: dict[int, str] = {}
        for route, code in route_to_code.items():
            if (
                not isinstance(code, int)
                or isinstance(code, bool)
                or not 0 < code <= MAX_ROUTE_CODE
            ):
                raise ValueError(f"route code for {route!r} must be within 1..{MAX_ROUTE_CODE}")
            if code in codes:
                raise ValueError(f"routes {codes[code]!r} and {route!r} share code {code}")
            codes[code] = route
        self._route_to_code: dict[str, int] = dict(route_to_code)
        self._code_to_route = codes
        self._version = _dict_version(self._route_to_code)

    @classmethod
    def from_routes(
        cls, handler_routes: Iterable[str], extra_routes: Iterable[str] = ()
    ) -> RouteDictionary:
        """Number sorted ``handler_routes`` from 1, then ``extra_routes`` in order."""
        mapping: dict[str, int] = {}
        # JavaScript's default sort compares UTF-16 code units, not code points.
        for route in sorted(set(handler_routes), key=lambda r: r.encode("utf-16-be")):
            mapping[route] = len(mapping) + 1
        for route in extra_routes:
            if route not in mapping:
                mapping[route] = len(mapping) + 1
        if len(mapping) > MAX_ROUTE_CODE:
            raise ValueError(f"{len(mapping)} routes do not fit in 2-byte codes")
        return cls(mapping)

    @property
    def version(self) -> str:
        """Base64 MD5 of the compact JSON of the route → code object."""
        return self._version

    def code_of(self, route: str) -> int:
        """The code of ``route``, or 0 when it is not in the dictionary."""
        return self._route_to_code.get(route, 0)

    def route_of(self, code: int) -> str | None:
        """The route of ``code``, or ``None`` when no route has it."""
        return self._code_to_route.get(code)

    def route_to_code(self) -> dict[str, int]:
        """A copy of the route → code mapping, in code order of insertion."""
        return dict(self._route_to_code)

    def code_to_route(self) -> dict[str, str]:
        """Code → route with string keys, as pomelo 2.x sends ``codeToRoute``."""
        return {str(code): route for code, route in self._code_to_route.items()}

    def __len__(self) -> int:
        return len(self._route_to_code)

    def __contains__(self, route: object) -> bool:
        return route in self._route_to_code

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RouteDictionary):
            return NotImplemented
        return self._route_to_code == other._route_to_code

    def __hash__(self) -> int:
        return hash(self._version)

    def __repr__(self) -> str:
        return f"RouteDictionary({len(self)} routes, version={self._version!r})"


def _is_array_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and str(int(key)) == key and int(key) < 2**32 - 1


def _js_key_order(route_to_code: Mapping[str, int]) -> dict[str, int]:
    """Keys in the order ``JSON.stringify`` writes them: array-index keys first, ascending."""
    index_keys = sorted((k for k in route_to_code if _is_array_index(k)), key=int)
    ordered = {k: route_to_code[k] for k in index_keys}
    ordered.update((k, v) for k, v in route_to_code.items() if k not in ordered)
    return ordered


def _dict_version(route_to_code: Mapping[str, int]) -> str:
    text = json.dumps(_js_key_order(route_to_code), separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode("ascii")
