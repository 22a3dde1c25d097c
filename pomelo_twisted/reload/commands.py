"""The ``reload`` operator command (``pomelo-twisted reload SERVER``)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ..servercommands import ServerCommandError, ServerCommands
from .reloader import CodeReloader, ReloadError

__all__ = ["register_reload_command"]


def register_reload_command(commands: ServerCommands, reloader: CodeReloader) -> None:
    """Serve ``reload`` on ``commands``: a summary of what changed, or the error
    (file, line, message) of code that did not load, the old code still running."""

    def refused(failure: Failure) -> Failure:
        if failure.check(ReloadError):
            return Failure(ServerCommandError(failure.getErrorMessage()))
        return failure

    def reload(args: dict[str, Any]) -> Deferred[dict[str, Any]]:
        if args:
            raise ServerCommandError(f"reload takes no argument, got {', '.join(sorted(args))}")
        return reloader.reload().addErrback(refused)

    commands.register(
        "reload", reload, "reload this server's handlers, remotes and cron handlers from disk"
    )
