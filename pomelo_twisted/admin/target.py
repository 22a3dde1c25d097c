"""The game a ``pomelo-twisted`` command works on, and how to reach its master."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from twisted.internet.defer import Deferred

from ..errors import ConfigError
from ..gameconfig import GameConfig, connect_endpoint
from ..interfaces import IServerReactor
from ..rpc.pbauth import ADMIN
from ..tlsconfig import cluster_tls
from .client import AdminClient

__all__ = ["DEFAULT_MASTER_PORT", "Connector", "Target", "load_target"]

#: The master's port when ``config/master.json`` names none (as the master does).
DEFAULT_MASTER_PORT = 3005

#: ``connect_admin``, or a stand-in: ``(reactor, endpoint, secret, timeout)``.
Connector = Callable[[IServerReactor, str, bytes, float], "Deferred[AdminClient]"]


@dataclass(frozen=True)
class Target:
    """The game folder, and how to reach its master."""

    config: GameConfig
    endpoint: str
    secret: bytes


def load_target(args: argparse.Namespace) -> Target:
    """The game of ``--app``/``--env``; ``ConfigError`` naming a missing folder or file."""
    folder = Path(args.app).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"no game folder {folder.resolve()}: pass --app DIR")
    config = GameConfig(folder, args.env)
    endpoint = config.master_endpoint()
    if endpoint is None:
        endpoint = connect_endpoint(config.master_settings().host, DEFAULT_MASTER_PORT)
    secret = config.admin_secret()  # its checks first: they name the likelier mistake
    tls = cluster_tls(config, ADMIN)
    if tls is not None:  # the admin certificate, and the master's checked against its id
        endpoint = tls.client(endpoint, config.master_settings().id)
    return Target(config, endpoint, secret)
