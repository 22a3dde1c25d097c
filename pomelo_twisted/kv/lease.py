"""Keeping one lease alive through etcd outages: :class:`LeaseKeeper`.

An owner (a server registering itself, a frontend holding session bindings) attaches its
keys to a lease and must put them again whenever the lease is replaced.  The keeper grants
a lease, renews it every ``interval`` on the injected clock, and

- when a renewal says the lease is gone (LeaseNotFound), or the store has been unreachable
  for longer than ``ttl`` (so the lease has certainly expired), calls ``on_lost(reason)``
  and keeps trying to grant a new one; each new lease calls ``on_lease(new_id)`` (which
  may return the Deferred of the owner's puts under it: a lease given up during an
  outage that the store still holds is revoked only after those);
- when the store is unreachable for less than ``ttl``, keeps the same lease: no callback,
  one log line when it becomes unreachable ("etcd unreachable: …") and one when it is back
  ("etcd reachable again").

One store call is in flight at a time; each log line is one event, without a traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .errors import KVError, KVUnavailable, LeaseNotFound
from .interfaces import IKeyValueStore

__all__ = ["LeaseKeeper"]

log = Logger()


def _ignore(_: object) -> None:
    return None


class LeaseKeeper:
    """Grants and renews one lease (see the module docstring).

    ``start()`` fires once the first grant has been tried (``on_lease`` has then been
    called if it succeeded; if the store was unreachable the keeper keeps trying).
    ``stop()`` stops renewing and revokes the lease (a failure to revoke is logged, and the
    lease then simply expires); it fires once the revoke has been answered.
    """

    def __init__(
        self,
        store: IKeyValueStore,
        ttl: float,
        clock: IReactorTime,
        *,
        interval: float | None = None,
        on_lease: Callable[[int], object] = _ignore,
        on_lost: Callable[[Exception], object] = _ignore,
        name: str = "lease",
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"{name}: the lease ttl must be positive, not {ttl!r}")
        self.ttl = ttl
        self.interval = ttl / 3 if interval is None else interval
        if not 0 < self.interval < ttl:
            raise ValueError(
                f"{name}: the keep-alive interval ({self.interval!r} s) must be positive and "
                f"shorter than the ttl ({ttl!r} s)"
            )
        self.name = name
        self.lease: int | None = None
        self.reachable = True
        self._store = store
        self._clock = clock
        self._on_lease = on_lease
        self._on_lost = on_lost
        self._last_ok = 0.0
        self._timer: IDelayedCall | None = None
        self._running = False
        self._grant_now = False
        self._stale: int | None = None
        self._generation = 0
        self._problem = ""

    @property
    def running(self) -> bool:
        """Between start() and stop()."""
        return self._running

    def start(self) -> Deferred[None]:
        """Grant the first lease, then renew (see the class docstring)."""
        if self._running:
            raise RuntimeError(f"{self.name}: the lease keeper is already running")
        self._running = True
        self._generation += 1
        return self._step()

    def stop(self) -> Deferred[None]:
        """Stop renewing and revoke the lease."""
        self._running = False
        self._generation += 1  # a call still in flight must not act on a later start()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        lease, self.lease = self.lease, None
        if lease is None:
            return succeed(None)
        return self._revoke(lease)

    # -- the loop --------------------------------------------------------------------------

    def _step(self) -> Deferred[None]:
        self._timer = None
        generation = self._generation
        if self.lease is None:
            d = self._store.grant(self.ttl).addCallbacks(
                self._granted,
                self._grant_failed,
                callbackArgs=(generation,),
                errbackArgs=(generation,),
            )
        else:
            lease = self.lease
            d = self._store.keep_alive(lease).addCallbacks(
                self._renewed,
                self._renew_failed,
                callbackArgs=(generation,),
                errbackArgs=(lease, generation),
            )
        return d.addBoth(self._next, generation)

    def _current(self, generation: int) -> bool:
        return self._running and generation == self._generation

    def _next(self, result: object, generation: int) -> None:
        if isinstance(result, Failure):  # a bug in a callback: log it, keep going
            log.failure("{name}: lease keeping failed", result, name=self.name)
        if self._current(generation):
            delay, self._grant_now = (0.0 if self._grant_now else self.interval), False
            self._timer = self._clock.callLater(delay, self._step)

    def _granted(self, lease: int, generation: int) -> None:
        if not self._current(generation):  # stopped meanwhile: give the lease back
            self._revoke(lease)
            return
        self._contact()
        self.lease = lease
        stale, self._stale = self._stale, None
        log.info(
            "{name}: lease {lease:x} granted (ttl {ttl:g} s)",
            name=self.name,
            lease=lease,
            ttl=self.ttl,
        )
        try:
            put = self._on_lease(lease)
        except Exception:
            log.failure("{name}: on_lease callback failed", name=self.name)
            put = None
        if stale is not None:
            # An etcd that restarted during the outage restores its leases with a fresh
            # ttl: the presumed-expired one would hold its keys a while longer. It goes
            # once the owner's keys are under the new lease (when on_lease returned the
            # Deferred of its puts), so the keys never vanish in between.
            if isinstance(put, Deferred):
                put.addBoth(self._revoke_after, stale)
            else:
                self._revoke(stale)

    def _revoke_after(self, result: object, stale: int) -> None:
        self._revoke(stale)
        return None  # the owner's outcome was its own to handle

    def _grant_failed(self, reason: Failure, generation: int) -> None:
        if self._current(generation):
            self._trouble(reason)

    def _renewed(self, _ttl: float, generation: int) -> None:
        if self._current(generation):
            self._contact()

    def _renew_failed(self, reason: Failure, lease: int, generation: int) -> None:
        if not self._current(generation) or self.lease != lease:
            return
        if reason.check(LeaseNotFound):
            self._contact()
            self._lose(lease, LeaseNotFound(f"lease {lease:x} expired or was revoked"))
            self._grant_now = True  # the store answers: grant the next lease at once
            return
        self._trouble(reason)
        silent = self._clock.seconds() - self._last_ok
        if silent > self.ttl:
            self._stale = lease
            self._lose(
                lease,
                KVUnavailable(
                    f"lease {lease:x} presumed expired: etcd unreachable for "
                    f"{silent:.1f} s (ttl {self.ttl:g} s)"
                ),
            )

    # -- helpers ---------------------------------------------------------------------------

    def _lose(self, lease: int, reason: Exception) -> None:
        self.lease = None
        log.warn("{name}: {reason}", name=self.name, reason=reason)
        try:
            self._on_lost(reason)
        except Exception:
            log.failure("{name}: on_lost callback failed", name=self.name)

    def _contact(self) -> None:
        self._last_ok = self._clock.seconds()
        self._problem = ""
        if not self.reachable:
            self.reachable = True
            log.info("{name}: etcd reachable again", name=self.name)

    def _trouble(self, reason: Failure) -> None:
        if reason.check(KVUnavailable):
            if self.reachable:
                self.reachable = False
                log.warn(
                    "{name}: etcd unreachable: {reason}",
                    name=self.name,
                    reason=reason.getErrorMessage(),
                )
        elif reason.check(KVError):
            if reason.getErrorMessage() != self._problem:  # once, not at every renewal
                self._problem = reason.getErrorMessage()
                log.warn("{name}: {reason}", name=self.name, reason=self._problem)
        else:
            log.failure("{name}: unexpected failure", reason, name=self.name)

    def _revoke(self, lease: int) -> Deferred[None]:
        def failed(reason: Failure) -> None:
            log.info(
                "{name}: could not revoke lease {lease:x} (it will expire): {reason}",
                name=self.name,
                lease=lease,
                reason=reason.getErrorMessage(),
            )

        return self._store.revoke(lease).addErrback(failed)
