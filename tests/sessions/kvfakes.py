"""A key-value store link that can be cut: one server partitioned from a shared fake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from pomelo_twisted.kv import IKeyValueStore, IWatch, KeyValue, KVUnavailable, WatchEvent

__all__ = ["CuttableStore"]


@implementer(IKeyValueStore)
class CuttableStore:
    """Every call goes to ``store`` until :meth:`cut`; then every call errbacks
    KVUnavailable (as for a server that lost its network), watches included."""

    def __init__(self, store: IKeyValueStore) -> None:
        self.store = store
        self.is_cut = False

    def cut(self) -> None:
        """From now on, nothing reaches the store."""
        self.is_cut = True

    def _call(self, name: str, *args: Any) -> Deferred[Any]:
        if self.is_cut:
            return fail(KVUnavailable(f"link to the store is cut ({name})"))
        result: Deferred[Any] = getattr(self.store, name)(*args)
        return result

    def grant(self, ttl: float) -> Deferred[int]:
        return self._call("grant", ttl)

    def keep_alive(self, lease: int) -> Deferred[float]:
        return self._call("keep_alive", lease)

    def revoke(self, lease: int) -> Deferred[None]:
        return self._call("revoke", lease)

    def get(self, key: str) -> Deferred[KeyValue | None]:
        return self._call("get", key)

    def get_prefix(self, prefix: str) -> Deferred[tuple[list[KeyValue], int]]:
        return self._call("get_prefix", prefix)

    def put(self, key: str, value: bytes, lease: int = 0) -> Deferred[int]:
        return self._call("put", key, value, lease)

    def create(self, key: str, value: bytes, lease: int = 0) -> Deferred[bool]:
        return self._call("create", key, value, lease)

    def delete(self, key: str) -> Deferred[bool]:
        return self._call("delete", key)

    def delete_if(self, key: str, mod_revision: int) -> Deferred[bool]:
        return self._call("delete_if", key, mod_revision)

    def watch_prefix(
        self, prefix: str, start_revision: int, on_event: Callable[[WatchEvent], None]
    ) -> IWatch:
        watch = self.store.watch_prefix(prefix, start_revision, on_event)
        if self.is_cut:
            watch.cancel()
        return watch
