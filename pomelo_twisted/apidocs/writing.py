"""The files ``pomelo-twisted docs`` and ``pomelo-twisted stubs`` write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from .asyncapi import asyncapi_document
from .markdown import markdown_reference
from .routes import collect_routes
from .stubs_python import python_stubs
from .stubs_typescript import typescript_stubs

__all__ = ["STUB_FILES", "write_docs", "write_stubs"]

Lang = Literal["python", "typescript"]
STUB_FILES: dict[str, str] = {"python": "pomelo_api.py", "typescript": "pomelo_api.ts"}
"""The file each language's stubs are written to."""


def _title(base_dir: Path) -> str:
    return base_dir.resolve().name


def write_docs(base_dir: Path, out: Path) -> list[Path]:
    """Write ``routes.md`` and ``asyncapi.json`` of the game folder ``base_dir`` in ``out``
    (created when missing); the paths written."""
    routes = collect_routes(base_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown, asyncapi = out / "routes.md", out / "asyncapi.json"
    markdown.write_text(markdown_reference(routes, _title(base_dir)), encoding="utf-8")
    document = asyncapi_document(routes, _title(base_dir))
    asyncapi.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return [markdown, asyncapi]


def write_stubs(base_dir: Path, lang: Lang, out: Path) -> Path:
    """Write the ``lang`` client stubs of the game folder ``base_dir`` in ``out``; the path."""
    if lang not in STUB_FILES:
        raise ValueError(f"lang must be one of {sorted(STUB_FILES)}, not {lang!r}")
    routes = collect_routes(base_dir)
    writer = python_stubs if lang == "python" else typescript_stubs
    out.mkdir(parents=True, exist_ok=True)
    path = out / STUB_FILES[lang]
    path.write_text(writer(routes, _title(base_dir)), encoding="utf-8")
    return path
