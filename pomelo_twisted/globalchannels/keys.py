"""The Redis keys of one cluster's global channels and online status.

Every key starts with the cluster's prefix ``P``:

``P:gc:{name}``
    hash ``uid -> frontend_id``: the members of global channel ``name`` (a uid is on one
    frontend at a time; joining again from another frontend moves it).
``P:gcfe:{frontend_id}``
    set of ``name NUL uid``: the memberships held by a frontend, so that
    :meth:`remove_frontend` touches only that frontend's members, never every channel.
``P:online:{frontend_id}``
    set of the uids bound on a frontend; it expires unless the frontend refreshes it.
``P:fronts``
    hash ``frontend_id -> server_type`` of the frontends that report online users.

This module imports nothing from Twisted.
"""

from __future__ import annotations

__all__ = ["RedisKeys"]

_SEP = "\x00"


class RedisKeys:
    """Key names under ``prefix``."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        if not prefix or _SEP in prefix:
            raise ValueError(f"a Redis key prefix is a non-empty string, not {prefix!r}")
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"RedisKeys({self.prefix!r})"

    def channel(self, name: str) -> str:
        """The hash of channel ``name``'s members."""
        return f"{self.prefix}:gc:{_checked(name, 'channel name')}"

    def frontend_memberships(self, frontend_id: str) -> str:
        """The set of memberships held by ``frontend_id``."""
        return f"{self.prefix}:gcfe:{_checked(frontend_id, 'frontend id')}"

    def online(self, frontend_id: str) -> str:
        """The set of uids online on ``frontend_id``."""
        return f"{self.prefix}:online:{_checked(frontend_id, 'frontend id')}"

    def frontends(self) -> str:
        """The hash of the frontends reporting online users, to their server type."""
        return f"{self.prefix}:fronts"

    @staticmethod
    def membership(name: str, uid: str) -> str:
        """One entry of a frontend's membership set."""
        return f"{_checked(name, 'channel name')}{_SEP}{_checked(uid, 'uid')}"

    @staticmethod
    def split_membership(entry: str) -> tuple[str, str]:
        """``(name, uid)`` of a membership entry; ``ValueError`` when it is not one."""
        name, sep, uid = entry.partition(_SEP)
        if not sep or not name or not uid:
            raise ValueError(f"not a channel membership: {entry!r}")
        return name, uid


def _checked(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or _SEP in value:
        raise ValueError(f"a {what} is a non-empty string without NUL, not {value!r}")
    return value
