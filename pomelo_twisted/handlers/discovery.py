"""Discovery of a game's handlers, remotes and cron handlers:
``<game>/servers/<type>/<kind>/*.py`` (kind ``handler``, ``remote`` or ``cron``).

Each file not starting with ``_`` is imported by path under a stable module name
(``pomelo_game_<hash of the game folder>.<type>.<kind>.<stem>``), and the one public
class it defines is the handler (or remote). Several classes are allowed when a
module-level ``__handler__ = "ClassName"`` names the one to use. It is named by its
``route_name`` class attribute, else by the file stem as written, so ``entryHandler.py``
serves ``<type>.entryHandler.<method>`` like Pomelo and ``entry_handler.py`` serves
``<type>.entry_handler.<method>``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Literal

from ..errors import ConfigError
from ..loading import import_file, path_digest
from .registry import check_name, class_public_methods

__all__ = ["Kind", "discover", "discover_classes", "discover_routes", "module_name"]

Kind = Literal["handler", "remote", "cron"]
KINDS = ("handler", "remote", "cron")


def module_name(base_dir: Path, server_type: str, kind: str, stem: str) -> str:
    """The stable module name a discovered file is imported under."""
    return f"pomelo_game_{path_digest(base_dir)}.{server_type}.{kind}.{stem}"


def _files(base_dir: Path, server_type: str, kind: str) -> list[Path]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    folder = base_dir / "servers" / server_type / kind
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_") and p.is_file())


def _line_in(path: Path, exc: BaseException) -> int | None:
    """The line of ``path`` where ``exc`` was raised (the deepest frame in that file)."""
    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _import(path: Path, name: str, fresh: bool) -> ModuleType:
    """Import ``path`` as module ``name``: once per process, like any import, unless
    ``fresh`` (a reload: the file as it is on disk now)."""
    try:
        return import_file(path, name=name, once=not fresh, fresh=fresh)
    except Exception as exc:
        line = _line_in(path, exc)
        where = f"{path}" if line is None else f"{path}, line {line}"
        raise ConfigError(f"{where}: import failed: {type(exc).__name__}: {exc}") from exc


def _the_class(path: Path, module: ModuleType) -> type:
    classes = {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type)
        and not name.startswith("_")
        and value.__module__ == module.__name__
    }
    chosen = getattr(module, "__handler__", None)
    if chosen is not None:
        if not isinstance(chosen, str) or chosen not in classes:
            raise ConfigError(
                f"{path}: __handler__ = {chosen!r} names no public class of the file "
                f"(classes: {', '.join(sorted(classes)) or 'none'})"
            )
        return classes[chosen]
    if len(classes) == 1:
        return next(iter(classes.values()))
    if not classes:
        raise ConfigError(f"{path}: defines no public class")
    raise ConfigError(
        f"{path}: defines several public classes ({', '.join(sorted(classes))}); "
        "name the one to serve with __handler__ = 'ClassName'"
    )


def _route_name(path: Path, cls: type, kind: str) -> str:
    name = getattr(cls, "route_name", None)
    if name is None:
        name = path.stem
    if not isinstance(name, str):
        raise ConfigError(f"{path}: route_name of {cls.__name__} must be a string")
    try:
        check_name(kind, name)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return name


def discover_classes(
    base_dir: Path, server_type: str, kind: Kind, *, fresh: bool = False
) -> list[tuple[str, type]]:
    """``(name, class)`` of every handler (or remote) file of ``server_type``, by file name.

    With ``fresh`` every file is imported again as it is on disk (its module replaces the
    one of the same name in ``sys.modules``).

    Raises ``ConfigError`` naming the file when it fails to import, when its class
    cannot be chosen, or when its name cannot be a route part. A missing folder
    yields an empty list.
    """
    found: list[tuple[str, type]] = []
    for path in _files(base_dir, server_type, kind):
        module = _import(path, module_name(base_dir, server_type, kind, path.stem), fresh)
        cls = _the_class(path, module)
        found.append((_route_name(path, cls, kind), cls))
    return found


def discover(
    base_dir: Path, server_type: str, kind: Kind, factory_arg: object, *, fresh: bool = False
) -> list[tuple[str, object]]:
    """``(name, instance)`` of every handler (or remote) of ``server_type``.

    Each class is instantiated as ``cls(factory_arg)`` (the Application, as Pomelo
    passes ``app``); a constructor failure is a ``ConfigError`` naming the file.
    """
    instances: list[tuple[str, object]] = []
    for name, cls in discover_classes(base_dir, server_type, kind, fresh=fresh):
        try:
            instance = cls(factory_arg)
        except Exception as exc:
            raise ConfigError(
                f"{sys.modules[cls.__module__].__file__}: {cls.__name__}(app) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        instances.append((name, instance))
    return instances


def discover_routes(base_dir: Path, server_type: str) -> list[str]:
    """The handler routes of ``server_type`` found on disk, sorted, without instantiating
    anything (a frontend builds the route dictionary of every server type)."""
    return sorted(
        f"{server_type}.{name}.{method}"
        for name, cls in discover_classes(base_dir, server_type, "handler")
        for method in class_public_methods(cls)
    )
