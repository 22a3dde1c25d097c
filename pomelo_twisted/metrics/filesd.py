"""The Prometheus ``file_sd`` target file of a cluster, kept by the master.

Every server with a ``metricsPort`` is one target group::

    [{"targets": ["127.0.0.1:9101"], "labels": {"server_id": "...", "server_type": "..."}}]

Prometheus' ``file_sd_configs`` rereads the file when it changes; it is written whole to
a temporary file next to it and renamed over it, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..gameconfig import ServerInfo

__all__ = ["file_sd_targets", "write_file_sd"]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def file_sd_targets(servers: Iterable[ServerInfo]) -> list[dict[str, Any]]:
    """The target groups of ``servers`` that have a ``metricsPort``, by server id."""
    return [
        {
            "targets": [_address(info.host, port)],
            "labels": {"server_id": info.id, "server_type": info.type},
        }
        for info in sorted(servers, key=lambda info: info.id)
        if (port := info.metrics_port) is not None
    ]


def write_file_sd(path: Path, servers: Iterable[ServerInfo]) -> None:
    """Write the target file of ``servers`` at ``path`` atomically (its folder is made
    when missing); ``OSError`` when it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(file_sd_targets(servers), indent=1) + "\n", "utf-8")
    os.replace(temporary, path)
