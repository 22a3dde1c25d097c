"""API documentation and client stubs from the typed routes of a game folder: a route
reference in Markdown, an AsyncAPI 3 document, and Python and TypeScript client stubs
(``pomelo-twisted docs`` and ``pomelo-twisted stubs``)."""

from __future__ import annotations

from .asyncapi import asyncapi_document
from .markdown import markdown_reference
from .routes import RouteDoc, collect_routes
from .stubs_python import python_stubs
from .stubs_typescript import typescript_stubs
from .writing import write_docs, write_stubs

__all__ = [
    "RouteDoc",
    "asyncapi_document",
    "collect_routes",
    "markdown_reference",
    "python_stubs",
    "typescript_stubs",
    "write_docs",
    "write_stubs",
]
