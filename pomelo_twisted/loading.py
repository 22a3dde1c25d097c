"""Importing a game's Python files by path (its ``app.py``, a bot scenario file)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["import_file"]


def import_file(path: Path, prefix: str) -> ModuleType:
    """Import the file at ``path`` as a module named ``prefix`` + a hash of its path.

    ``ImportError`` when it cannot be loaded; an exception the module raises while
    it runs propagates unchanged (the caller names the file in its own error).
    """
    name = prefix + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
