"""A game's configuration folder, in Pomelo's format, validated (a leaf module).

``config/servers.json``: per environment, a list of servers per type (:class:`ServerInfo`).
``config/master.json``: per environment, the master's id, host, port, secret and its
restart/stop tuning (:class:`MasterSettings`).
``config/dictionary.json``: extra routes for the route dictionary (push routes).
``config/redis.json``: per environment, the Redis of the global channels (optional).
Any other ``config/<name>.json`` may have per-environment sections too.

Values are checked with msgspec (the types below are the schema); a wrong one is a
:class:`~pomelo_twisted.errors.ConfigError` naming the file, the environment, the server
and the key. Endpoint strings quote the host with Twisted's ``quoteStringArgument``, so
an IPv6 address (``::1``) works in ``serverFromString``/``clientFromString``.

This module imports nothing from pomelo_twisted but :mod:`pomelo_twisted.errors`: the
application, the cluster and the RPC layer all read it without depending on each other.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from twisted.internet.endpoints import quoteStringArgument

from .errors import ConfigError

__all__ = [
    "LISTEN_BACKLOG",
    "GameConfig",
    "MasterSettings",
    "ServerInfo",
    "TlsSettings",
    "connect_endpoint",
    "listen_endpoint",
    "load_json",
    "select_env",
]

#: The listen backlog of servers' ports: Twisted's default of 50 overflows (and clients
#: wait a second to retry) when thousands of players connect at once, as at a launch.
LISTEN_BACKLOG = 1024

#: The shortest secret accepted; in the ``production`` environment, the shortest there.
MIN_SECRET = 8
MIN_PRODUCTION_SECRET = 16
#: The secrets published in example configs: refused in ``production``.
EXAMPLE_SECRET_PREFIXES = ("change-me", "development-only")

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Host = Annotated[str, msgspec.Meta(min_length=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
#: Pomelo's configs write booleans as JSON booleans or as the strings "true"/"false".
Flag = bool | Literal["true", "false"]

#: What a wrong value of a key should have been, for the error message.
_HINTS = {
    "port": "must be a TCP port number",
    "clientPort": "must be a TCP port number",
    "metricsPort": "must be a TCP port number",
    "metricsTargets": "must be a file path (relative to the game folder)",
    "host": "must be a host name or address",
    "clientHost": "must be a host name or address",
    "frontend": "must be true or false",
    "auto-restart": "must be true or false",
    "secret": "must be a string",
    "adminSecret": "must be a string",
    "id": "must be a non-empty string",
    "stopTimeout": "must be a positive number of seconds",
    "restartMinDelay": "must be a positive number of seconds",
    "restartMaxDelay": "must be a positive number of seconds",
    "restartStableAfter": "must be a positive number of seconds",
    "tls": 'must be an object such as {"dir": "certs"}',
    "discovery": 'must be "master" or an etcd URL such as "etcd://127.0.0.1:2379/game"',
    "discoveryTtl": "must be a positive number of seconds",
    "rpc": "must be an object of pingInterval, pingTimeout, loginDeadline (seconds) and "
    "preLoginBytes (1024 or more)",
    "discoveryKeepAlive": "must be a positive number of seconds",
    "dashboardPort": "must be a TCP port number",
    "dashboardHost": "must be a host name or address",
    "dashboardInterval": "must be a positive number of seconds",
}
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)

_Schema = TypeVar("_Schema")


def listen_endpoint(port: int, host: str, backlog: int | None = LISTEN_BACKLOG) -> str:
    """The endpoint string (``serverFromString``) of a TCP listener on ``host``:``port``."""
    description = f"tcp:{int(port)}:interface={quoteStringArgument(host)}"
    return description if backlog is None else f"{description}:backlog={int(backlog)}"


def connect_endpoint(host: str, port: int) -> str:
    """The endpoint string (``clientFromString``) connecting to ``host``:``port`` over TCP."""
    return f"tcp:host={quoteStringArgument(host)}:port={int(port)}"


def _convert(data: Mapping[str, Any], schema: type[_Schema], where: str) -> _Schema:
    """``data`` checked against ``schema``; a ``ConfigError`` naming ``where`` and the key."""
    try:
        return msgspec.convert(dict(data), schema)
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        assert match is not None  # the pattern matches any text
        what, path = match["what"], match["path"]
        if not path:
            raise ConfigError(f"{where}: {what}") from None
        key = path.lstrip(".").split(".")[0].split("[")[0]
        what = what[:1].lower() + what[1:]
        raise ConfigError(f"{where}: {key!r} {_HINTS.get(key, 'is invalid')} ({what})") from None


class _ServerEntry(msgspec.Struct, forbid_unknown_fields=False):
    """The keys of a servers.json entry this framework reads (others are kept as extra)."""

    host: Host = "127.0.0.1"
    port: Port = 0
    clientHost: Host | None = None  # noqa: N815 (Pomelo's key)
    clientPort: Port | None = None  # noqa: N815 (Pomelo's key)
    frontend: Flag = False
    auto_restart: Flag = msgspec.field(default=False, name="auto-restart")
    metricsPort: Port | None = None  # noqa: N815 (camelCase like Pomelo's keys)


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
    def from_entry(
        cls, server_type: str, entry: Mapping[str, Any], source: str = "servers.json"
    ) -> ServerInfo:
        """Build from one entry of servers.json (Pomelo's keys); ``ConfigError`` names
        ``source`` (the file and environment), the server and the key that is wrong."""
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{source}: a {server_type!r} server entry must be an object")
        server_id = entry.get("id")
        if not isinstance(server_id, str) or not server_id:
            raise ConfigError(f"{source}: a {server_type!r} server has no string 'id'")
        where = f"{source}: server {server_id!r} ({server_type})"
        known = _convert(entry, _ServerEntry, where)
        frontend = known.frontend in (True, "true")
        if frontend and known.clientPort is None:
            raise ConfigError(f"{where}: frontend server {server_id!r} needs a 'clientPort'")
        return cls(
            id=server_id,
            type=server_type,
            host=known.host,
            port=known.port,
            client_host=known.clientHost,
            client_port=known.clientPort,
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
        return cls.from_entry(kind, entry, "server entry")

    @property
    def server_type(self) -> str:
        """The server type (``type``; the name Pomelo's ``serverType`` reads as)."""
        return self.type

    @property
    def client_endpoint(self) -> str | None:
        """The client listener as an endpoint string, for a frontend."""
        if not self.frontend or self.client_port is None:
            return None
        return listen_endpoint(self.client_port, self.client_host or self.host)

    @property
    def rpc_endpoint(self) -> str:
        """The server-to-server (RPC) listener as an endpoint string."""
        return listen_endpoint(self.port, self.host)

    @property
    def rpc_client_endpoint(self) -> str:
        """The endpoint string that connects to this server's RPC port."""
        return connect_endpoint(self.host, self.port)

    @property
    def metrics_port(self) -> int | None:
        """The port of its Prometheus ``/metrics`` listener (``metricsPort``), or None."""
        port = self.extra.get("metricsPort")
        return port if isinstance(port, int) else None

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


class TlsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """master.json's ``tls``: the cluster's links speak TLS with certificates from ``dir``
    (relative to the game folder; see :mod:`pomelo_twisted.tlsconfig`)."""

    dir: Annotated[str, msgspec.Meta(min_length=1)] = "certs"


class RpcSettings(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    """master.json's ``rpc``: the links between servers (and to the master).

    ``pingInterval`` / ``pingTimeout``: a logged-in peer is pinged this often and marked
    down when it has not answered for this long (defaults 1 s and 3 s);
    ``loginDeadline``: seconds a connection to a PB port has to log in (10 s);
    ``preLoginBytes``: bytes it may send before (64 KiB, at least 1024).
    """

    ping_interval: Seconds = 1.0
    ping_timeout: Seconds = 3.0
    login_deadline: Seconds = 10.0
    pre_login_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024

    def __post_init__(self) -> None:
        if self.ping_interval >= self.ping_timeout:
            raise ValueError("'pingInterval' must be shorter than 'pingTimeout'")


class MasterSettings(msgspec.Struct, frozen=True, rename="camel"):
    """master.json for one environment: who the master is and how it runs the servers.

    ``port`` absent: no master (servers run without one). ``secret``: the cluster
    secret servers log in with; ``adminSecret``: the admin CLI's own (see
    :meth:`GameConfig.cluster_secret`, :meth:`GameConfig.admin_secret`). ``stopTimeout``: seconds a
    server gets to stop before SIGKILL; ``restartMinDelay``/``restartMaxDelay``: the
    restart backoff; ``restartStableAfter``: a run this long resets the backoff; ``tls``:
    every link of the cluster speaks TLS with mutual authentication (:class:`TlsSettings`);
    ``discovery``: how servers find each other, ``"master"`` (the default: the master's
    registry) or ``"etcd://HOST:PORT/PREFIX"`` (no master needed), with ``discoveryTtl``
    (the lease of a server's registration, default 10 s) and ``discoveryKeepAlive``
    (seconds between keep-alives, default a third of the TTL); ``rpc``: the links between
    servers (:class:`RpcSettings`); ``metricsTargets``: the Prometheus ``file_sd`` file
    the master keeps of the servers with a ``metricsPort`` (relative to the game folder,
    default ``logs/prometheus-targets.json``); ``dashboardPort`` (absent: no dashboard),
    ``dashboardHost`` (default the master's host) and ``dashboardInterval`` (seconds
    between live updates, default 1): the master's live dashboard
    (:mod:`pomelo_twisted.dashboard`). Other keys are allowed and ignored.
    """

    id: Annotated[str, msgspec.Meta(min_length=1)] = "master-server-1"
    host: Host = "127.0.0.1"
    port: Port | None = None
    secret: str | None = None
    admin_secret: str | None = None
    stop_timeout: Seconds = 10.0
    restart_min_delay: Seconds = 0.5
    restart_max_delay: Seconds = 30.0
    restart_stable_after: Seconds = 10.0
    tls: TlsSettings | None = None
    discovery: Annotated[str, msgspec.Meta(pattern=r"^(master|etcd://.+)$")] = "master"
    discovery_ttl: Seconds = 10.0
    discovery_keep_alive: Seconds | None = None
    rpc: RpcSettings = msgspec.field(default_factory=RpcSettings)
    metrics_targets: Annotated[str, msgspec.Meta(min_length=1)] = "logs/prometheus-targets.json"
    dashboard_port: Port | None = None
    dashboard_host: Host | None = None
    dashboard_interval: Seconds = 1.0

    def __post_init__(self) -> None:
        if self.restart_min_delay > self.restart_max_delay:
            raise ValueError("'restartMinDelay' must not exceed 'restartMaxDelay'")
        if (
            self.discovery_keep_alive is not None
            and self.discovery_keep_alive >= self.discovery_ttl
        ):
            raise ValueError("'discoveryKeepAlive' must be shorter than 'discoveryTtl'")

    #: The master's port when master.json names none (Pomelo's default).
    DEFAULT_PORT = 3005

    @property
    def listen_endpoint(self) -> str:
        """The master's listener as an endpoint string."""
        port = self.DEFAULT_PORT if self.port is None else self.port
        return listen_endpoint(port, self.host, backlog=None)

    @property
    def dashboard_endpoint(self) -> str | None:
        """The dashboard's listener as an endpoint string; None when it has no port."""
        if self.dashboard_port is None:
            return None
        return listen_endpoint(self.dashboard_port, self.dashboard_host or self.host, None)

    @property
    def client_endpoint(self) -> str | None:
        """The endpoint string connecting to the master; None when no port is configured."""
        return None if self.port is None else connect_endpoint(self.host, self.port)


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

    def where(self, name: str) -> str:
        """``config/<name>.json (<env>)``: how errors name a file of this environment."""
        return f"{self.path(name)} ({self.env})"

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
        where = self.where("servers")
        data = self.load("servers")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected an object of server type -> list of servers")
        servers: dict[str, list[ServerInfo]] = {}
        seen: set[str] = set()
        for server_type, entries in data.items():
            if not isinstance(entries, list):
                raise ConfigError(f"{where}: servers of type {server_type!r} must be a list")
            infos = [ServerInfo.from_entry(server_type, entry, where) for entry in entries]
            for info in infos:
                if info.id in seen:
                    raise ConfigError(f"{where}: server id {info.id!r} appears twice")
                seen.add(info.id)
            servers[server_type] = infos
        return servers

    def master(self) -> dict[str, Any]:
        """The master's entry as written (id, host, port, secret...); empty when absent."""
        data = self.load("master", default={})
        if not isinstance(data, Mapping):
            raise ConfigError(f"{self.where('master')}: expected an object")
        return dict(data)

    def master_settings(self) -> MasterSettings:
        """master.json checked: the master's address, secret and tuning (see MasterSettings)."""
        return _convert(self.master(), MasterSettings, self.where("master"))

    def cluster_secret(self) -> bytes:
        """The cluster secret servers log in with: ``POMELO_CLUSTER_SECRET``, else
        master.json's ``secret`` (see :meth:`_secret` for what is refused)."""
        secret = os.environ.get("POMELO_CLUSTER_SECRET") or self.master_settings().secret
        return self._secret(secret, "secret", "POMELO_CLUSTER_SECRET", "servers of a cluster")

    def has_admin_secret(self) -> bool:
        """Whether an admin secret is configured (``POMELO_ADMIN_SECRET`` or
        master.json's ``adminSecret``): without one, the master refuses every admin login."""
        return bool(os.environ.get("POMELO_ADMIN_SECRET") or self.master_settings().admin_secret)

    def admin_secret(self) -> bytes:
        """The admin CLI's secret: ``POMELO_ADMIN_SECRET``, else master.json's
        ``adminSecret``. Nothing is derived from the cluster secret: a server's secret
        never logs in as the admin, so the two must differ."""
        cluster = self.cluster_secret()
        secret = os.environ.get("POMELO_ADMIN_SECRET") or self.master_settings().admin_secret
        admin = self._secret(secret, "adminSecret", "POMELO_ADMIN_SECRET", "the admin CLI")
        if admin == cluster:
            raise ConfigError(
                f"{self.where('master')}: 'adminSecret' must differ from 'secret': "
                "a server must not be able to log in as the admin"
            )
        return admin

    def _secret(self, secret: str | None, key: str, variable: str, who: str) -> bytes:
        """``secret`` checked: 8 characters or more; in ``production`` 16 or more and not
        a published example (``change-me-...``, ``development-only-...``)."""
        where = self.where("master")
        hint = f"(or set {variable}): {who} authenticate with it"
        if not isinstance(secret, str) or len(secret) < MIN_SECRET:
            raise ConfigError(f"{where} needs a {key!r} of {MIN_SECRET} characters or more {hint}")
        if self.env == "production":
            if len(secret) < MIN_PRODUCTION_SECRET:
                raise ConfigError(
                    f"{where}: {key!r} is too short for production "
                    f"({len(secret)} characters, at least {MIN_PRODUCTION_SECRET}) {hint}"
                )
            if secret.startswith(EXAMPLE_SECRET_PREFIXES):
                raise ConfigError(
                    f"{where}: {key!r} is the published example value {secret[:10]!r}...; "
                    f"production needs a secret of its own {hint}"
                )
        return secret.encode("utf-8")

    def tls_dir(self) -> Path | None:
        """The certificates folder when master.json declares ``tls`` for this environment
        (every link of the cluster then speaks TLS); None otherwise."""
        tls = self.master_settings().tls
        return None if tls is None else self.base_dir / tls.dir

    def master_endpoint(self) -> str | None:
        """The endpoint string connecting to the master, when one is configured."""
        return self.master_settings().client_endpoint

    def redis(self) -> dict[str, Any] | None:
        """``config/redis.json`` for this environment (global channels and online status:
        ``url``, ``prefix``...), or None when the game uses no Redis."""
        if not self.path("redis").exists():
            return None
        data = self.load("redis")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{self.where('redis')}: expected an object with a 'url'")
        return dict(data)

    def dictionary_routes(self) -> list[str]:
        """Extra dictionary routes (push routes), in file order."""
        data = self.load("dictionary", default=[])
        if not isinstance(data, list) or not all(isinstance(r, str) for r in data):
            raise ConfigError(f"{self.where('dictionary')}: expected a list of route strings")
        return list(data)
