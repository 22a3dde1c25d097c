"""Crons: ``config/crons.json`` in pomelo's format, run on the injected clock by a
:class:`CronService` child of each server, managed at run time by the ``cron.*`` commands."""

from __future__ import annotations

from .commands import register_cron_commands
from .expression import CronExpression
from .service import CronJob, CronService, check_action
from .spec import CRONS_FILE, CronSpec, load_crons
from .wiring import build_crons

__all__ = [
    "CRONS_FILE",
    "CronExpression",
    "CronJob",
    "CronService",
    "CronSpec",
    "build_crons",
    "check_action",
    "load_crons",
    "register_cron_commands",
]
