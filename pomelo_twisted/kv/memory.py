"""An in-memory :class:`~pomelo_twisted.kv.interfaces.IKeyValueStore` on an injected clock.

The deterministic fake of etcd for unit tests: one revision counter, leases that expire on
the clock, prefix watches with history (so a watch can start at an older revision), and
``fail()``/``recover()`` switches that make the store unreachable so an owner's outage path
can be tested step by step.

Delivery is **synchronous**: every Deferred has already fired when the call returns, and a
watch sees a change before the Deferred of the write that made it fires.  A watch created
with a start revision in the past replays the matching history inside ``watch_prefix``.
Events raised while a callback runs (a callback that writes) are queued and delivered after
it returns, so every watch sees events in revision order.  Leases keep expiring on the clock
while the store is failed, as they would on a real etcd that only the client cannot reach.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from .errors import CompactedRevision, KVUnavailable, LeaseNotFound
from .interfaces import IKeyValueStore, IWatch, KeyValue, WatchEvent

__all__ = ["MemoryKeyValueStore", "MemoryWatch"]

ENDPOINT = "memory://"
log = Logger()


@implementer(IWatch)
class MemoryWatch:
    """One watch of a :class:`MemoryKeyValueStore`."""

    def __init__(
        self,
        store: MemoryKeyValueStore,
        prefix: str,
        start_revision: int,
        on_event: Callable[[WatchEvent], None],
    ) -> None:
        self.prefix = prefix
        self.start_revision = start_revision
        self.on_event = on_event
        self.done: Deferred[None] = Deferred()
        self._store = store

    @property
    def active(self) -> bool:
        """Whether events are still delivered."""
        return not self.done.called

    def cancel(self) -> None:
        """Stop delivering; ``done`` fires None (nothing happens if it already fired)."""
        if self.active:
            self._store._forget(self)
            self.done.callback(None)

    def _break(self, reason: Exception) -> None:
        if self.active:
            self.done.errback(reason)


class _Lease:
    def __init__(self, ttl: int, timer: IDelayedCall) -> None:
        self.ttl = ttl
        self.timer = timer
        self.keys: set[str] = set()


@implementer(IKeyValueStore)
class MemoryKeyValueStore:
    """The whole key space in memory; see the module docstring for the delivery rules."""

    def __init__(self, clock: IReactorTime, *, history_limit: int = 10_000) -> None:
        """``history_limit``: how many past events a watch may replay; older ones are
        compacted away (a watch starting before them fails with CompactedRevision)."""
        self._clock = clock
        self._history_limit = history_limit
        self.revision = 1  # an empty etcd is at revision 1 too
        self.compact_revision = 0
        self.failed = False
        self._keys: dict[str, KeyValue] = {}
        self._leases: dict[int, _Lease] = {}
        self._next_lease = 0x1000
        self._history: list[WatchEvent] = []
        self._watches: list[MemoryWatch] = []
        self._pending: list[tuple[MemoryWatch, WatchEvent]] = []
        self._delivering = False

    # -- switches for outage tests --------------------------------------------------------

    def fail(self) -> None:
        """Make every call errback KVUnavailable and break every watch, until recover()."""
        self.failed = True
        watches, self._watches = self._watches, []
        for watch in watches:
            watch._break(self._unavailable())

    def recover(self) -> None:
        """Answer calls again (broken watches stay broken: owners re-watch)."""
        self.failed = False

    def compact(self, revision: int) -> None:
        """Forget the history before ``revision``: a watch starting earlier fails
        CompactedRevision."""
        self.compact_revision = max(self.compact_revision, min(revision, self.revision))
        self._history = [e for e in self._history if e.kv.mod_revision >= self.compact_revision]

    def leases(self) -> list[int]:
        """The ids of the leases alive now (for assertions)."""
        return sorted(self._leases)

    # -- IKeyValueStore --------------------------------------------------------------------

    def grant(self, ttl: float) -> Deferred[int]:
        """A new lease of ``ttl`` seconds rounded up (at least 1), expiring on the clock."""
        if self.failed:
            return fail(self._unavailable())
        self._next_lease += 1
        lease_id = self._next_lease
        seconds = max(1, math.ceil(ttl))
        timer = self._clock.callLater(seconds, self._expire, lease_id)
        self._leases[lease_id] = _Lease(seconds, timer)
        return succeed(lease_id)

    def keep_alive(self, lease: int) -> Deferred[float]:
        """Restart the lease's ttl: the ttl; LeaseNotFound once it expired or was revoked."""
        if self.failed:
            return fail(self._unavailable())
        found = self._leases.get(lease)
        if found is None:
            return fail(LeaseNotFound(f"{ENDPOINT}: lease {lease:x} not found"))
        found.timer.reset(found.ttl)
        return succeed(float(found.ttl))

    def revoke(self, lease: int) -> Deferred[None]:
        """End the lease and delete its keys in one revision; an unknown lease is fine."""
        if self.failed:
            return fail(self._unavailable())
        found = self._leases.pop(lease, None)
        if found is not None:
            if found.timer.active():
                found.timer.cancel()
            self._delete_keys(sorted(found.keys))
        return succeed(None)

    def get(self, key: str) -> Deferred[KeyValue | None]:
        """The key, or None."""
        if self.failed:
            return fail(self._unavailable())
        return succeed(self._keys.get(key))

    def get_prefix(self, prefix: str) -> Deferred[tuple[list[KeyValue], int]]:
        """The keys under ``prefix`` sorted by key, and the current revision."""
        if self.failed:
            return fail(self._unavailable())
        found = [kv for key, kv in sorted(self._keys.items()) if key.startswith(prefix)]
        return succeed((found, self.revision))

    def put(self, key: str, value: bytes, lease: int = 0) -> Deferred[int]:
        """Set the key: the new revision; LeaseNotFound for an unknown lease."""
        if self.failed:
            return fail(self._unavailable())
        if lease and lease not in self._leases:
            return fail(LeaseNotFound(f"{ENDPOINT}: lease {lease:x} not found (put {key!r})"))
        return succeed(self._put(key, value, lease))

    def create(self, key: str, value: bytes, lease: int = 0) -> Deferred[bool]:
        """Put only if absent: whether it was created."""
        if self.failed:
            return fail(self._unavailable())
        if key in self._keys:
            return succeed(False)
        if lease and lease not in self._leases:
            return fail(LeaseNotFound(f"{ENDPOINT}: lease {lease:x} not found (create {key!r})"))
        self._put(key, value, lease)
        return succeed(True)

    def delete(self, key: str) -> Deferred[bool]:
        """Delete the key: whether it existed."""
        if self.failed:
            return fail(self._unavailable())
        if key not in self._keys:
            return succeed(False)
        self._delete_keys([key])
        return succeed(True)

    def delete_if(self, key: str, mod_revision: int) -> Deferred[bool]:
        """Delete the key if its mod_revision is still ``mod_revision``."""
        if self.failed:
            return fail(self._unavailable())
        current = self._keys.get(key)
        if current is None or current.mod_revision != mod_revision:
            return succeed(False)
        self._delete_keys([key])
        return succeed(True)

    def watch_prefix(
        self, prefix: str, start_revision: int, on_event: Callable[[WatchEvent], None]
    ) -> MemoryWatch:
        """Watch ``prefix`` from ``start_revision`` (<= 0: from the next revision on)."""
        start = start_revision if start_revision > 0 else self.revision + 1
        watch = MemoryWatch(self, prefix, start, on_event)
        if self.failed:
            watch._break(self._unavailable())
            return watch
        if start < self.compact_revision:
            watch._break(
                CompactedRevision(
                    f"{ENDPOINT}: watch of {prefix!r} from revision {start}: compacted up to "
                    f"revision {self.compact_revision}",
                    self.compact_revision,
                )
            )
            return watch
        self._watches.append(watch)
        for event in self._history:
            if event.kv.mod_revision >= start and event.kv.key.startswith(prefix):
                self._pending.append((watch, event))
        self._deliver()
        return watch

    # -- internals -------------------------------------------------------------------------

    def _unavailable(self) -> KVUnavailable:
        return KVUnavailable(f"{ENDPOINT}: store unavailable (fail() called)")

    def _forget(self, watch: MemoryWatch) -> None:
        if watch in self._watches:
            self._watches.remove(watch)

    def _expire(self, lease_id: int) -> None:
        found = self._leases.pop(lease_id, None)
        if found is not None:
            self._delete_keys(sorted(found.keys))

    def _put(self, key: str, value: bytes, lease: int) -> int:
        self.revision += 1
        old = self._keys.get(key)
        if old is not None and old.lease and old.lease in self._leases:
            self._leases[old.lease].keys.discard(key)
        if lease:
            self._leases[lease].keys.add(key)
        created = old.create_revision if old is not None else self.revision
        kv = KeyValue(key, value, created, self.revision, lease)
        self._keys[key] = kv
        self._record(WatchEvent("put", kv))
        return self.revision

    def _delete_keys(self, keys: list[str]) -> None:
        present = [key for key in keys if key in self._keys]
        if not present:
            return
        self.revision += 1  # one revision for the whole deletion, as etcd does
        for key in present:
            old = self._keys.pop(key)
            if old.lease and old.lease in self._leases:
                self._leases[old.lease].keys.discard(key)
            self._record(WatchEvent("delete", KeyValue(key, b"", self.revision, self.revision, 0)))

    def _record(self, event: WatchEvent) -> None:
        self._history.append(event)
        if len(self._history) > self._history_limit:
            self.compact(self._history[len(self._history) - self._history_limit].kv.mod_revision)
        for watch in self._watches:
            if (
                event.kv.key.startswith(watch.prefix)
                and event.kv.mod_revision >= watch.start_revision
            ):
                self._pending.append((watch, event))
        self._deliver()

    def _deliver(self) -> None:
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._pending:
                watch, event = self._pending.pop(0)
                if watch.active:
                    try:
                        watch.on_event(event)
                    except Exception:
                        log.failure("watch callback of {prefix!r} failed", prefix=watch.prefix)
        finally:
            self._delivering = False
