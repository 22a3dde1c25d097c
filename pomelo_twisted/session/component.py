"""``app.sessions``: the session directory of a server, chosen from its settings at start.

:class:`SessionsComponent` is loaded into every server (before the connector, so a
frontend's bindings are ready before the first client). At start it builds the directory
the settings ask for and hands a frontend's session service its hooks:

``cluster_unique_login`` (bool, default False)
    A uid bound on one frontend kicks its sessions on every other frontend ("another
    login") before the bind completes (and its older sessions on this one). Off: binding
    behaves as it always did (``single_session`` alone, per frontend).
``session_directory`` (``"auto"`` default, ``"rpc"`` or ``"etcd"``)
    ``etcd`` (used only with ``cluster_unique_login``) keeps one leased key per uid in the
    key-value store: the ``kv_store`` setting (an ``IKeyValueStore``, keys under
    ``kv_prefix``, default ``/pomelo``), else ``session_etcd`` or ``discovery`` as
    ``etcd://HOST:PORT/PREFIX``. ``auto`` is ``etcd`` when one of these is set, else
    ``rpc`` (asks the frontends; no extra service).
``session_binding_ttl`` (5 s), ``session_binding_grace`` (1 s), ``session_bind_attempts`` (3),
``session_watch_retry`` (1 s)
    The etcd bindings' lease, the slack granted to an expiring lease, how many times a bind
    tries to take a uid, and the delay before a broken watch is read again.
``session_subscription_renew`` (10 s)
    How often a subscriber of the RPC directory renews its subscription.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from ..errors import ConfigError
from ..interfaces import IComponent, IServerReactor
from ..kv import IKeyValueStore
from .backend import RpcCall
from .directory import RENEW_INTERVAL, RpcSessionDirectory
from .interfaces import ISessionDirectory, SessionListener
from .service import SessionService

if TYPE_CHECKING:
    from ..kv.etcd import EtcdKeyValueStore
    from .bindings import EtcdSessionDirectory

__all__ = ["DEFAULT_KV_PREFIX", "SessionsComponent", "SessionsHost"]

log = Logger()

DEFAULT_KV_PREFIX = "/pomelo"


class SessionsHost(Protocol):
    """What the component reads of its server (an Application)."""

    @property
    def server_id(self) -> str: ...

    reactor: IServerReactor
    session_service: SessionService | None

    def get(self, key: str, default: Any = None) -> Any: ...

    def rpc_call(self, server_id: str, service: str, method: str, args: tuple[Any, ...]) -> Any: ...

    def frontend_ids(self) -> list[str]: ...


@implementer(IComponent, ISessionDirectory)
class SessionsComponent:
    """The directory of one server; subscriptions made before start are kept."""

    name = "sessions"

    def __init__(self, host: SessionsHost) -> None:
        self.host = host
        self.directory: RpcSessionDirectory | EtcdSessionDirectory | None = None
        self._own_store: EtcdKeyValueStore | None = None
        self._early: list[tuple[SessionListener, SessionListener, list[Callable[[], None]]]] = []

    def __repr__(self) -> str:
        return f"<SessionsComponent of {self.host.server_id}: {self.directory!r}>"

    # -- IComponent -------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Build the directory from the settings and start it."""
        host = self.host
        unique = bool(host.get("cluster_unique_login", False))
        kind = host.get("session_directory", "auto")
        if kind not in ("auto", "rpc", "etcd"):
            return fail(
                ConfigError(
                    f"{host.server_id}: session_directory {kind!r}:"
                    " expected 'auto', 'rpc' or 'etcd'"
                )
            )
        if kind == "auto":
            kind = "etcd" if self._etcd_configured() else "rpc"
        rpc: RpcCall = host.rpc_call
        local = host.session_service
        if kind == "etcd" and unique:
            # Imported here: a server without etcd bindings loads neither the lease
            # keeper nor the HTTP client.
            from .bindings import BINDING_TTL, EtcdSessionDirectory

            store, prefix = self._store()
            directory: RpcSessionDirectory | EtcdSessionDirectory = EtcdSessionDirectory(
                store,
                prefix,
                host.server_id,
                rpc,
                host.reactor,
                local=local,
                ttl=float(host.get("session_binding_ttl", BINDING_TTL)),
                grace=float(host.get("session_binding_grace", 1.0)),
                attempts=int(host.get("session_bind_attempts", 3)),
                retry_delay=float(host.get("session_watch_retry", 1.0)),
            )
        else:
            directory = RpcSessionDirectory(
                host.server_id,
                rpc,
                host.frontend_ids,
                host.reactor,
                local=local,
                renew_interval=float(host.get("session_subscription_renew", RENEW_INTERVAL)),
            )
        self.directory = directory
        if local is not None:
            local.directory = directory
            local.cluster_unique = unique
        for on_bind, on_close, remove in self._early:
            remove.append(directory.subscribe(on_bind, on_close))
        self._early.clear()
        log.info(
            "{server}: sessions on the {kind} directory, cluster-wide unique login {unique}",
            server=host.server_id,
            kind="rpc" if isinstance(directory, RpcSessionDirectory) else "etcd",
            unique="on" if unique else "off",
        )
        return directory.start()

    def _etcd_configured(self) -> bool:
        host = self.host
        url = host.get("session_etcd") or host.get("discovery")
        return host.get("kv_store") is not None or (
            isinstance(url, str) and url.startswith(("etcd://", "etcds://"))
        )

    def _store(self) -> tuple[IKeyValueStore, str]:
        host = self.host
        store = host.get("kv_store")
        if store is not None:
            if not IKeyValueStore.providedBy(store):
                raise ConfigError(f"{host.server_id}: kv_store {store!r} is not an IKeyValueStore")
            return store, str(host.get("kv_prefix", DEFAULT_KV_PREFIX))
        url = host.get("session_etcd") or host.get("discovery")
        if not isinstance(url, str) or not url.startswith(("etcd://", "etcds://")):
            raise ConfigError(
                f"{host.server_id}: session_directory 'etcd' needs a kv_store,"
                " or session_etcd / discovery as etcd://HOST:PORT/PREFIX"
            )
        from ..kv.etcd import EtcdKeyValueStore
        from ..kv.gateway import parse_etcd_url

        try:
            base, prefix = parse_etcd_url(url)
        except ValueError as exc:
            raise ConfigError(f"{host.server_id}: session bindings: {exc}") from None
        self._own_store = EtcdKeyValueStore(host.reactor, base)
        return self._own_store, prefix or DEFAULT_KV_PREFIX

    def after_start(self) -> None:
        """The cluster is up: the directory may renew what it sent too early."""
        if self.directory is not None:
            self.directory.after_start()

    def stop(self, force: bool) -> Deferred[None]:
        """Stop the directory (a frontend's etcd bindings are revoked), close its store."""
        directory, self.directory = self.directory, None
        d = succeed(None) if directory is None else directory.stop()
        store, self._own_store = self._own_store, None
        if store is not None:
            d.addBoth(lambda result: store.close().addCallback(lambda _: result))
        return d

    # -- ISessionDirectory --------------------------------------------------------

    def _running(self) -> RpcSessionDirectory | EtcdSessionDirectory:
        if self.directory is None:
            raise RuntimeError(
                f"{self.host.server_id}: app.sessions is used before the server started"
            )
        return self.directory

    def kick_by_uid(self, uid: str, reason: str = "kick") -> Deferred[int]:
        """Kick every session of ``uid`` in the cluster with ``reason``: how many."""
        return self._running().kick_by_uid(uid, reason)

    def where(self, uid: str) -> Deferred[tuple[str, int] | None]:
        """``(frontend_id, session_id)`` of a session of ``uid``, or None."""
        return self._running().where(uid)

    def subscribe(self, on_bind: SessionListener, on_close: SessionListener) -> Callable[[], None]:
        """Bind and close events of the whole cluster (subscribing before start is fine)."""
        if self.directory is not None:
            return self.directory.subscribe(on_bind, on_close)
        removes: list[Callable[[], None]] = []
        entry = (on_bind, on_close, removes)
        self._early.append(entry)

        def remove() -> None:
            if entry in self._early:
                self._early.remove(entry)
            for undo in removes:
                undo()

        return remove

    # -- served to other servers (sysremote) --------------------------------------

    def serve_kick(self, uid: str, reason: str) -> Any:
        """``kick_uid``: kick this frontend's sessions of ``uid``."""
        return self._running().serve_kick(uid, reason)

    def serve_where(self, uid: str) -> list[int]:
        """``where_uid``: this frontend's session ids of ``uid``."""
        return self._running().serve_where(uid)

    def serve_subscribe(self, server_id: str) -> bool:
        """``subscribe_sessions``: send ``server_id`` this frontend's events."""
        return self._running().serve_subscribe(server_id)

    def serve_event(self, kind: str, uid: str, frontend_id: str, sid: int) -> None:
        """``session_event``: a frontend's event for the listeners here."""
        self._running().serve_event(kind, uid, frontend_id, sid)
