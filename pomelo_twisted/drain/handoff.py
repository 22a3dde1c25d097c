"""A server's state, handed to its next incarnation through a file.

Before a drained server exits it writes :func:`write_handoff`: msgpack of
``{"server": id, "written": seconds, "states": {name: snapshot}}`` from each
:class:`~pomelo_twisted.drain.interfaces.IStateHandoff`, atomically (a temporary file
renamed over ``logs/<id>.handoff``). The next incarnation reads it once at start
(:func:`read_handoff`: the file is deleted, and used only when written by the same
server id less than ``max_age`` seconds ago) and gives each state its part.
:class:`ChannelsHandoff` is the channels' members (the example chat's rooms).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

from twisted.logger import Logger
from zope.interface import implementer

from ..rpc.payload import pack_plain, unpack_plain
from .interfaces import IStateHandoff

__all__ = [
    "HANDOFF_MAX_AGE",
    "ChannelsHandoff",
    "read_handoff",
    "restore_states",
    "snapshot_states",
    "write_handoff",
]

log = Logger()

#: Seconds a hand-off file stays good: an older one is from another deploy, not a restart.
HANDOFF_MAX_AGE = 120.0


def write_handoff(path: Path, server_id: str, states: Mapping[str, object], now: float) -> int:
    """Write ``states`` to ``path`` atomically; the bytes written."""
    data = pack_plain({"server": server_id, "written": now, "states": dict(states)})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return len(data)


def read_handoff(path: Path, server_id: str, now: float, max_age: float) -> dict[str, Any] | None:
    """The states in ``path`` (deleted once read), or None when there is none, it is
    older than ``max_age`` seconds, from another server id, or malformed (logged)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    finally:
        with suppress(FileNotFoundError):
            path.unlink()
    try:
        content = unpack_plain(data)
    except ValueError as exc:
        log.warn("ignored the malformed hand-off file {path}: {why}", path=str(path), why=exc)
        return None
    if not isinstance(content, dict) or not isinstance(content.get("states"), dict):
        log.warn("ignored the malformed hand-off file {path}", path=str(path))
        return None
    written = content.get("written")
    if content.get("server") != server_id or not isinstance(written, (int, float)):
        log.warn(
            "ignored the hand-off file {path}: not {server}'s", path=str(path), server=server_id
        )
        return None
    age = now - written
    if not 0 <= age <= max_age:
        log.info(
            "ignored the hand-off file {path}: written {age:.0f}s ago (at most {max_age}s)",
            path=str(path),
            age=age,
            max_age=max_age,
        )
        return None
    return content["states"]


def snapshot_states(handoffs: Iterable[IStateHandoff]) -> dict[str, object]:
    """Each state's snapshot by name; one that fails is left out (and logged)."""
    states: dict[str, object] = {}
    for handoff in handoffs:
        try:
            states[handoff.name] = handoff.snapshot()
        except Exception:
            log.failure("the snapshot of {name} failed: not handed off", name=handoff.name)
    return states


def restore_states(handoffs: Iterable[IStateHandoff], states: Mapping[str, object]) -> list[str]:
    """Give each state its part of ``states``; the names restored."""
    restored = []
    for handoff in handoffs:
        if handoff.name not in states:
            continue
        try:
            handoff.restore(states[handoff.name])
        except ValueError as exc:
            log.warn("the hand-off of {name} is malformed: {why}", name=handoff.name, why=exc)
            continue
        except Exception:
            log.failure("restoring {name} failed", name=handoff.name)
            continue
        restored.append(handoff.name)
    return restored


class _Channel(Protocol):
    name: str

    def add(self, uid: str, frontend_id: str) -> bool: ...

    def member(self, uid: str) -> str | None: ...

    def members(self) -> list[str]: ...


class _Channels(Protocol):
    def channels(self) -> list[Any]: ...

    def get(self, name: str, create: bool = False) -> Any: ...


@implementer(IStateHandoff)
class ChannelsHandoff:
    """The members of a ChannelService's channels: ``{channel: {uid: frontend id}}``."""

    name = "channels"

    def __init__(self, channels: _Channels) -> None:
        self.channels = channels

    def snapshot(self) -> dict[str, dict[str, str]]:
        """Every channel's members and the frontend each is on."""
        snapshot: dict[str, dict[str, str]] = {}
        for channel in self.channels.channels():
            members = {}
            for uid in channel.members():
                frontend = channel.member(uid)
                if frontend is not None:
                    members[uid] = frontend
            snapshot[channel.name] = members
        return snapshot

    def restore(self, state: object) -> None:
        """Add the members back (to the channels, created if need be)."""
        if not isinstance(state, dict):
            raise ValueError(f"channels: expected a dict, got {type(state).__name__}")
        for name, members in state.items():
            if type(name) is not str or not isinstance(members, dict):
                raise ValueError(f"channels: bad entry {name!r}")
            channel = self.channels.get(name, create=True)
            for uid, frontend in members.items():
                if type(uid) is str and type(frontend) is str:
                    channel.add(uid, frontend)
