"""The commands an operator may run on one live server (``app.commands``).

A server declares named commands (``drain``, ``reload``, ``cron.add``, ...), each a
function of a dict of plain arguments returning plain data, a Deferred or a coroutine
of it. The admin CLI reaches them through the master (``pomelo-twisted command ID NAME
key=value ...``, and the commands built on it): the master relays the call over the
server's link (:class:`~pomelo_twisted.cluster.monitor.MonitorClient`). A command that
does not exist, or refuses its arguments, raises :class:`ServerCommandError` with a
message naming the culprit; that message is what the operator reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed

from .errors import PomeloError
from .results import call_settled

__all__ = ["ServerCommandError", "ServerCommands"]

Command = Callable[[dict[str, Any]], Any]


class ServerCommandError(PomeloError):
    """A server command was refused: unknown, bad arguments, or failed on purpose."""


class ServerCommands:
    """One server's commands, by name."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self._commands: dict[str, tuple[Command, str]] = {}

    def register(self, name: str, fn: Command, help_text: str) -> None:
        """Serve ``fn(args)`` as command ``name``; ValueError if the name is taken."""
        if name in self._commands:
            raise ValueError(f"{self.server_id}: a command named {name!r} exists already")
        self._commands[name] = (fn, help_text)

    def unregister(self, name: str) -> None:
        """Stop serving ``name`` (nothing if unknown)."""
        self._commands.pop(name, None)

    def describe(self) -> dict[str, str]:
        """Every command's name and help, sorted by name."""
        return {name: self._commands[name][1] for name in sorted(self._commands)}

    def run(self, name: str, args: Mapping[str, Any] | None = None) -> Deferred[Any]:
        """A Deferred of command ``name``'s answer; ServerCommandError when it is unknown
        (the message lists the known ones) or refuses. ``help`` lists them."""
        if name == "help":
            return succeed(self.describe())
        entry = self._commands.get(name)
        if entry is None:
            known = ", ".join(["help", *sorted(self._commands)])
            return fail(
                ServerCommandError(
                    f"server {self.server_id} has no command {name[:80]!r} (it has: {known})"
                )
            )
        result = call_settled(entry[0], dict(args or {}))
        return result if isinstance(result, Deferred) else succeed(result)
