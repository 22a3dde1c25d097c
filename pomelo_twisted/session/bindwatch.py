"""Bind and close events from the bindings of a key-value store.

:class:`BindingWatcher` follows ``{prefix}/bindings/`` with a
:class:`~pomelo_twisted.kv.follower.PrefixFollower` (a read, then a watch from the
revision after it, so nothing is missed; re-read after ``retry_delay`` seconds whenever
the watch breaks). It keeps what each key names (a delete carries no value) and reports a
put as a bind, a delete (or a put naming another session) as a close; after a re-read it
reports what changed while the watch was down. The first read reports nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from ..kv import IKeyValueStore, KeyValue, WatchEvent
from ..kv.follower import PrefixFollower
from .bindingvalue import decode_binding
from .interfaces import SessionEvent

__all__ = ["BindingWatcher"]


class BindingWatcher:
    """Calls ``deliver(event)`` for every bind and close recorded under ``bindings``
    (the key prefix, ending with ``/``) once :meth:`start` ran."""

    def __init__(
        self,
        store: IKeyValueStore,
        bindings: str,
        clock: IReactorTime,
        deliver: Callable[[SessionEvent], None],
        *,
        retry_delay: float = 1.0,
    ) -> None:
        self.bindings = bindings
        self.deliver = deliver
        self.known: dict[str, tuple[str, int]] = {}
        self._first = True
        self.follower = PrefixFollower(
            store,
            bindings,
            clock,
            on_snapshot=self._snapshot,
            on_event=self._event,
            retry_delay=retry_delay,
            description=f"session bindings {bindings}",
        )
        self.ready: Deferred[None] = self.follower.first_snapshot
        """Fires once the first read is done and the watch from it is open."""

    def start(self) -> None:
        """Read, then watch (nothing is reported for the bindings found by the first read)."""
        if not self.follower.running:
            self.follower.start()

    def stop(self) -> None:
        """Stop watching and re-reading."""
        self.follower.stop()

    def _snapshot(self, kvs: list[KeyValue]) -> None:
        found: dict[str, tuple[str, int]] = {}
        for kv in kvs:
            binding = decode_binding(kv.value)
            if binding is not None:
                found[kv.key] = binding
        if not self._first:  # a re-read: report what changed while the watch was down
            for key, old in list(self.known.items()):
                if found.get(key) != old:
                    self._change(key, None)
            for key, new in found.items():
                if self.known.get(key) != new:
                    self._change(key, new)
        self._first = False
        self.known = found

    def _event(self, event: WatchEvent) -> None:
        binding = decode_binding(event.kv.value) if event.kind == "put" else None
        self._change(event.kv.key, binding)

    def _change(self, key: str, binding: tuple[str, int] | None) -> None:
        old = self.known.get(key)
        if old == binding:
            return
        uid = key[len(self.bindings) :]
        if old is not None:
            del self.known[key]
            self.deliver(SessionEvent("close", uid, old[0], old[1]))
        if binding is not None:
            self.known[key] = binding
            self.deliver(SessionEvent("bind", uid, binding[0], binding[1]))
