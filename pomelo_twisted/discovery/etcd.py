"""Service discovery on etcd (or any :class:`~pomelo_twisted.kv.interfaces.IKeyValueStore`).

Each server puts its :class:`~pomelo_twisted.discovery.interfaces.ServerRecord` (its entry,
pid, host, start time, stats) as JSON under ``{prefix}/servers/{id}``, attached to a lease
that a :class:`~pomelo_twisted.kv.lease.LeaseKeeper` keeps alive (TTL ``ttl``, default 10 s;
keep-alive every ``ttl/3`` unless ``keep_alive_interval`` says otherwise). It follows
``{prefix}/`` (:class:`~pomelo_twisted.kv.follower.PrefixFollower`: a snapshot, then
the changes):

- a put of another server's key is ``up`` (it joined, came back or changed address:
  connect to it now);
- a delete is ``removed`` (``removal_grace`` seconds later, default 0.5 s, unless the key
  is put again meanwhile: a peer moving its record to a new lease must not flap): the
  server stopped cleanly (its lease was revoked) or its lease expired (``kill -9``, a lost
  machine: at most ``ttl`` seconds later). Requests stop being routed to it and its
  connection is closed; in between, calls to a dead server fail fast (its connection is
  down). A restarted server registers again under the same id: ``up``;
- a snapshot (the first, or a re-read after the watch broke) replaces the view: servers
  missing from it are ``removed``, new or changed ones ``up``;
- each type's server list is kept in one canonical order (servers.json's, then by id), so
  that route functions (crc32 mod n) pick the same server on every peer whatever order
  the servers registered in;
- a put of ``{prefix}/commands/{id}`` (this server's id) is a command from
  ``pomelo-twisted``: ``stop`` calls ``on_command("stop")`` (the server exits 0). Commands
  already present in a snapshot are old and ignored.

When the lease is lost (expired while etcd was unreachable for longer than ``ttl``), the
record is put again on the new lease. While etcd is down the server keeps serving with the
peers it knows; each transition is one log line, never a traceback. A clean :meth:`stop`
revokes the lease, so peers see ``removed`` at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import msgspec
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..errors import ConfigError
from ..gameconfig import ServerInfo
from ..kv.errors import KVError, LeaseNotFound
from ..kv.follower import PrefixFollower
from ..kv.interfaces import IKeyValueStore, KeyValue, WatchEvent
from ..kv.lease import LeaseKeeper
from ..listeners import Listeners
from .commands import command_key, decode_command
from .interfaces import (
    DiscoveredServer,
    IServiceDiscovery,
    MembershipEvent,
    MembershipListener,
    ServerRecord,
)
from .membership import apply_event, observe, server_stats

__all__ = ["DEFAULT_TTL", "EtcdDiscovery", "decode_record", "server_key"]

log = Logger()

#: The default lease TTL of a server's registration, in seconds.
DEFAULT_TTL = 10.0


def server_key(prefix: str, server_id: str) -> str:
    """Where ``server_id``'s record lives."""
    return f"{prefix}/servers/{server_id}"


def decode_record(kv: KeyValue) -> ServerRecord | None:
    """The record of a server key, or None (logged) when it is malformed."""
    try:
        record = msgspec.json.decode(kv.value, type=ServerRecord)
        record.info()
    except (msgspec.DecodeError, ConfigError) as exc:
        log.warn("ignoring malformed server record {key}: {error}", key=kv.key, error=exc)
        return None
    return record


