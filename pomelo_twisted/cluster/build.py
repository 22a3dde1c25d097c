"""Building the master of a game's cluster from its config (``config/master.json``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..app.config import GameConfig
from ..errors import ConfigError
from ..interfaces import IServerReactor
from .master import MasterService
from .supervisor import Supervisor

__all__ = ["MASTER_LIMITS", "build_master"]

#: master.json timing settings and their defaults, in seconds.
MASTER_LIMITS = (
    ("stopTimeout", 10.0),
    ("restartMinDelay", 0.5),
    ("restartMaxDelay", 30.0),
    ("restartStableAfter", 10.0),
)


def _seconds(entry: dict[str, Any], key: str, default: float) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"master.json: {key!r} must be a positive number of seconds")
    return float(value)


def build_master(
    config: GameConfig,
    reactor: IServerReactor,
    *,
    on_listen_failure: Callable[[], object],
) -> MasterService:
    """The master of the game's cluster; ``on_listen_failure`` when it cannot listen.

    master.json may tune it: ``stopTimeout`` (seconds a server gets to stop before
    SIGKILL, default 10), ``restartMinDelay`` / ``restartMaxDelay`` (the restart
    backoff, default 0.5 and 30 s) and ``restartStableAfter`` (a run this long, in
    seconds, resets the backoff; default 10). Raises ConfigError naming master.json.
    """
    secret = config.cluster_secret()
    entry = config.master()
    limits = {key: _seconds(entry, key, default) for key, default in MASTER_LIMITS}
    try:
        supervisor = Supervisor(
            reactor,
            min_delay=limits["restartMinDelay"],
            max_delay=limits["restartMaxDelay"],
            stable_after=limits["restartStableAfter"],
            stop_timeout=limits["stopTimeout"],
        )
    except ValueError as exc:
        raise ConfigError(f"{config.path('master')}: {exc}") from None
    master = MasterService(
        reactor,
        config,
        secret,
        supervisor=supervisor,
        stop_timeout=limits["stopTimeout"],
        stop_process=reactor.stop,
    )
    master.on_listen_failure = on_listen_failure
    return master
