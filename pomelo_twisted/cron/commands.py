"""The operator commands of a server's crons: ``cron.list``, ``cron.add``, ``cron.remove``
(``pomelo-twisted cron list|add|remove SERVER ...``)."""

from __future__ import annotations

from typing import Any

from ..servercommands import ServerCommandError, ServerCommands
from .service import CronService
from .spec import CronSpec

__all__ = ["register_cron_commands"]


def register_cron_commands(commands: ServerCommands, crons: CronService) -> None:
    """Serve the cron commands of ``crons`` on ``commands``."""

    def list_crons(args: dict[str, Any]) -> dict[str, Any]:
        return {"server": crons.server_id, "crons": crons.describe()}

    def add(args: dict[str, Any]) -> dict[str, Any]:
        try:
            spec = CronSpec.parse(args)
            job = crons.add(spec)
        except ValueError as exc:
            raise ServerCommandError(f"{crons.server_id}: cron not added: {exc}") from None
        return {"added": job.describe(), "crons": len(crons.jobs)}

    def remove(args: dict[str, Any]) -> dict[str, Any]:
        cron_id = args.get("id")
        if cron_id is None:
            raise ServerCommandError("cron.remove needs id=<cron id>")
        job = crons.remove(str(cron_id))
        if job is None:
            known = ", ".join(sorted(crons.jobs)) or "none"
            raise ServerCommandError(
                f"{crons.server_id} has no cron {cron_id!r} (its crons: {known})"
            )
        return {"removed": job.describe(), "crons": len(crons.jobs)}

    commands.register("cron.list", list_crons, "the crons of this server, with their next time")
    commands.register(
        "cron.add",
        add,
        "add a cron: id=ID time='<sec> <min> <hour> <dom> <mon> <dow>' action=handler.method",
    )
    commands.register("cron.remove", remove, "remove a cron: id=ID")
