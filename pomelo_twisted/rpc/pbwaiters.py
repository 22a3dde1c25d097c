"""Who waits for a peer's link: the Deferreds of ``when_peer_up`` and ``when_peers_up``
of :class:`~pomelo_twisted.rpc.pb.PbRpcTransport`."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

__all__ = ["PeerWaiters"]


class PeerWaiters:
    """The waiters for one peer's link and for every peer's; ``states()`` gives each
    known peer's state (``up`` when its link answers)."""

    def __init__(self, clock: IReactorTime, states: Callable[[], dict[str, str]]) -> None:
        self._clock = clock
        self._states = states
        self._all: list[Deferred[list[str]]] = []
        self._one: dict[str, list[Deferred[bool]]] = {}

    def when_peer_up(self, server_id: str, timeout: float) -> Deferred[bool]:
        """Fires True once ``server_id``'s link is up (at once if it is), False after
        ``timeout`` seconds or when the peer is removed first."""
        state = self._states().get(server_id)
        if state == "up":
            return succeed(True)
        if state is None:
            return succeed(False)
        waiters = self._one.setdefault(server_id, [])
        waiter: Deferred[bool] = Deferred(waiters.remove)
        waiters.append(waiter)
        return waiter.addTimeout(timeout, self._clock, onTimeoutCancel=lambda *_: False)

    def peer_is(self, server_id: str, up: bool) -> None:
        """The link of ``server_id`` came up (True) or the peer was removed (False)."""
        for waiter in self._one.pop(server_id, []):
            waiter.callback(up)

    def when_peers_up(self, timeout: float) -> Deferred[list[str]]:
        """Fires with ``[]`` once every peer is up (when the last one logs in), or after
        ``timeout`` seconds with the ids of those still not up."""
        if not self.not_up():
            return succeed([])
        waiter: Deferred[list[str]] = Deferred(self._all.remove)
        self._all.append(waiter)
        return waiter.addTimeout(timeout, self._clock, onTimeoutCancel=self._timed_out)

    def _timed_out(self, result: object, timeout: float) -> list[str]:
        return self.not_up()

    def not_up(self) -> list[str]:
        """The peers whose link is not up, sorted."""
        return sorted(sid for sid, state in self._states().items() if state != "up")

    def changed(self) -> None:
        """A peer came up or went away: the waiters fire if every peer is up now."""
        if self._all and not self.not_up():
            waiters, self._all = self._all, []
            for waiter in waiters:
                waiter.callback([])
