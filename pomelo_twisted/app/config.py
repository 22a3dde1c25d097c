"""A game's configuration folder, in Pomelo's format.

``config/servers.json``: per environment, a list of servers per type.
``config/master.json``: per environment, the master's id, host and port.
``config/dictionary.json``: extra routes for the route dictionary (push routes).
Any other ``config/<name>.json`` may have per-environment sections too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..cluster import ServerInfo
from ..errors import ConfigError

__all__ = ["GameConfig", "load_json", "select_env"]


def load_json(path: Path) -> Any:
    """Parse a JSON file, naming the file in any error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"missing config file {path}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def select_env(data: Any, env: str, path: Path) -> Any:
    """The section for ``env`` when the file has environment sections, else the whole."""
    if isinstance(data, dict) and env in data:
        return data[env]
    if isinstance(data, dict) and {"development", "production"} & set(data):
        raise ConfigError(f"{path} has no section for environment {env!r}")
    return data


class GameConfig:
    """The configuration of one game folder for one environment."""

    def __init__(self, base_dir: Path | str, env: str = "development") -> None:
        self.base_dir = Path(base_dir).resolve()
        self.env = env
        if not (self.base_dir / "config").is_dir():
            raise ConfigError(f"{self.base_dir} is not a game folder: it has no config/")

    def path(self, name: str) -> Path:
        """``config/<name>.json``."""
        return self.base_dir / "config" / f"{name}.json"

    def load(self, name: str, default: Any = None) -> Any:
        """``config/<name>.json`` for this environment; ``default`` if the file is absent."""
        path = self.path(name)
        if not path.exists():
            if default is not None:
                return default
            raise ConfigError(f"missing config file {path}")
        return select_env(load_json(path), self.env, path)

    def servers(self) -> dict[str, list[ServerInfo]]:
        """Every server of this environment, by type, in file order."""
        path = self.path("servers")
        data = self.load("servers")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected an object of server type -> list of servers")
        servers: dict[str, list[ServerInfo]] = {}
        seen: set[str] = set()
        for server_type, entries in data.items():
            if not isinstance(entries, list):
                raise ConfigError(f"{path}: servers of type {server_type!r} must be a list")
            infos = [ServerInfo.from_entry(server_type, entry) for entry in entries]
            for info in infos:
                if info.id in seen:
                    raise ConfigError(f"{path}: server id {info.id!r} appears twice")
                seen.add(info.id)
            servers[server_type] = infos
        return servers

    def master(self) -> dict[str, Any]:
        """The master's entry (id, host, port, optional secret); empty when not configured."""
        data = self.load("master", default={})
        if not isinstance(data, Mapping):
            raise ConfigError(f"{self.path('master')}: expected an object")
        return dict(data)

    def cluster_secret(self) -> bytes:
        """The cluster secret: ``POMELO_CLUSTER_SECRET``, else master.json's ``secret``."""
        secret = os.environ.get("POMELO_CLUSTER_SECRET") or self.master().get("secret")
        if not isinstance(secret, str) or len(secret) < 8:
            raise ConfigError(
                f"{self.path('master')} ({self.env}) needs a 'secret' of 8 characters or more "
                "(or set POMELO_CLUSTER_SECRET): servers of a cluster authenticate with it"
            )
        return secret.encode("utf-8")

    def master_endpoint(self) -> str | None:
        """The endpoint string connecting to the master, when one is configured."""
        entry = self.master()
        if "port" not in entry:
            return None
        return f"tcp:host={entry.get('host', '127.0.0.1')}:port={int(entry['port'])}"

    def dictionary_routes(self) -> list[str]:
        """Extra dictionary routes (push routes), in file order."""
        data = self.load("dictionary", default=[])
        if not isinstance(data, list) or not all(isinstance(r, str) for r in data):
            raise ConfigError(f"{self.path('dictionary')}: expected a list of route strings")
        return list(data)
