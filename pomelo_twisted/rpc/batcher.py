"""TurnBatcher: what one reactor turn produces, sent at the end of the turn as batches.

Both directions of an RPC connection use it: a caller's calls to a peer, and a callee's
answers to a caller. Items (msgpack bytes, :func:`~pomelo_twisted.rpc.payload.pack_plain`)
are collected during the turn; one ``callLater(0)`` per turn then sends them as msgpack
arrays (:func:`~pomelo_twisted.rpc.payload.pack_array`) of at most ``max_size`` bytes
each, so a connection pays the per-message cost once per turn, not once per call.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .payload import chunks, pack_array

__all__ = ["TurnBatcher"]


class TurnBatcher:
    """Collects items during a turn of ``clock``; at its end ``send(batch)`` for each run
    of items of at most ``max_size`` bytes (an item above it goes alone).

    :meth:`add` returns a ticket: :meth:`withdraw` takes the item out of the turn's batch
    as long as it has not left (a call cancelled before the end of its turn is not sent);
    tickets below :attr:`sent` have left (or were dropped) already.
    ``send`` is the owner's; what it raises propagates to the clock (and the rest of the
    turn's batches stay unsent).
    """

    __slots__ = ("_call", "_clock", "_items", "_max_size", "_send", "sent")

    def __init__(self, clock: IReactorTime, send: Callable[[bytes], object], max_size: int) -> None:
        self._clock = clock
        self._send = send
        self._max_size = max_size
        self._items: list[bytes | None] = []
        #: The ticket of the turn's first item: the tickets below it have left.
        self.sent = 0
        self._call: IDelayedCall | None = None

    def __len__(self) -> int:
        """Items waiting for the end of the turn."""
        return sum(item is not None for item in self._items)

    def add(self, item: bytes) -> int:
        """Send ``item`` at the end of this turn; its ticket."""
        items = self._items
        items.append(item)
        if self._call is None:
            self._call = self._clock.callLater(0, self.flush)
        return self.sent + len(items) - 1

    def withdraw(self, ticket: int) -> None:
        """Leave the item of ``ticket`` out (nothing happens if it was sent already)."""
        index = ticket - self.sent
        if 0 <= index < len(self._items):
            self._items[index] = None

    def clear(self) -> None:
        """Drop the turn's items unsent (the connection is gone) and the pending send."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        self.sent += len(self._items)
        self._items = []

    def flush(self) -> None:
        """Send the turn's items now (the end of the turn does it)."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        items = self._items
        self.sent += len(items)
        self._items = []
        live = [item for item in items if item is not None]
        if not live:
            return
        if len(live) == 1:
            self._send(pack_array(live))
            return
        for chunk in chunks(live, self._max_size):
            self._send(pack_array(chunk))
