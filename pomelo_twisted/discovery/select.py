"""Which discovery a game uses: master.json's ``discovery`` or ``--discovery``.

``"master"`` (the default) keeps today's registry in the master; ``etcd://HOST:PORT/PREFIX``
makes every server register in etcd under ``/PREFIX`` (no master needed). ``--discovery``
on ``twistd pomelo`` or ``pomelo-twisted`` overrides the config. Errors name the file and
field (or the option) at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError
from ..gameconfig import GameConfig
from ..interfaces import IServerReactor
from ..kv.etcd import EtcdKeyValueStore
from ..kv.gateway import parse_etcd_url
from ..kv.interfaces import IKeyValueStore
from .etcd import EtcdDiscovery
from .interfaces import DiscoveredServer

__all__ = ["EtcdSettings", "build_etcd_discovery", "etcd_settings", "etcd_store"]


@dataclass(frozen=True)
class EtcdSettings:
    """Where the cluster's etcd is and how servers register in it."""

    url: str
    endpoint: str
    prefix: str
    ttl: float
    keep_alive: float | None

    @property
    def key_prefix(self) -> str:
        """The prefix keys start with (no trailing slash: ``/game``, or empty for ``/``)."""
        return self.prefix.rstrip("/")


def etcd_settings(config: GameConfig, override: str | None = None) -> EtcdSettings | None:
    """The etcd discovery of ``config`` (``override``: ``--discovery``), or None for the
    master's registry. ``ConfigError`` names master.json's ``discovery`` or the option."""
    master = config.master_settings()
    url = override if override is not None else master.discovery
    where = "--discovery" if override is not None else f"{config.where('master')}: 'discovery'"
    if url == "master":
        return None
    try:
        endpoint, prefix = parse_etcd_url(url)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return EtcdSettings(url, endpoint, prefix, master.discovery_ttl, master.discovery_keep_alive)


def etcd_store(reactor: IServerReactor, settings: EtcdSettings) -> IKeyValueStore:
    """The etcd client of ``settings``."""
    return EtcdKeyValueStore(reactor, settings.endpoint)


def build_etcd_discovery(
    server: DiscoveredServer,
    settings: EtcdSettings,
    *,
    stop_process: Callable[[], object],
    host: str | None = None,
    store: IKeyValueStore | None = None,
) -> EtcdDiscovery:
    """``server``'s etcd discovery; a ``stop`` command from etcd calls ``stop_process``
    (once, from the next turn)."""
    stopping: list[bool] = []

    def stop(_command: str) -> None:
        if not stopping:
            stopping.append(True)
            server.clock.callLater(0, stop_process)

    return EtcdDiscovery(
        server,
        store if store is not None else etcd_store(server.reactor, settings),
        settings.key_prefix,
        host=host,
        ttl=settings.ttl,
        keep_alive_interval=settings.keep_alive,
        on_command=stop,
    )
