"""Commands from ``pomelo-twisted`` to the servers and host supervisors, through etcd.

The admin CLI writes a :class:`Command` as JSON under ``{prefix}/commands/{target}`` (on a
short lease, so commands clean themselves up); the target is a server id, or ``@HOST`` for
the supervisor of a host (``@*``: the one started without ``--host``):

- ``stop`` for a server: it exits 0 by itself; its supervisor expects the exit (no restart);
- ``restart`` for a server: its host's supervisor stops it and starts it again;
- ``stop`` for ``@HOST``: the supervisor stops its servers, then itself;
- ``add`` for ``@HOST``, with ``entry`` (a servers.json entry plus ``type``): the supervisor
  starts that server (``twistd pomelo --server JSON``) and supervises it.

Watchers act only on commands written while they run (never on those of a snapshot).
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["COMMANDS", "Command", "command_key", "decode_command", "encode_command"]

COMMANDS = ("stop", "restart", "add")


class Command(msgspec.Struct, frozen=True):
    """One command: its name, when it was issued (seconds since the epoch) and, for
    ``add``, the server's entry."""

    command: str
    issued: float = 0.0
    entry: dict[str, Any] | None = None


def command_key(prefix: str, target: str) -> str:
    """Where commands for ``target`` (a server id, or ``@HOST``) are written."""
    return f"{prefix}/commands/{target}"


def encode_command(command: str, issued: float, entry: dict[str, Any] | None = None) -> bytes:
    """The value of a command key; ValueError naming an unknown command."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    return msgspec.json.encode(Command(command, issued, entry))


def decode_command(value: bytes) -> Command | None:
    """The command of a command key's value, or None when it is not one."""
    try:
        command = msgspec.json.decode(value, type=Command)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return command if command.command in COMMANDS else None
