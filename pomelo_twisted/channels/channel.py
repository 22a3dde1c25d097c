"""A channel: a named group of users, each on one frontend, pushed to as a whole.

A push is grouped by frontend: exactly one call
``rpc(frontend_id, "pomelo.sys", "push", (route, msg, uids))`` per frontend holding members,
all fired at once; the frontend encodes the message once for all its members. A call
that fails does not fail the others; an RPC failure is a warning logged at most once per
interval and kind, with a count (a frontend that is down fails every push to it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..errors import RpcError
from ..rpc.logagg import RepeatedWarning
from ..session.backend import SYS_SERVICE, RpcCall

__all__ = ["Channel", "call_frontends", "group_by_frontend"]

log = Logger()


def group_by_frontend(members: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``{frontend_id: [uid, ...]}`` from ``(uid, frontend_id)`` pairs, order kept."""
    groups: dict[str, dict[str, None]] = {}
    for uid, frontend_id in members:
        groups.setdefault(frontend_id, {})[uid] = None
    return {frontend_id: list(uids) for frontend_id, uids in groups.items()}


def call_frontends(
    rpc: RpcCall,
    method: str,
    calls: Mapping[str, tuple[Any, ...]],
    route: str,
    warnings: RepeatedWarning | None = None,
) -> Deferred[int]:
    """Call ``method`` of the system service on each frontend of ``calls`` concurrently.

    Fires with the number of calls that succeeded; an RPC failure goes to ``warnings``
    (repeats counted, not logged one by one), any other failure is logged with its
    traceback.
    """
    if not calls:
        return succeed(0)

    def failed(failure: Failure, frontend_id: str) -> bool:
        if failure.check(RpcError):
            (warnings or RepeatedWarning(log)).warn(
                "{method} {route} to {frontend} failed: {error}",
                method=method,
                route=route,
                frontend=frontend_id,
                error=failure.getErrorMessage(),
            )
        else:
            log.failure(
                "{method} {route} to {frontend} failed",
                failure,
                method=method,
                route=route,
                frontend=frontend_id,
                level=LogLevel.error,
            )
        return False

    pending = [
        maybeDeferred(rpc, frontend_id, SYS_SERVICE, method, args)
        .addCallback(lambda _: True)
        .addErrback(failed, frontend_id)
        for frontend_id, args in calls.items()
    ]
    return DeferredList(pending).addCallback(lambda results: sum(1 for _, ok in results if ok))


class Channel:
    """Named group of users: ``uid -> frontend_id``, in join order."""

    __slots__ = ("_groups", "_members", "_rpc", "_warnings", "destroyed", "name")

    def __init__(self, name: str, rpc: RpcCall, warnings: RepeatedWarning | None = None) -> None:
        self.name = name
        self.destroyed = False
        self._rpc = rpc
        self._warnings = warnings if warnings is not None else RepeatedWarning(log)
        self._members: dict[str, str] = {}
        self._groups: dict[str, list[str]] | None = None
        """The members by frontend, kept between pushes until the membership changes
        (the lists go to the frontends as they are: nothing may change them)."""

    def __repr__(self) -> str:
        return f"<Channel {self.name!r}: {len(self._members)} members>"

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, uid: object) -> bool:
        return uid in self._members

    def add(self, uid: str, frontend_id: str) -> bool:
        """Add ``uid`` on ``frontend_id``; False if it is already there or destroyed.

        A member who joins again from another frontend (a new login) moves there and
        keeps its place in the join order.
        """
        if self.destroyed or self._members.get(uid) == frontend_id:
            return False
        self._members[uid] = frontend_id
        self._groups = None
        return True

    def leave(self, uid: str, frontend_id: str) -> bool:
        """Remove ``uid`` if it is a member on ``frontend_id`` (a stale leave from an
        older frontend does not remove a newer login); whether it was removed."""
        if self._members.get(uid) != frontend_id:
            return False
        del self._members[uid]
        self._groups = None
        return True

    def members(self) -> list[str]:
        """The member uids in join order."""
        return list(self._members)

    def member(self, uid: str) -> str | None:
        """The frontend id of member ``uid``, or None."""
        return self._members.get(uid)

    def clear(self) -> None:
        """Remove every member."""
        self._members.clear()
        self._groups = None

    def push(self, route: str, msg: object, exclude: Sequence[str] = ()) -> Deferred[int]:
        """Push ``msg`` on ``route`` to every member but ``exclude``: one call per frontend.

        Fires with how many frontends took the push (failures are logged).
        """
        groups = self._groups
        if groups is None:
            groups = self._groups = group_by_frontend(self._members.items())
        if exclude:
            excluded = set(exclude)
            groups = {
                frontend: kept
                for frontend, uids in groups.items()
                if (kept := [uid for uid in uids if uid not in excluded])
            }
        calls = {frontend_id: (route, msg, uids) for frontend_id, uids in groups.items()}
        return call_frontends(self._rpc, "push", calls, route, self._warnings)
