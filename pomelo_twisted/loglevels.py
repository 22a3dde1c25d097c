"""The log levels a server or command may be told to log from (``--log-level``), and
the log formats (``--log-format``).

A level spec is a default level and, optionally, levels of namespaces (a namespace
covers those below it): ``info,pomelo_twisted.rpc=debug,pomelo_twisted.kv=warn``.
:func:`parse_log_levels` reads one; it is plain Python (the ``pomelo-twisted`` command
checks its options with it before starting anything).
"""

from __future__ import annotations

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "parse_log_levels"]

#: ``--log-level`` levels, lowest first (twisted.logger's level names).
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")

#: ``--log-format`` choices: Twisted's text lines, or one JSON object per line.
LOG_FORMATS = ("text", "json")


def parse_log_levels(spec: str) -> tuple[str, dict[str, str]]:
    """``(default level, {namespace: level})`` of ``spec``; ``ValueError`` naming the
    part that is not ``LEVEL`` (first, optional) or ``NAMESPACE=LEVEL``."""
    default = "info"
    namespaces: dict[str, str] = {}
    parts = [part.strip() for part in spec.split(",")]
    for index, part in enumerate(parts):
        name, equals, level = part.rpartition("=")
        if not equals:
            if index != 0:
                raise ValueError(
                    f"log level spec {spec!r}: {part!r} needs NAMESPACE=LEVEL "
                    "(only the first part may be a bare default level)"
                )
            name, level = "", part
        name, level = name.strip(), level.strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(
                f"log level spec {spec!r}: {part!r} has an unknown level {level!r}; "
                f"expected one of {', '.join(LOG_LEVELS)}"
            )
        if equals and (not name or any(not word for word in name.split("."))):
            raise ValueError(f"log level spec {spec!r}: {part!r} names no namespace")
        if equals:
            namespaces[name] = level
        else:
            default = level
    return default, namespaces
