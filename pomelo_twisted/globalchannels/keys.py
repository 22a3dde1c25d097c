"""The Redis keys of one cluster's global channels and online status.

Every key starts with the cluster's prefix ``P``:

``P:gc:{name}``
    hash ``uid -> frontend_id``: the members of global channel ``name`` (a uid is on one
    frontend at a time; joining again from another frontend moves it).
``P:gcu:{len(frontend_id)}:{frontend_id}:{uid}``
    set of the channel names ``uid`` joined through ``frontend_id``: what
    :meth:`leave_all` reads when the uid's session closes.
``P:gcfe:{frontend_id}``
    set of the uids that joined channels through ``frontend_id``: with the sets above,
    what :meth:`remove_frontend` reads, never every channel.
``P:online:{frontend_id}``
    set of the uids bound on a frontend; it expires unless the frontend refreshes it.
``P:fronts``
    hash ``frontend_id -> server_type`` of the frontends that report online users.

Names, uids and frontend ids are non-empty strings without NUL. This module imports
nothing from Twisted.
"""

from __future__ import annotations

__all__ = ["RedisKeys"]


class RedisKeys:
    """Key names under ``prefix``."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = _checked(prefix, "Redis key prefix")

    def __repr__(self) -> str:
        return f"RedisKeys({self.prefix!r})"

    def channel(self, name: str) -> str:
        """The hash of channel ``name``'s members."""
        return f"{self.prefix}:gc:{_checked(name, 'channel name')}"

    def joined(self, frontend_id: str, uid: str) -> str:
        """The set of channels ``uid`` joined through ``frontend_id``."""
        frontend_id = _checked(frontend_id, "frontend id")
        # The length keeps ("a:b", "c") and ("a", "b:c") apart.
        return f"{self.prefix}:gcu:{len(frontend_id)}:{frontend_id}:{_checked(uid, 'uid')}"

    def frontend_uids(self, frontend_id: str) -> str:
        """The set of uids that joined channels through ``frontend_id``."""
        return f"{self.prefix}:gcfe:{_checked(frontend_id, 'frontend id')}"

    def online(self, frontend_id: str) -> str:
        """The set of uids online on ``frontend_id``."""
        return f"{self.prefix}:online:{_checked(frontend_id, 'frontend id')}"

    def frontends(self) -> str:
        """The hash of the frontends reporting online users, to their server type."""
        return f"{self.prefix}:fronts"


def _checked(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError(f"a {what} is a non-empty string without NUL, not {value!r}")
    return value
