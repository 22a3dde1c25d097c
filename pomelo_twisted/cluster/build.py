"""Building the master of a game's cluster from its config (``config/master.json``).

With ``--host HOST`` the process supervises only the servers ``servers.json`` places on
HOST. With etcd discovery (master.json's ``discovery`` or ``--discovery``) it is not a
master at all but a :class:`~pomelo_twisted.cluster.hosts.HostSupervisor`: servers register
in etcd themselves. With the master's registry and ``--host`` naming another host than the
master's, it is a HostSupervisor too (its servers join the master on its own host).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from twisted.application.service import Service
from twisted.logger import Logger

from ..discovery.select import etcd_settings, etcd_store
from ..errors import ConfigError
from ..gameconfig import GameConfig
from ..interfaces import IServerReactor
from .hosts import HostSupervisor
from .master import MasterService
from .spawn import server_command
from .supervisor import Supervisor

__all__ = ["build_master"]

log = Logger()


def build_master(
    config: GameConfig,
    reactor: IServerReactor,
    *,
    on_listen_failure: Callable[[], object],
    log_level: str = "info",
    host: str | None = None,
    discovery: str | None = None,
    log_format: str = "text",
) -> Service:
    """The master of the game's cluster; ``on_listen_failure`` when it cannot listen.
    (Or the supervisor of one host: see the module docstring.)

    master.json may tune it (:class:`~pomelo_twisted.gameconfig.MasterSettings`):
    ``stopTimeout`` (seconds a server gets to stop before SIGKILL, default 10),
    ``restartMinDelay`` / ``restartMaxDelay`` (the restart backoff, default 0.5 and
    30 s) and ``restartStableAfter`` (a run this long, in seconds, resets the backoff;
    default 10). Servers log in with ``secret``, the admin CLI with ``adminSecret``
    (absent: admin logins are refused). The servers it starts log at ``log_level``, its own,
    in its ``log_format``.
    Raises ConfigError naming master.json.
    """
    etcd = etcd_settings(config, discovery)
    limits = config.master_settings()
    command = partial(
        server_command, log_level=log_level, discovery=discovery, log_format=log_format
    )
    if etcd is not None or (host is not None and host != limits.host):
        config.cluster_secret()  # its servers need it: fail here, naming master.json
        return HostSupervisor(
            reactor,
            config,
            host,
            supervisor=_supervisor(config, reactor),
            command=command,
            store=None if etcd is None else etcd_store(reactor, etcd),
            prefix="" if etcd is None else etcd.key_prefix,
            stop_timeout=limits.stop_timeout,
            stop_process=reactor.stop,
        )
    secret = config.cluster_secret()
    admin_secret = config.admin_secret() if config.has_admin_secret() else None
    if admin_secret is None:
        log.info(
            "{where} has no 'adminSecret': admin logins are refused", where=config.where("master")
        )
    supervisor = _supervisor(config, reactor)
    master = MasterService(
        reactor,
        config,
        secret,
        supervisor=supervisor,
        stop_timeout=limits.stop_timeout,
        stop_process=reactor.stop,
        admin_secret=admin_secret,
        command=command,
        spawn_host=host,
    )
    master.on_listen_failure = on_listen_failure
    return master


def _supervisor(config: GameConfig, reactor: IServerReactor) -> Supervisor:
    limits = config.master_settings()
    try:
        return Supervisor(
            reactor,
            min_delay=limits.restart_min_delay,
            max_delay=limits.restart_max_delay,
            stable_after=limits.restart_stable_after,
            stop_timeout=limits.stop_timeout,
        )
    except ValueError as exc:
        raise ConfigError(f"{config.path('master')}: {exc}") from None
