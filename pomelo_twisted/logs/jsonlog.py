"""One JSON object per log event, one event per line (``--log-format json``).

Each line has ``time`` (ISO 8601, UTC), ``level``, ``namespace``, ``server`` and
``type`` (who logs), ``msg`` (the formatted message), ``error`` and ``traceback`` for an
event with a failure, and, for an event of a request, the ``route``, ``sid``, ``uid``
and ``rid`` (request id) of its call context (:mod:`pomelo_twisted.callcontext`): the
context the event carries as ``call_context``, else the one current when it is emitted
(observers run in the emitter's context, so a backend's lines within a forwarded
request carry the frontend's request id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any

import orjson
from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

from ..callcontext import CALL_CONTEXT

__all__ = ["REQUEST_KEYS", "JsonLogObserver", "json_line"]

#: The call context items a request's lines carry.
REQUEST_KEYS = ("route", "sid", "uid", "rid")


def json_line(event: dict[str, Any], server: str, server_type: str) -> str:
    """The JSON line (with its newline) of ``event``, logged by ``server``."""
    when = event.get("log_time")
    stamp = datetime.fromtimestamp(when if when is not None else 0.0, UTC)
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level.name if level is not None else "info",
        "namespace": event.get("log_namespace") or "",
        "server": server,
        "type": server_type,
        "msg": formatEvent(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        record["error"] = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        record["traceback"] = failure.getTraceback()
    context = event.get("call_context") or CALL_CONTEXT.get()
    if context:
        for key in REQUEST_KEYS:
            value = context.get(key)
            if value is not None:
                record[key] = value
    try:
        data = orjson.dumps(record)
    except TypeError:  # a lone surrogate in a message: keep the line, escaped
        record = {k: v.encode("utf-8", "backslashreplace").decode() for k, v in record.items()}
        data = orjson.dumps(record)
    return data.decode() + "\n"


@implementer(ILogObserver)
class JsonLogObserver:
    """Writes each event to ``out`` as a JSON line; ``server`` and ``server_type`` name
    who logs (set them once known: twistd begins logging before the server is chosen)."""

    def __init__(self, out: IO[str], server: str = "", server_type: str = "") -> None:
        self.out = out
        self.server = server
        self.server_type = server_type

    def __call__(self, event: dict[str, Any]) -> None:
        self.out.write(json_line(event, self.server, self.server_type))
        self.out.flush()
