"""The session directory on a key-value store (etcd): one leased key per bound uid.

A frontend keeps a lease of its own (a :class:`~pomelo_twisted.kv.lease.LeaseKeeper`,
``ttl`` seconds) and records each bound uid as ``{prefix}/bindings/{uid}`` → its id and
the session id, attached to that lease. Binding a uid (cluster-wide unique login):

1. ``create`` the key: done when it did not exist;
2. the key names another frontend: ask that frontend (RPC, within the RPC deadline) to
   kick the uid with "another login" — it deletes its key before it answers — and
   create again once the key is gone (a watch from the key's revision: at once);
3. that frontend cannot be reached (connect failure, open breaker, timeout), or could
   not delete its key: the key goes at the latest when the holder's lease expires, so
   the bind waits **at most** ``ttl`` (+ ``grace``) seconds, then binds — past that
   bound it fails with ``HandlerError`` rather than wait longer (pitaya #452 is a uid
   locked out for good);
4. the key names this frontend (an older session here, or a key left over): replaced.

Unbind and close delete the key when it is still the one this frontend wrote
(``delete_if`` its revision). When the lease was lost and a new one granted, the keys
of the bound sessions are created again; a uid that meanwhile logged in elsewhere
loses here (its session is kicked with "another login").

``where`` and ``kick_by_uid`` read the key (and ask its frontend to kick); bind and
close events come from a watch on the bindings prefix
(:class:`~pomelo_twisted.session.bindwatch.BindingWatcher`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    gatherResults,
    maybeDeferred,
    succeed,
)
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import HandlerError
from ..kv import IKeyValueStore, KVError, WatchEvent
from ..kv.lease import LeaseKeeper
from .backend import SYS_SERVICE, RpcCall
from .bindingvalue import decode_binding, encode_binding
from .bindwatch import BindingWatcher
from .directory import Subscribers
from .interfaces import IBindingClaims, ISessionDirectory, SessionListener
from .service import ANOTHER_LOGIN, SessionService

__all__ = ["BINDING_TTL", "EtcdSessionDirectory"]

log = Logger()

BINDING_TTL = 5.0
"""The default lease of a frontend's bindings (seconds): a login waiting for the lease of
an unreachable frontend (at most this + the grace) is answered before the clients' 10 s
request timeout."""

CODE_SESSION = 500


@implementer(ISessionDirectory, IBindingClaims)
class EtcdSessionDirectory:
    """Bindings in ``store`` under ``prefix``; ``local`` is this frontend's session
    service (None on a backend, which only reads and watches)."""

    def __init__(
        self,
        store: IKeyValueStore,
        prefix: str,
        server_id: str,
        rpc: RpcCall,
        clock: IReactorTime,
        *,
        local: SessionService | None = None,
        ttl: float = BINDING_TTL,
        grace: float = 1.0,
        attempts: int = 3,
        retry_delay: float = 1.0,
    ) -> None:
        if ttl <= 0 or grace < 0 or attempts < 1:
            raise ValueError(
                f"session bindings need ttl > 0, grace >= 0, attempts >= 1"
                f" (got {ttl!r}, {grace!r}, {attempts!r})"
            )
        self.store = store
        self.bindings = prefix.rstrip("/") + "/bindings/"
        self.server_id = server_id
        self.rpc = rpc
        self.clock = clock
        self.local = local
        self.ttl = ttl
        self.grace = grace
        self.attempts = attempts
        self.listeners = Subscribers()
        self.watcher = BindingWatcher(
            store, self.bindings, clock, self.listeners.deliver, retry_delay=retry_delay
        )
        self.lease = 0
        # uid -> (sid, mod_revision of the key this frontend wrote)
        self.held: dict[str, tuple[int, int]] = {}
        self._releasing: dict[str, Deferred[Any]] = {}
        self.keeper: LeaseKeeper | None = None
        if local is not None:
            self.keeper = LeaseKeeper(
                store,
                ttl,
                clock,
                on_lease=self._on_lease,
                on_lost=self._on_lost,
                name=f"{server_id} session bindings",
            )

    def __repr__(self) -> str:
        return f"<EtcdSessionDirectory {self.bindings} on {self.server_id}>"

    def key(self, uid: str) -> str:
        """The key of ``uid``'s binding."""
        return self.bindings + uid

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """On a frontend: fires once the first lease was asked for (granted, unless the
        store cannot be reached: binds then fail until a lease is granted)."""
        if self.keeper is None:
            return succeed(None)
        return maybeDeferred(self.keeper.start).addCallback(lambda _: None)

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def stop(self) -> Deferred[None]:
        """Stop watching; on a frontend wait for the deletes under way, then revoke the
        lease (its keys go with it)."""
        self.watcher.stop()
        keeper = self.keeper
        if keeper is None:
            return succeed(None)
        self.held.clear()
        pending = gatherResults(list(self._releasing.values()))
        return pending.addBoth(lambda _: keeper.stop()).addCallback(lambda _: None)

    def _on_lease(self, lease: int) -> None:
        self.lease = lease
        if not self.held:
            return
        log.info(
            "{server}: new bindings lease, recreating {count} bindings",
            server=self.server_id,
            count=len(self.held),
        )
        for uid, (sid, _) in list(self.held.items()):
            d = Deferred.fromCoroutine(self._recreate(uid, sid, lease))
            d.addErrback(self._log_error, "recreating the binding of", uid)

    def _on_lost(self, reason: object) -> None:
        self.lease = 0
        log.info("{server}: bindings lease lost: {reason}", server=self.server_id, reason=reason)

    async def _recreate(self, uid: str, sid: int, lease: int) -> None:
        key = self.key(uid)
        if await self.store.create(key, encode_binding(self.server_id, sid), lease):
            kv = await self.store.get(key)
            if kv is not None and self.held.get(uid, (None,))[0] == sid:
                self.held[uid] = (sid, kv.mod_revision)
            return
        kv = await self.store.get(key)
        if kv is not None and decode_binding(kv.value) == (self.server_id, sid):
            return
        if self.held.get(uid, (None,))[0] == sid:
            del self.held[uid]
            log.info("{uid} logged in elsewhere while the lease was lost: kicked", uid=uid)
            if self.local is not None:
                self.local.kick_by_sid(sid, ANOTHER_LOGIN)

    def _log_error(self, failure: Failure, what: str, uid: str) -> None:
        log.warn(
            "{what} {uid} failed: {error}", what=what, uid=uid, error=failure.getErrorMessage()
        )

    # -- any server -----------------------------------------------------------

    def where(self, uid: str) -> Deferred[tuple[str, int] | None]:
        """The frontend and session the key of ``uid`` names, or None."""
        return self.store.get(self.key(uid)).addCallback(
            lambda kv: None if kv is None else decode_binding(kv.value)
        )

    def kick_by_uid(self, uid: str, reason: str = "kick") -> Deferred[int]:
        """Ask the frontend holding ``uid`` to kick it: how many sessions were kicked."""

        def holder(found: tuple[str, int] | None) -> Any:
            if found is None:
                return 0
            if found[0] == self.server_id:
                return self.serve_kick(uid, reason)
            return maybeDeferred(self.rpc, found[0], SYS_SERVICE, "kick_uid", (uid, reason))

        return self.where(uid).addCallback(holder)

    def subscribe(self, on_bind: SessionListener, on_close: SessionListener) -> Callable[[], None]:
        """Events from the watch on the bindings (started by the first subscriber)."""
        remove = self.listeners.add(on_bind, on_close)
        self.watcher.start()
        return remove

    # -- a frontend's bindings (IBindingClaims) --------------------------------

    def claim(self, uid: str, sid: int) -> Deferred[None]:
        """Create the key of ``uid`` for session ``sid`` (see the module docstring)."""
        return Deferred.fromCoroutine(self._claim(uid, sid))

    async def _claim(self, uid: str, sid: int) -> None:
        key = self.key(uid)
        value = encode_binding(self.server_id, sid)
        try:
            for _ in range(self.attempts):
                if not self.lease:
                    raise HandlerError(CODE_SESSION, f"{self.server_id} has no bindings lease now")
                if await self.store.create(key, value, self.lease):
                    kv = await self.store.get(key)
                    if kv is None or decode_binding(kv.value) != (self.server_id, sid):
                        continue  # taken over at once by another login: try again
                    self.held[uid] = (sid, kv.mod_revision)
                    return
                kv = await self.store.get(key)
                if kv is None:
                    continue
                found = decode_binding(kv.value)
                if found is None or found[0] == self.server_id:
                    await self.store.delete_if(key, kv.mod_revision)
                    continue
                holder = found[0]
                try:
                    await maybeDeferred(
                        self.rpc, holder, SYS_SERVICE, "kick_uid", (uid, ANOTHER_LOGIN)
                    )
                except (CancelledError, KVError):
                    raise
                except Exception as exc:  # any failure to kick: its lease decides
                    log.info(
                        "{uid} is held by {holder}, which cannot be reached ({error}):"
                        " waiting for its lease, at most {limit}s",
                        uid=uid,
                        holder=holder,
                        error=exc,
                        limit=self.ttl + self.grace,
                    )
                # A holder that answered has deleted its key already (the watch replays
                # that at once); one that did not, or could not, loses it with its lease.
                await self._key_changed(uid, holder, kv.mod_revision)
        except KVError as exc:
            raise HandlerError(CODE_SESSION, f"binding {uid}: {exc}") from exc
        raise HandlerError(
            CODE_SESSION, f"{uid} could not be bound on {self.server_id}: still held elsewhere"
        )

    async def _key_changed(self, uid: str, holder: str, revision: int) -> None:
        """Wait until the key of ``uid`` changes after ``revision`` (its holder's lease
        expires at the latest), at most ttl + grace seconds."""
        limit = self.ttl + self.grace
        key = self.key(uid)
        gone: Deferred[None] = Deferred()

        def changed(event: WatchEvent) -> None:
            if event.kv.key == key and not gone.called:
                gone.callback(None)

        watch = self.store.watch_prefix(key, revision + 1, changed)
        watch.done.addErrback(lambda f: None if gone.called else gone.errback(f))
        timer = self.clock.callLater(limit, lambda: None if gone.called else gone.cancel())
        try:
            await gone
        except CancelledError:
            raise HandlerError(
                CODE_SESSION,
                f"{uid} is still held by {holder} after {limit}s",
            ) from None
        finally:
            if timer.active():
                timer.cancel()
            watch.cancel()

    def bound(self, uid: str, sid: int) -> None:
        """Nothing more: the claim wrote the key."""

    def released(self, uid: str, sid: int) -> None:
        """Delete the key of ``uid`` if this frontend wrote it for session ``sid``."""
        held = self.held.get(uid)
        if held is None or held[0] != sid:
            return
        del self.held[uid]
        d = self.store.delete_if(self.key(uid), held[1])
        d.addErrback(self._log_error, "deleting the binding of", uid)
        self._releasing[uid] = d

        def done(_: object) -> None:
            if self._releasing.get(uid) is d:
                del self._releasing[uid]

        d.addBoth(done)

    # -- served to other servers ------------------------------------------------

    def serve_kick(self, uid: str, reason: str) -> Deferred[int]:
        """Kick this frontend's sessions of ``uid``; fires with how many once its key
        is deleted (a key naming this frontend without a session goes as well)."""
        local = self.local
        if local is None:
            return succeed(0)
        count = len(local.get_by_uid(uid))
        local.kick(uid, reason)
        pending = self._releasing.get(uid)
        if pending is not None:
            answered: Deferred[int] = Deferred()

            def relay(result: object) -> object:
                answered.callback(count)
                return result

            pending.addBoth(relay)
            return answered
        key = self.key(uid)

        def stale(kv: Any) -> Any:
            if kv is not None and uid not in self.held:
                found = decode_binding(kv.value)
                if found is not None and found[0] == self.server_id:
                    return self.store.delete_if(key, kv.mod_revision)
            return None

        return self.store.get(key).addCallback(stale).addCallback(lambda _: count)

    def serve_where(self, uid: str) -> list[int]:
        """The ids of this frontend's sessions of ``uid``."""
        local = self.local
        return [] if local is None else [s.id for s in local.get_by_uid(uid)]

    def serve_subscribe(self, server_id: str) -> bool:
        """Events come from the store's watch: nothing to record."""
        return False

    def serve_event(self, kind: str, uid: str, frontend_id: str, sid: int) -> None:
        """Events come from the store's watch: ignored."""
