"""Following a key prefix of a key-value store: a snapshot, then every change, forever.

:class:`PrefixFollower` reads the prefix (``get_prefix``) and hands the keys to
``on_snapshot``, then watches from the read's revision + 1 and hands each change to
``on_event``: nothing is missed between the two. When the watch breaks (the store went
away, the revision was compacted) or the read fails, it re-reads after ``retry_delay``
seconds on the injected clock, again and again: each new snapshot replaces what the owner
knew. While the store is unreachable the owner keeps what it had; the follower logs one
line when the store goes away and one when it is back, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .errors import KVError
from .interfaces import IKeyValueStore, IWatch, KeyValue, WatchEvent

__all__ = ["PrefixFollower"]

log = Logger()


class PrefixFollower:
    """Snapshot + watch of ``prefix`` in ``store``, re-read whenever the watch breaks."""

    def __init__(
        self,
        store: IKeyValueStore,
        prefix: str,
        clock: IReactorTime,
        *,
        on_snapshot: Callable[[list[KeyValue]], object],
        on_event: Callable[[WatchEvent], object],
        retry_delay: float = 1.0,
        description: str = "",
    ) -> None:
        if retry_delay <= 0:
            raise ValueError("retry_delay must be positive")
        self.store = store
        self.prefix = prefix
        self.clock = clock
        self.on_snapshot = on_snapshot
        self.on_event = on_event
        self.retry_delay = retry_delay
        self.description = description or prefix
        #: Snapshots read so far (1 after the first; each re-read adds one).
        self.snapshots = 0
        self.running = False
        #: Whether the store is known to be unreachable (logged once until it is back).
        self.unreachable = False
        self._watch: IWatch | None = None
        self._retry: IDelayedCall | None = None
        self.first_snapshot: Deferred[None] = Deferred()

    def start(self) -> None:
        """Read and watch (the first snapshot fires ``first_snapshot``)."""
        self.running = True
        self._read()

    def stop(self) -> None:
        """Stop watching and re-reading."""
        self.running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()

    def _read(self) -> None:
        self._retry = None
        if not self.running:
            return
        d = self.store.get_prefix(self.prefix)
        d.addCallbacks(self._snapshot, self._failed)

    def _snapshot(self, result: tuple[list[KeyValue], int]) -> None:
        if not self.running:
            return
        kvs, revision = result
        if self.unreachable:
            self.unreachable = False
            log.info(
                "{what}: etcd reachable again; re-read {n} keys", what=self.description, n=len(kvs)
            )
        self.snapshots += 1
        self.on_snapshot(kvs)
        watch = self.store.watch_prefix(self.prefix, revision + 1, self._event)
        self._watch = watch
        watch.done.addCallbacks(self._ended, self._broken, errbackArgs=(watch,))
        if not self.first_snapshot.called:
            self.first_snapshot.callback(None)

    def _event(self, event: WatchEvent) -> None:
        if self.running:
            self.on_event(event)

    def _ended(self, _: object) -> None:
        """The watch was cancelled (by stop, or a newer watch replaced it)."""

    def _broken(self, failure: Failure, watch: IWatch) -> None:
        if watch is not self._watch or not self.running:
            return
        self._watch = None
        self._failed(failure, what="watch broken")

    def _failed(self, failure: Failure, what: str = "read failed") -> None:
        if not self.running:
            return
        if not failure.check(KVError):
            log.failure("{what}: following the prefix failed", failure, what=self.description)
        elif not self.unreachable:
            self.unreachable = True
            log.warn(
                "{what}: etcd {how}: {error}; keeping what is known, re-reading every {delay}s",
                what=self.description,
                how=what,
                error=failure.getErrorMessage(),
                delay=self.retry_delay,
            )
        self._retry = self.clock.callLater(self.retry_delay, self._read)
