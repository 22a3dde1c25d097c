"""Importing a game's Python files by path: its ``app.py``, its handler and remote files,
a bot scenario file. The one importer of the framework."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["import_file", "path_digest"]


def path_digest(path: Path) -> str:
    """A short stable hash of ``path`` (resolved), for module names unique per file/folder."""
    return hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:12]


def import_file(
    path: Path,
    prefix: str = "pomelo_file_",
    *,
    name: str | None = None,
    once: bool = False,
    fresh: bool = False,
) -> ModuleType:
    """Import the file at ``path`` as module ``name`` (default: ``prefix`` + a hash of the path).

    The module is in ``sys.modules`` while it runs and afterwards (dataclasses and
    pickling look classes up by module name); with ``once``, a module of that name
    already loaded from the same file is returned as it is (handler files are imported
    once per process, like any import), otherwise the file runs again.

    ``ImportError`` when it cannot be loaded; an exception the module raises while
    it runs propagates unchanged (the caller names the file in its own error), and
    the half-run module is dropped from ``sys.modules``.
    """
    if name is None:
        name = prefix + path_digest(path)
    if once:
        loaded = sys.modules.get(name)
        loaded_file = getattr(loaded, "__file__", None)
        if loaded is not None and loaded_file and Path(loaded_file).resolve() == path.resolve():
            return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True) if fresh else None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        if code is None:
            spec.loader.exec_module(module)
        else:
            exec(code, module.__dict__)
    except BaseException:
        if sys.modules.get(name) is module:
            del sys.modules[name]
        raise
    return module
