"""Bind and close events from the bindings of a key-value store.

:class:`BindingWatcher` reads every key under ``{prefix}/bindings/`` once, then watches
the prefix from the revision after that read, so nothing is missed. It keeps what each
key names (a delete carries no value) and reports a put as a bind, a delete (or a put
naming another session) as a close. When the watch breaks (the store is unreachable) it
re-reads after ``retry_delay`` seconds, reports what changed meanwhile, and watches again.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..kv import IKeyValueStore, IWatch, KeyValue, WatchEvent
from .bindingvalue import decode_binding
from .interfaces import SessionEvent

__all__ = ["BindingWatcher"]

log = Logger()


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
        self.store = store
        self.bindings = bindings
        self.clock = clock
        self.deliver = deliver
        self.retry_delay = retry_delay
        self.known: dict[str, tuple[str, int]] = {}
        self._watch: IWatch | None = None
        self._retry: IDelayedCall | None = None
        self._running = False
        self._first = True
        self.ready: Deferred[None] = Deferred()
        """Fires once the first read is done and the watch from it is open."""

    def start(self) -> None:
        """Read, then watch (nothing is reported for the bindings found by the first read)."""
        if not self._running:
            self._running = True
            self._read()

    def stop(self) -> None:
        """Stop watching and retrying."""
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()

    def _read(self) -> None:
        self._retry = None
        if self._running:
            d: Deferred[tuple[list[KeyValue], int]] = self.store.get_prefix(self.bindings)
            d.addCallbacks(self._snapshot, self._broken)

    def _snapshot(self, read: tuple[list[KeyValue], int]) -> None:
        if not self._running:
            return
        kvs, revision = read
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
        watch = self.store.watch_prefix(self.bindings, revision + 1, self._event)
        self._watch = watch
        watch.done.addErrback(self._broken)
        if not self.ready.called:
            self.ready.callback(None)

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

    def _broken(self, failure: Failure) -> None:
        self._watch = None
        if not self._running:
            return
        log.info(
            "session bindings watch on {prefix} broken ({error}): reading again in {delay}s",
            prefix=self.bindings,
            error=failure.getErrorMessage(),
            delay=self.retry_delay,
        )
        self._retry = self.clock.callLater(self.retry_delay, self._read)
