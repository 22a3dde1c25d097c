"""One cron as configured: ``config/crons.json`` entries in pomelo's format.

The file has a section per environment (like ``servers.json``), then a list of crons
per server type::

    {"development": {"chat": [
        {"id": "tick", "time": "*/10 * * * * *", "action": "chatCron.tick"},
        {"id": 2, "serverId": "chat-server-1", "time": "0 30 10 * * *",
         "action": "chatCron.sendMoney"}
    ]}}

``action`` is ``<cron handler>.<method>``, the handler being the class of
``servers/<type>/cron/<handler>.py``; ``serverId`` (optional) keeps a cron to one server
of the type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..gameconfig import GameConfig
from .expression import CronExpression

__all__ = ["CRONS_FILE", "CronSpec", "load_crons"]

#: ``config/<CRONS_FILE>.json``.
CRONS_FILE = "crons"


@dataclass(frozen=True)
class CronSpec:
    """A cron: its id, when it fires and what it runs (``handler.method``)."""

    id: str
    time: CronExpression
    action: str
    server_id: str | None = None

    @property
    def handler(self) -> str:
        """The cron handler's name (before the dot of ``action``)."""
        return self.action.split(".", 1)[0]

    @property
    def method(self) -> str:
        """The method's name (after the dot of ``action``)."""
        return self.action.split(".", 1)[1]

    @classmethod
    def parse(cls, entry: object) -> CronSpec:
        """A cron from one entry of the file (or the admin CLI's arguments); ValueError
        naming what is wrong (the caller names the file and the cron's id)."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"a cron must be an object, not {type(entry).__name__}")
        unknown = sorted(set(entry) - {"id", "time", "action", "serverId"})
        if unknown:
            raise ValueError(f"unknown keys {', '.join(map(repr, unknown))}")
        cron_id = entry.get("id")
        if isinstance(cron_id, bool) or not isinstance(cron_id, (str, int)) or cron_id == "":
            raise ValueError(f"'id' must be a non-empty string or a number, not {cron_id!r}")
        if "time" not in entry:
            raise ValueError("'time' is missing")
        action = entry.get("action")
        if not isinstance(action, str) or action.count(".") != 1 or "" in action.split("."):
            raise ValueError(f"'action' must be 'handler.method', not {action!r}")
        server_id = entry.get("serverId")
        if server_id is not None and not isinstance(server_id, str):
            raise ValueError(f"'serverId' must be a string, not {server_id!r}")
        return cls(str(cron_id), CronExpression(entry["time"]), action, server_id)

    def to_dict(self) -> dict[str, Any]:
        """The entry as in the file."""
        out: dict[str, Any] = {"id": self.id, "time": self.time.text, "action": self.action}
        if self.server_id is not None:
            out["serverId"] = self.server_id
        return out


def load_crons(config: GameConfig, server_type: str, server_id: str) -> list[CronSpec]:
    """The crons of ``config/crons.json`` that run on server ``server_id`` of
    ``server_type`` (none without the file); ConfigError naming the file, the cron's id
    and what is wrong."""
    where = config.where(CRONS_FILE)
    data = config.load(CRONS_FILE, default={})
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected an object of server types")
    entries = data.get(server_type, [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: crons of {server_type!r} must be a list")
    crons: list[CronSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        label = entry.get("id", f"#{index}") if isinstance(entry, Mapping) else f"#{index}"
        try:
            spec = CronSpec.parse(entry)
        except ValueError as exc:
            raise ConfigError(f"{where}: cron {label!r} of {server_type!r}: {exc}") from None
        if spec.id in seen:
            raise ConfigError(f"{where}: cron {spec.id!r} of {server_type!r} is declared twice")
        seen.add(spec.id)
        if spec.server_id is None or spec.server_id == server_id:
            crons.append(spec)
    return crons
