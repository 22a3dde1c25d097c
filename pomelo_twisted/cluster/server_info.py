"""ServerInfo: one server of a game, as ``config/servers.json`` declares it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["LISTEN_BACKLOG", "ServerInfo"]

#: The listen backlog of servers' ports: Twisted's default of 50 overflows (and clients
#: wait a second to retry) when thousands of players connect at once, as at a launch.
LISTEN_BACKLOG = 1024

_KNOWN = {"id", "host", "port", "clientHost", "clientPort", "frontend"}


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """Identity and addresses of one server process.

    ``port`` is its server-to-server (RPC) port; a frontend also has a client
    port. ``extra`` keeps every other key of its entry (``auto-restart``,
    ``args``, connector settings...).
    """

    id: str
    type: str
    host: str = "127.0.0.1"
    port: int = 0
    client_host: str | None = None
    client_port: int | None = None
    frontend: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, server_type: str, entry: Mapping[str, Any]) -> ServerInfo:
        """Build from one entry of servers.json (Pomelo's keys), naming what is wrong."""
        server_id = entry.get("id")
        if not isinstance(server_id, str) or not server_id:
            raise ConfigError(f"a {server_type!r} server in servers.json has no string 'id'")
        port = entry.get("port", 0)
        client_port = entry.get("clientPort")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(f"server {server_id!r}: 'port' must be a TCP port number")
        if client_port is not None and (
            not isinstance(client_port, int) or not 0 <= client_port <= 65535
        ):
            raise ConfigError(f"server {server_id!r}: 'clientPort' must be a TCP port number")
        frontend = entry.get("frontend", False) in (True, "true")
        if frontend and client_port is None:
            raise ConfigError(f"frontend server {server_id!r} needs a 'clientPort'")
        host = entry.get("host", "127.0.0.1")
        return cls(
            id=server_id,
            type=server_type,
            host=str(host),
            port=port,
            client_host=entry.get("clientHost"),
            client_port=client_port,
            frontend=frontend,
            extra={k: v for k, v in entry.items() if k not in _KNOWN},
        )

    @classmethod
    def from_dict(cls, data: object, server_type: str | None = None) -> ServerInfo:
        """Read :meth:`to_dict`'s form back (``None`` values count as absent); the type is
        ``data["type"]`` unless ``server_type`` is given. ``ConfigError`` names what is
        wrong."""
        if not isinstance(data, Mapping):
            raise ConfigError("a server entry must be an object")
        kind = server_type if server_type is not None else data.get("type")
        if not isinstance(kind, str):
            raise ConfigError("the server entry has no type")
        entry = {k: v for k, v in data.items() if k != "type" and v is not None}
        return cls.from_entry(kind, entry)

    @property
    def client_endpoint(self) -> str | None:
        """The client listener as an endpoint string, for a frontend."""
        if not self.frontend or self.client_port is None:
            return None
        host = self.client_host or self.host
        return f"tcp:{self.client_port}:interface={host}:backlog={LISTEN_BACKLOG}"

    @property
    def rpc_endpoint(self) -> str:
        """The server-to-server (RPC) listener as an endpoint string."""
        return f"tcp:{self.port}:interface={self.host}:backlog={LISTEN_BACKLOG}"

    @property
    def rpc_client_endpoint(self) -> str:
        """The endpoint string that connects to this server's RPC port."""
        return f"tcp:host={self.host}:port={self.port}"

    @property
    def auto_restart(self) -> bool:
        """Whether the master restarts this server when it dies (``"auto-restart": true``)."""
        return self.extra.get("auto-restart", False) in (True, "true")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for RPC and the admin interface)."""
        return {
            "id": self.id,
            "type": self.type,
            "host": self.host,
            "port": self.port,
            "clientHost": self.client_host,
            "clientPort": self.client_port,
            "frontend": self.frontend,
            **dict(self.extra),
        }
