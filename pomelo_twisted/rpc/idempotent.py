"""Idempotent remotes: the only calls ever retried, once, on another server of the type.

A remote method that may safely run twice (a read, a ``set`` to a value, an operation
keyed by a request id) is marked where it is declared::

    from pomelo_twisted.rpc import idempotent

    class RoomRemote:
        @idempotent
        def members(self, rid: str) -> list[str]: ...

A routed call (``app.rpc.<type>.<remote>.<method>(route_param, *args)``) of such a
method that could not be sent (``PeerUnavailable``: the server is unknown, down, not
connected or its circuit breaker is open; nothing ran there) is sent once more to
another server of the type: the next on the hash ring with
:func:`~pomelo_twisted.rpc.hashring.consistent_hash_route`, else the next by sorted id
(:meth:`~pomelo_twisted.rpc.router.Router.fallback`). A timeout, a lost connection or an
error of the remote is never retried (the remote may have run), nor is any call of a
method not marked, nor a call to a given server (``.to(id)``, ``.to_all``).

The caller decides, so the caller must know: the marks reach it through an
:class:`IdempotentRemotes` table on its Router (``app.router.idempotent``), filled from
the remote classes themselves. Every server of a game loads the same game folder, so a
server reads the remote classes of every type from disk without instantiating them
(:meth:`IdempotentRemotes.declare_game`, e.g. in the game's ``configure(app)``), or a
remote class is declared directly (:meth:`IdempotentRemotes.declare_class`), or single
methods (:meth:`IdempotentRemotes.declare`). There is no global registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError
from ..handlers.discovery import discover_classes
from ..handlers.registry import class_public_methods

__all__ = ["IDEMPOTENT", "IdempotentRemotes", "idempotent", "idempotent_methods"]

IDEMPOTENT = "__pomelo_idempotent__"
"""The attribute :func:`idempotent` sets on a remote method."""

F = TypeVar("F", bound=Callable[..., Any])


def idempotent(fn: F) -> F:
    """Mark the remote method ``fn`` idempotent: a routed call of it that could not be
    sent is retried once on another server of its type (see the module)."""
    target = fn.__func__ if isinstance(fn, staticmethod | classmethod) else fn
    if not callable(target):
        raise TypeError(f"@idempotent marks remote methods, not {fn!r}")
    setattr(target, IDEMPOTENT, True)
    return fn


def idempotent_methods(cls: type) -> frozenset[str]:
    """The remote methods of ``cls`` marked :func:`idempotent`."""
    marked = set()
    for name in class_public_methods(cls):
        attr = getattr(cls, name, None)
        if getattr(attr, IDEMPOTENT, False) is True:
            marked.add(name)
    return frozenset(marked)


class IdempotentRemotes:
    """Which ``(server type, remote, method)`` may be retried, on the caller's side."""

    __slots__ = ("_declared", "retries")

    def __init__(self) -> None:
        self._declared: set[tuple[str, str, str]] = set()
        #: Calls retried on another server (each at most once).
        self.retries = 0

    def __len__(self) -> int:
        return len(self._declared)

    def __contains__(self, key: object) -> bool:
        """``(server_type, remote, method) in remotes``."""
        return key in self._declared

    def declare(self, server_type: str, remote: str, *methods: str) -> None:
        """``server_type.remote.<each of methods>`` are idempotent."""
        for name in (server_type, remote, *methods):
            if not isinstance(name, str) or not name or name.startswith("_"):
                raise ConfigError(f"idempotent remote: {name!r} is not a public name")
        self._declared.update((server_type, remote, method) for method in methods)

    def declare_class(self, server_type: str, remote: str, cls: type) -> frozenset[str]:
        """The methods of remote class ``cls`` marked :func:`idempotent`, declared as
        ``server_type.remote.<method>``; returns them."""
        methods = idempotent_methods(cls)
        if methods:
            self.declare(server_type, remote, *sorted(methods))
        return methods

    def declare_game(self, base_dir: Path | str, server_types: Iterable[str]) -> int:
        """Read the remote classes of each of ``server_types`` in the game folder
        ``base_dir`` (imported, not instantiated) and declare their marked methods;
        returns how many were declared. ``ConfigError`` names a remote file that fails."""
        before = len(self._declared)
        for server_type in server_types:
            for name, cls in discover_classes(Path(base_dir), server_type, "remote"):
                self.declare_class(server_type, name, cls)
        return len(self._declared) - before

    def is_idempotent(self, server_type: str, remote: str, method: str) -> bool:
        """May a call of ``server_type.remote.method`` be retried?"""
        return (server_type, remote, method) in self._declared
