"""The log levels a server or command may be told to log from (``--log-level``)."""

from __future__ import annotations

__all__ = ["LOG_LEVELS"]

#: ``--log-level`` choices, lowest first (twisted.logger's level names).
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
