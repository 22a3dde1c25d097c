"""Building a server's crons: ``config/crons.json`` and ``servers/<type>/cron/*.py``."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

from ..errors import ConfigError
from ..gameconfig import GameConfig, ServerInfo
from ..handlers.discovery import discover
from .service import CronService
from .spec import CRONS_FILE, load_crons

__all__ = ["build_crons"]


def build_crons(
    config: GameConfig, server: ServerInfo, clock: IReactorTime, app: object
) -> CronService:
    """A :class:`CronService` with the crons of ``server`` and the cron handlers of its
    type (each built as ``cls(app)``, like handlers), not started.

    ConfigError naming the file, the cron's id and what is wrong for a bad expression
    or an action that no cron handler of the server's type has."""
    handlers = dict(discover(config.base_dir, server.type, "cron", app))
    crons = CronService(clock, handlers, server.id)
    for spec in load_crons(config, server.type, server.id):
        try:
            crons.add(spec)
        except ValueError as exc:
            raise ConfigError(
                f"{config.where(CRONS_FILE)}: cron {spec.id!r} of {server.type!r}: {exc}"
            ) from None
    return crons
