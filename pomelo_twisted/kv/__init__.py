"""A key-value store for cluster state: the interface, an in-memory fake, an etcd client.

- :class:`IKeyValueStore` / :class:`IWatch` and the value types :class:`KeyValue`,
  :class:`WatchEvent` (:mod:`.interfaces`);
- :class:`MemoryKeyValueStore`: the deterministic fake on a clock (:mod:`.memory`);
- the errors: :class:`KVError`, :class:`KVUnavailable`, :class:`LeaseNotFound`,
  :class:`CompactedRevision` (:mod:`.errors`).
"""

from .errors import CompactedRevision, KVError, KVUnavailable, LeaseNotFound
from .interfaces import IKeyValueStore, IWatch, KeyValue, WatchEvent
from .memory import MemoryKeyValueStore, MemoryWatch

__all__ = [
    "CompactedRevision",
    "IKeyValueStore",
    "IWatch",
    "KVError",
    "KVUnavailable",
    "KeyValue",
    "LeaseNotFound",
    "MemoryKeyValueStore",
    "MemoryWatch",
    "WatchEvent",
]
