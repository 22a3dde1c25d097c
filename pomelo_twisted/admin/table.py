"""The table ``pomelo-twisted list`` prints: one aligned line per server."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["COLUMNS", "cell", "format_breakers", "format_table", "format_uptime"]

COLUMNS = (
    "ID",
    "TYPE",
    "STATE",
    "PID",
    "HOST:PORT",
    "UPTIME",
    "CONNECTIONS",
    "RESTARTS",
    "BREAKERS",
)


def format_uptime(seconds: float | None) -> str:
    """``45s``, ``12m05s``, ``1h02m``, ``3d04h``; ``-`` for None."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def cell(value: object) -> str:
    """A table cell: ``-`` for nothing."""
    return "-" if value is None or value == "" else str(value)


def _host_port(row: Mapping[str, Any]) -> str:
    host, port = row.get("host"), row.get("port")
    if host is None and port is None:
        return "-"
    host_text = cell(host)
    if ":" in host_text:
        host_text = f"[{host_text}]"
    return f"{host_text}:{cell(port)}"


def format_breakers(breakers: object) -> str:
    """The peers whose circuit breaker is not closed, ``chat-2:open,chat-3:half-open``;
    ``-`` when there are none (a server's ``breakers`` stats)."""
    if not isinstance(breakers, Mapping) or not breakers:
        return "-"
    return ",".join(f"{peer}:{state}" for peer, state in sorted(breakers.items()))


def format_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows of ``list`` as an aligned table (header first), one line per server."""
    lines = [list(COLUMNS)]
    for row in rows:
        uptime = row.get("uptime")
        lines.append(
            [cell(row.get(key)) for key in ("id", "type", "state", "pid")]
            + [_host_port(row), format_uptime(uptime if isinstance(uptime, int | float) else None)]
            + [cell(row.get("connections")), cell(row.get("restarts"))]
            + [format_breakers(row.get("breakers"))]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in lines
    )
