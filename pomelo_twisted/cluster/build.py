"""Building the master of a game's cluster from its config (``config/master.json``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from twisted.logger import Logger

from ..errors import ConfigError
from ..gameconfig import GameConfig
from ..interfaces import IServerReactor
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
) -> MasterService:
    """The master of the game's cluster; ``on_listen_failure`` when it cannot listen.

    master.json may tune it (:class:`~pomelo_twisted.gameconfig.MasterSettings`):
    ``stopTimeout`` (seconds a server gets to stop before SIGKILL, default 10),
    ``restartMinDelay`` / ``restartMaxDelay`` (the restart backoff, default 0.5 and
    30 s) and ``restartStableAfter`` (a run this long, in seconds, resets the backoff;
    default 10). Servers log in with ``secret``, the admin CLI with ``adminSecret``
    (absent: admin logins are refused). The servers it starts log at ``log_level``, its own.
    Raises ConfigError naming master.json.
    """
    secret = config.cluster_secret()
    admin_secret = config.admin_secret() if config.has_admin_secret() else None
    if admin_secret is None:
        log.info(
            "{where} has no 'adminSecret': admin logins are refused", where=config.where("master")
        )
    limits = config.master_settings()
    try:
        supervisor = Supervisor(
            reactor,
            min_delay=limits.restart_min_delay,
            max_delay=limits.restart_max_delay,
            stable_after=limits.restart_stable_after,
            stop_timeout=limits.stop_timeout,
        )
    except ValueError as exc:
        raise ConfigError(f"{config.path('master')}: {exc}") from None
    master = MasterService(
        reactor,
        config,
        secret,
        supervisor=supervisor,
        stop_timeout=limits.stop_timeout,
        stop_process=reactor.stop,
        admin_secret=admin_secret,
        command=partial(server_command, log_level=log_level),
    )
    master.on_listen_failure = on_listen_failure
    return master
