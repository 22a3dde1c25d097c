"""How a server process logs: the levels of ``--log-level`` and the format of
``--log-format``, applied to the observers twistd begins logging to.

twistd begins logging (``beginner.beginLoggingTo``) after the plugin's ``makeService``,
with the observers its own options chose (stdout or ``--logfile``, syslog):
:meth:`LogSetup.install` makes that call wrap each in a ``FilteringLogObserver`` with
the spec's ``LogLevelFilterPredicate`` and, for ``json``, write JSON lines
(:class:`~.jsonlog.JsonLogObserver`) to the file a text observer would have written to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogBeginner,
    LogLevel,
    LogLevelFilterPredicate,
)

from ..compat import file_observer_output
from ..loglevels import LOG_FORMATS, parse_log_levels
from .jsonlog import JsonLogObserver

__all__ = ["ACCESS_NAMESPACE", "LogSetup", "level_predicate"]

#: The namespace of the access log (one line per client request; debug).
ACCESS_NAMESPACE = "pomelo_twisted.access"


def level_predicate(spec: str) -> LogLevelFilterPredicate:
    """The filter of a ``--log-level`` spec (``ValueError`` naming a bad part)."""
    default, namespaces = parse_log_levels(spec)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(default))
    for namespace, level in namespaces.items():
        predicate.setLogLevelForNamespace(namespace, LogLevel.levelWithName(level))
    return predicate


class LogSetup:
    """The levels (``spec``) and ``log_format`` of one process's log."""

    def __init__(self, spec: str = "info", log_format: str = "text") -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(
                f"unknown log format {log_format!r}; expected one of {', '.join(LOG_FORMATS)}"
            )
        self.spec = spec
        self.log_format = log_format
        self.predicate = level_predicate(spec)
        #: The JSON observers made by :meth:`install` (named by :meth:`name`).
        self.json_observers: list[JsonLogObserver] = []
        self._server = ("", "")

    def enabled(self, namespace: str, level: LogLevel) -> bool:
        """Whether an event of ``level`` in ``namespace`` is logged (checked once, by
        code that would otherwise build events for nothing, e.g. the access log)."""
        return level >= self.predicate.logLevelForNamespace(namespace)

    def name(self, server: str, server_type: str) -> None:
        """Name who logs, in every JSON line (from now on)."""
        self._server = (server, server_type)
        for observer in self.json_observers:
            observer.server, observer.server_type = server, server_type

    def observer(self, observer: ILogObserver) -> ILogObserver:
        """``observer`` filtered by the levels and, for JSON, writing JSON lines instead
        (when it writes to a file)."""
        if self.log_format == "json":
            out = file_observer_output(observer)
            if out is not None:
                json_observer = JsonLogObserver(out, *self._server)
                self.json_observers.append(json_observer)
                observer = json_observer
        return FilteringLogObserver(observer, [self.predicate])

    def install(self, beginner: LogBeginner) -> None:
        """Apply to the observers ``beginner`` begins logging to (once per beginner)."""
        attributes = vars(beginner)  # an instance attribute shadows the method
        if "_pomelo_log_setup" in attributes:
            return
        begin = beginner.beginLoggingTo

        def begin_configured(observers: Iterable[ILogObserver], *args: Any, **kw: Any) -> None:
            begin([self.observer(o) for o in observers], *args, **kw)

        attributes["beginLoggingTo"] = begin_configured
        attributes["_pomelo_log_setup"] = self
