"""A game's protos: ``config/serverProtos.json`` and ``config/clientProtos.json``.

:func:`load_protos` reads them once (absent both: ``None``, and the game pays nothing);
:class:`Protos` holds their parsed form (sent to clients in the handshake), the version
pomelo computes from it, and a codec for each direction: ``server`` encodes responses and
pushes, ``client`` decodes requests and notifies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .codec import MAX_DEPTH, ProtobufCodec
from .schema import compile_protos, parse_protos, protos_version

__all__ = ["CLIENT_PROTOS", "SERVER_PROTOS", "Protos", "load_protos"]

SERVER_PROTOS = "config/serverProtos.json"
CLIENT_PROTOS = "config/clientProtos.json"


class Protos:
    """The protos of both directions, parsed and compiled (built from the files' JSON
    objects; :class:`ProtosError` names a bad key); ``max_depth``: how deep messages may
    nest in a body."""

    __slots__ = ("client", "handshake", "parsed_client", "parsed_server", "server", "version")

    def __init__(self, server: object, client: object, max_depth: int = MAX_DEPTH) -> None:
        self.parsed_server = parse_protos(server, "serverProtos")
        self.parsed_client = parse_protos(client, "clientProtos")
        self.version = protos_version(self.parsed_client, self.parsed_server)
        self.server = ProtobufCodec(compile_protos(self.parsed_server, "serverProtos"), max_depth)
        self.client = ProtobufCodec(compile_protos(self.parsed_client, "clientProtos"), max_depth)
        self.handshake: Mapping[str, Any] = {
            "server": self.parsed_server,
            "client": self.parsed_client,
            "version": self.version,
        }
        """``sys.protos`` of a handshake reply, as pomelo sends it."""

    def __repr__(self) -> str:
        return (
            f"<Protos version={self.version} server={sorted(self.server.routes)} "
            f"client={sorted(self.client.routes)}>"
        )


def _read(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_protos(base_dir: Path, max_depth: int = MAX_DEPTH) -> Protos | None:
    """The protos of the game in ``base_dir``; ``None`` when it has neither file (one
    absent file counts as ``{}``); :class:`ConfigError` naming the file and key."""
    server_path = base_dir / SERVER_PROTOS
    client_path = base_dir / CLIENT_PROTOS
    if not server_path.exists() and not client_path.exists():
        return None
    server = _read(server_path) if server_path.exists() else {}
    client = _read(client_path) if client_path.exists() else {}
    try:
        return Protos(server, client, max_depth)
    except ValueError as exc:  # a ProtosError, or a bad max_depth
        raise ConfigError(f"{base_dir / 'config'}: {exc}") from None
