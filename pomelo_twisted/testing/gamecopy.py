"""Copies of a game folder on free loopback ports, for end-to-end tests and benchmarks.

A game's ``config/servers.json`` and ``config/master.json`` name fixed ports;
tests and benchmarks that start a real cluster (or a standalone process) next
to a running game need their own. :func:`copy_game` copies the folder and
rewrites every port of one environment (each server's RPC port, client
port and metrics port, the master's port and its dashboardPort) to a port that was free a
moment ago.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

__all__ = ["child_env", "copy_game", "free_ports"]


def child_env(checkout: Path) -> dict[str, str]:
    """The environment of a child process (twistd, the CLI, bots) that must import this
    ``checkout``'s pomelo_twisted: it first on PYTHONPATH, output unbuffered."""
    path = os.environ.get("PYTHONPATH")
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(checkout), path] if path else [str(checkout)]),
        PYTHONUNBUFFERED="1",
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def copy_game(source: Path | str, dest: Path | str, env: str = "development") -> dict[str, Any]:
    """Copy the game at ``source`` to ``dest`` (no ``logs/``) with every port of ``env``
    replaced by a free one; ``{"servers": {type: [entry...]}, "master": {...}}`` as written."""
    dest = Path(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("logs", "__pycache__"))
    servers_path = dest / "config" / "servers.json"
    master_path = dest / "config" / "master.json"
    servers = json.loads(servers_path.read_text(encoding="utf-8"))
    master = json.loads(master_path.read_text(encoding="utf-8"))
    entries = [entry for group in servers[env].values() for entry in group]
    extra = ("clientPort", "metricsPort")
    ports = iter(free_ports(2 + len(entries) + sum(key in e for e in entries for key in extra)))
    for entry in entries:
        entry["port"] = next(ports)
        for key in extra:
            if key in entry:
                entry[key] = next(ports)
    master[env]["port"] = next(ports)
    if "dashboardPort" in master[env]:
        master[env]["dashboardPort"] = next(ports)
    servers_path.write_text(json.dumps(servers, indent=1), encoding="utf-8")
    master_path.write_text(json.dumps(master, indent=1), encoding="utf-8")
    return {"servers": servers[env], "master": master[env]}
