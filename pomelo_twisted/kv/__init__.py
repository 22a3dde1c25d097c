"""A key-value store for cluster state: the interface, an in-memory fake, an etcd client.

- :class:`IKeyValueStore` / :class:`IWatch` and the value types :class:`KeyValue`,
  :class:`WatchEvent` (:mod:`.interfaces`);
- :class:`MemoryKeyValueStore`: the deterministic fake on a clock (:mod:`.memory`);
- :class:`EtcdKeyValueStore`: etcd's v3 JSON gateway by treq (:mod:`.etcd`), and
  :func:`parse_etcd_url` for ``etcd://HOST:PORT/PREFIX``;
- :class:`LeaseKeeper`: one lease kept alive through outages (:mod:`.lease`);
- the errors: :class:`KVError`, :class:`KVUnavailable`, :class:`LeaseNotFound`,
  :class:`CompactedRevision` (:mod:`.errors`).
"""

from .errors import CompactedRevision, KVError, KVUnavailable, LeaseNotFound
from .etcd import EtcdKeyValueStore
from .gateway import parse_etcd_url
from .interfaces import IKeyValueStore, IWatch, KeyValue, WatchEvent
from .lease import LeaseKeeper
from .memory import MemoryKeyValueStore, MemoryWatch

__all__ = [
    "CompactedRevision",
    "EtcdKeyValueStore",
    "IKeyValueStore",
    "IWatch",
    "KVError",
    "KVUnavailable",
    "KeyValue",
    "LeaseKeeper",
    "LeaseNotFound",
    "MemoryKeyValueStore",
    "MemoryWatch",
    "WatchEvent",
    "parse_etcd_url",
]
