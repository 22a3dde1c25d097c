"""The channel service of a server: named channels and pushes grouped by frontend.

Every push becomes one call per frontend (``"push"`` with the uids on it, or
``"broadcast"``) through the ``rpc`` function, fired concurrently; the frontends encode
the message once each. A failing frontend is logged and does not fail the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ..rpc.logagg import RepeatedWarning
from ..session.backend import RpcCall
from .channel import Channel, call_frontends, group_by_frontend

__all__ = ["ChannelService"]

log = Logger()


class ChannelService:
    """Named channels, and pushes to any users of the cluster.

    ``frontends()`` returns the ids of the frontend servers currently up (for
    :meth:`broadcast`).
    """

    def __init__(self, rpc: RpcCall, frontends: Callable[[], Iterable[str]]) -> None:
        self._rpc = rpc
        self._frontends = frontends
        self._channels: dict[str, Channel] = {}
        #: Failed pushes to a frontend, one warning per interval (shared by the channels).
        self._warnings = RepeatedWarning(log)

    def __repr__(self) -> str:
        return f"<ChannelService: {len(self._channels)} channels>"

    def __len__(self) -> int:
        return len(self._channels)

    def create(self, name: str) -> Channel:
        """The channel ``name``, created if it does not exist yet."""
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = Channel(name, self._rpc, self._warnings)
        return channel

    def get(self, name: str, create: bool = False) -> Channel | None:
        """The channel ``name``; None if there is none, unless ``create``."""
        if create:
            return self.create(name)
        return self._channels.get(name)

    def destroy(self, name: str) -> bool:
        """Forget channel ``name`` and its members; whether it existed."""
        channel = self._channels.pop(name, None)
        if channel is None:
            return False
        channel.destroyed = True
        channel.clear()
        return True

    def channels(self) -> list[Channel]:
        """Every channel, oldest first."""
        return list(self._channels.values())

    def leave_all(self, uid: str, frontend_id: str) -> int:
        """Remove ``uid`` (on ``frontend_id``) from every channel, destroying the
        channels left empty; how many channels it left."""
        left = 0
        for channel in list(self._channels.values()):
            if channel.leave(uid, frontend_id):
                left += 1
                if not len(channel):
                    self.destroy(channel.name)
        return left

    def push_by_uids(
        self, route: str, msg: object, members: Iterable[tuple[str, str]]
    ) -> Deferred[int]:
        """Push to the ``(uid, frontend_id)`` pairs: one call per frontend; fires with
        how many frontends took it."""
        groups = group_by_frontend(members)
        calls = {frontend_id: (route, msg, uids) for frontend_id, uids in groups.items()}
        return call_frontends(self._rpc, "push", calls, route, self._warnings)

    def broadcast(self, route: str, msg: object) -> Deferred[int]:
        """Push to every client of every frontend: one ``"broadcast"`` call each; fires
        with how many frontends took it."""
        calls = dict.fromkeys(self._frontends(), (route, msg))
        return call_frontends(self._rpc, "broadcast", calls, route, self._warnings)
