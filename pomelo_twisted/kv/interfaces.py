"""The key-value store behind cluster membership and bindings, and its value types.

:class:`IKeyValueStore` is the small slice of etcd v3 the cluster needs: leases, reads,
conditional writes and prefix watches.  :class:`~pomelo_twisted.kv.memory.MemoryKeyValueStore`
is the deterministic fake (on a ``Clock``); :class:`~pomelo_twisted.kv.etcd.EtcdKeyValueStore`
talks to a real etcd.  Both pass the same contract tests
(:mod:`pomelo_twisted.testing.kvcontract`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

__all__ = ["IKeyValueStore", "IWatch", "KeyValue", "WatchEvent"]


class KeyValue(msgspec.Struct, frozen=True):
    """One key as stored: its value, the revision that created it, the revision that last
    changed it, and the lease it is attached to (0 = no lease)."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int


class WatchEvent(msgspec.Struct, frozen=True):
    """One change seen by a watch.  For a ``"delete"`` the value is ``b""`` and both
    revisions are the revision of the delete."""

    kind: Literal["put", "delete"]
    kv: KeyValue


class IWatch(Interface):
    """A running prefix watch (see :meth:`IKeyValueStore.watch_prefix`)."""

    done = Attribute(
        "Deferred[None]: fires None after cancel(); errbacks KVUnavailable when the stream "
        "breaks (the owner re-reads and re-watches), CompactedRevision when the start "
        "revision was compacted away"
    )

    def cancel() -> None:
        """Stop delivering events and close the stream; ``done`` fires None.  Idempotent."""


class IKeyValueStore(Interface):
    """Leases, reads, conditional writes and prefix watches over one key space.

    Every call may errback :class:`~pomelo_twisted.kv.errors.KVUnavailable`.
    """

    def grant(ttl: float) -> Deferred[int]:
        """A new lease of ``ttl`` seconds (rounded up to whole seconds, at least 1): its id.
        (etcd may grant more: with its default raft timings its minimum is 2 s.)"""

    def keep_alive(lease: int) -> Deferred[float]:
        """Renew ``lease``: the remaining ttl in seconds.  Errbacks LeaseNotFound when the
        lease has expired or was revoked."""

    def revoke(lease: int) -> Deferred[None]:
        """End ``lease`` now, deleting every key attached to it.  An unknown lease is not
        an error."""

    def get(key: str) -> Deferred[KeyValue | None]:
        """The key, or None when it is absent."""

    def get_prefix(prefix: str) -> Deferred[tuple[list[KeyValue], int]]:
        """Every key starting with ``prefix``, sorted by key, and the store revision of the
        read (watch from that revision + 1 to see every later change)."""

    def put(key: str, value: bytes, lease: int = 0) -> Deferred[int]:
        """Set the key (attached to ``lease`` unless 0): the new store revision.  Errbacks
        LeaseNotFound if the lease is unknown."""

    def create(key: str, value: bytes, lease: int = 0) -> Deferred[bool]:
        """Put only if the key is absent: whether it was created."""

    def delete(key: str) -> Deferred[bool]:
        """Delete the key: whether it existed."""

    def delete_if(key: str, mod_revision: int) -> Deferred[bool]:
        """Delete the key only if its mod_revision is still ``mod_revision``: whether it
        was deleted."""

    def watch_prefix(
        prefix: str, start_revision: int, on_event: Callable[[WatchEvent], None]
    ) -> IWatch:
        """Call ``on_event`` for every change of a key under ``prefix`` with revision
        ``>= start_revision``, in revision order (``start_revision`` <= 0: from now on)."""