@implementer(IServiceDiscovery)
class EtcdDiscovery:
    """This server's registration under ``prefix`` and its view of the cluster."""

    def __init__(
        self,
        server: DiscoveredServer,
        store: IKeyValueStore,
        prefix: str,
        *,
        host: str | None = None,
        ttl: float = DEFAULT_TTL,
        keep_alive_interval: float | None = None,
        retry_delay: float = 1.0,
        removal_grace: float = 0.5,
        stats_interval: float = 5.0,
        pid: int | None = None,
        on_command: Callable[[str], object] | None = None,
    ) -> None:
        if ttl <= 0 or stats_interval <= 0:
            raise ValueError("ttl and stats_interval must be positive")
        self.app = server
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.host = host or server.server.host
        self.ttl = ttl
        self.retry_delay = retry_delay
        self.removal_grace = removal_grace
        #: Peers whose key is gone, removed after ``removal_grace`` unless they put it again.
        self._leaving: dict[str, IDelayedCall] = {}
        self.stats_interval = stats_interval
        self.pid = os.getpid() if pid is None else pid
        self.on_command = on_command
        self.started_at = server.clock.seconds()
        #: servers.json's order: every server keeps each type's list in this order (then
        #: by id), so route functions pick the same server on every peer.
        self.rank = {info.id: n for n, info in enumerate(server.all_servers())}
        self.first_view: Deferred[None] = Deferred()
        self.listeners: Listeners[[MembershipEvent]] = Listeners("membership")
        #: Every other server of the cluster as last seen, by id.
        self.records: dict[str, ServerRecord] = {}
        #: The lease this server's record is attached to (None: none held right now).
        self.lease: int | None = None
        #: Registrations done (1 after the first; each re-registration adds one).
        self.registrations = 0
        self.stopped = False
        #: ``draining`` once this server drains (its record says so; peers stop forwarding).
        self.state: str | None = None
        self._published: ServerRecord | None = None
        self._retry: IDelayedCall | None = None
        self.keeper = LeaseKeeper(
            store,
            ttl,
            server.clock,
            interval=keep_alive_interval if keep_alive_interval is not None else ttl / 3,
            on_lease=self._on_lease,
            on_lost=self._on_lost,
            name=f"{server.server_id} registration",
        )
        self.follower = PrefixFollower(
            store,
            self.prefix + "/",
            server.clock,
            on_snapshot=self._snapshot,
            on_event=self._event,
            retry_delay=retry_delay,
            description=f"{server.server_id} discovery",
        )
        self._stats = LoopingCall(self._publish_stats)
        self._stats.clock = server.clock

    # -- IServiceDiscovery ----------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Register (as soon as a lease is granted) and follow the prefix."""
        self.stopped = False
        self.keeper.start()
        self.follower.start()
        self._stats.start(self.stats_interval, now=False)
        return observe(self.first_view)

    def stop(self) -> Deferred[None]:
        """Stop following and revoke the lease (the record goes with it)."""
        self.stopped = True
        self.follower.stop()
        for call in self._leaving.values():
            if call.active():
                call.cancel()
        self._leaving.clear()
        if self._stats.running:
            self._stats.stop()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self.lease = None
        d: Deferred[Any] = self.keeper.stop()

        def failed(failure: Failure) -> None:
            log.warn(
                "{server}: could not deregister from etcd: {error}",
                server=self.app.server_id,
                error=failure.getErrorMessage(),
            )

        return d.addCallbacks(lambda _: None, failed)

    def servers(self) -> list[ServerInfo]:
        """This server and every other one registered, as last seen."""
        return [self.app.server] + [record.info() for _, record in sorted(self.records.items())]

    def subscribe(self, listener: MembershipListener) -> Callable[[], None]:
        """Be told ``up``/``removed`` events."""
        return self.listeners.subscribe(listener)

    def record(self) -> ServerRecord:
        """This server's record now (``stats["state"]`` is ``draining`` while it drains)."""
        stats = server_stats(self.app)
        if self.state is not None:
            stats["state"] = self.state
        return ServerRecord(
            server=self.app.server.to_dict(),
            pid=self.pid,
            host=self.host,
            started=self.started_at,
            stats=stats,
        )

    def announce_leaving(self, grace: float) -> Deferred[str]:
        """This server drains: its record says ``draining`` (peers stop forwarding to it
        when their watch sees it); fires ``draining`` once the put is done. etcd has no
        acknowledgement from the peers: the drain's grace covers their calls in flight."""
        self.state = "draining"
        lease = self.lease
        if lease is None or self.stopped:
            return succeed("draining")
        record = self.record()
        d = self.store.put(self._key(), msgspec.json.encode(record), lease)
        return d.addCallbacks(lambda _: "draining", lambda _: "draining")

    # -- registration -----------------------------------------------------------------------

    def _on_lease(self, lease: int) -> Deferred[None] | None:
        """A new lease: the record goes under it (the keeper revokes an old lease that
        the store kept only once this put is done)."""
        self.lease = lease
        return self._register(lease)

    def _on_lost(self, reason: object) -> None:
        """The keeper logged it; the record is put again on the next lease."""
        self.lease = None

    def _register(self, lease: int) -> Deferred[None] | None:
        self._retry = None
        if self.stopped or lease != self.lease:
            return None
        record = self.record()
        d = self.store.put(self._key(), msgspec.json.encode(record), lease)
        return d.addCallbacks(
            self._registered,
            self._register_failed,
            callbackArgs=(lease, record),
            errbackArgs=(lease,),
        )

    def _registered(self, _: int, lease: int, record: ServerRecord) -> None:
        self._published = record
        self.registrations += 1
        log.info(
            "{server}: registered in etcd under {key} (lease {lease:x}, ttl {ttl}s)",
            server=self.app.server_id,
            key=self._key(),
            lease=lease,
            ttl=self.ttl,
        )
        self._maybe_ready()

    def _register_failed(self, failure: Failure, lease: int) -> None:
        if self.stopped or lease != self.lease:
            return
        if failure.check(LeaseNotFound):
            return  # the keeper sees it too, and grants a new lease (on_lease again)
        if not failure.check(KVError):
            log.failure("{server}: registration failed", failure, server=self.app.server_id)
        self._retry = self.app.clock.callLater(self.retry_delay, self._register, lease)

    def _publish_stats(self) -> None:
        """Put the record again when its stats changed (for ``pomelo-twisted list``)."""
        lease = self.lease
        if (
            lease is None
            or self._published is None
            or self.follower.unreachable
            or not self.keeper.reachable
        ):
            return
        record = self.record()
        if record == self._published:
            return
        d = self.store.put(self._key(), msgspec.json.encode(record), lease)
        d.addCallbacks(lambda _: setattr(self, "_published", record), lambda _: None)

    def _key(self) -> str:
        return server_key(self.prefix, self.app.server_id)

    def _maybe_ready(self) -> None:
        if (
            not self.first_view.called
            and self.registrations
            and self.follower.snapshots
            and not self.stopped
        ):
            self.first_view.callback(None)

    # -- membership ---------------------------------------------------------------------------

    def _snapshot(self, kvs: list[KeyValue]) -> None:
        """A fresh read of the prefix: the view becomes exactly what it holds."""
        servers_prefix = self.prefix + "/servers/"
        seen: dict[str, ServerRecord] = {}
        for kv in kvs:
            if kv.key.startswith(servers_prefix):
                record = decode_record(kv)
                server_id = kv.key[len(servers_prefix) :]
                if record is not None and server_id != self.app.server_id:
                    seen[server_id] = record
        known = set(self.records) | {info.id for info in self.app.all_servers()}
        for server_id in sorted(known - set(seen) - {self.app.server_id}):
            self._removed(server_id)
        for server_id, record in sorted(seen.items()):
            self._up(server_id, record)
        self._maybe_ready()

    def _event(self, event: WatchEvent) -> None:
        key = event.kv.key
        servers_prefix = self.prefix + "/servers/"
        if key.startswith(servers_prefix):
            server_id = key[len(servers_prefix) :]
            if server_id == self.app.server_id:
                self._own_key(event)
            elif event.kind == "delete":
                self._removed(server_id)
            else:
                record = decode_record(event.kv)
                if record is not None:
                    self._up(server_id, record)
        elif key == command_key(self.prefix, self.app.server_id) and event.kind == "put":
            command = decode_command(event.kv.value)
            name = None if command is None else command.command
            log.info(
                "{server}: command {command!r} from etcd", server=self.app.server_id, command=name
            )
            if name == "stop" and self.on_command is not None:
                self.on_command(name)

    def _own_key(self, event: WatchEvent) -> None:
        """Our record was deleted while we hold a lease (by hand, or the keeper revoked
        the old lease just before the put on the new one landed): put it back."""
        if event.kind == "delete" and self.lease is not None and not self.stopped:
            log.info("{server}: own record deleted; putting it again", server=self.app.server_id)
            self._register(self.lease)

    def _up(self, server_id: str, record: ServerRecord) -> None:
        leaving = self._leaving.pop(server_id, None)
        if leaving is not None and leaving.active():
            leaving.cancel()
        previous = self.records.get(server_id)
        self.records[server_id] = record
        draining = record.stats.get("state") == "draining"
        if previous is not None and previous.server == record.server and previous.pid == record.pid:
            if draining and previous.stats.get("state") != "draining":
                self._emit(MembershipEvent("draining", record.info()))
            return  # a stats update
        self._emit(MembershipEvent("draining" if draining else "up", record.info()))

    def _removed(self, server_id: str) -> None:
        """``server_id``'s key is gone: removed ``removal_grace`` seconds from now, unless it
        is put again meanwhile (a peer moving its key to a new lease, whose old lease is
        revoked a moment before the new put lands, must not flap out of the view)."""
        if server_id in self._leaving or self.stopped:
            return
        if self.removal_grace <= 0:
            self._remove_now(server_id)
            return
        self._leaving[server_id] = self.app.clock.callLater(
            self.removal_grace, self._remove_now, server_id
        )

    def _remove_now(self, server_id: str) -> None:
        self._leaving.pop(server_id, None)
        record = self.records.pop(server_id, None)
        info = record.info() if record is not None else _known(self.app, server_id)
        if info is not None:
            self._emit(MembershipEvent("removed", info))

    def _emit(self, event: MembershipEvent) -> None:
        apply_event(self.app, event)
        if event.kind == "up":
            self._reorder(event.server.type)
        self.listeners.notify(event)

    def _reorder(self, server_type: str) -> None:
        """Put ``server_type``'s list in the canonical order (servers.json's, then by id),
        whatever order the servers registered in."""
        servers = self.app.servers_of(server_type)
        last = len(self.rank)
        servers[:] = sorted(servers, key=lambda info: (self.rank.get(info.id, last), info.id))


def _known(server: DiscoveredServer, server_id: str) -> ServerInfo | None:
    return next((info for info in server.all_servers() if info.id == server_id), None)
