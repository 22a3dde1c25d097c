"""How the master starts a server: the twistd command line of one server process."""

from __future__ import annotations

import json
import sys

from ..gameconfig import GameConfig, ServerInfo
from .supervisor import ProcessSpec

__all__ = ["TWISTD", "server_command"]

#: twistd run by this interpreter (``python -m twisted`` is ``twist``, not ``twistd``).
TWISTD = (sys.executable, "-c", "from twisted.scripts.twistd import run; run()")


def server_command(
    config: GameConfig,
    info: ServerInfo,
    declared: bool = True,
    log_level: str = "info",
    discovery: str | None = None,
    log_format: str = "text",
) -> ProcessSpec:
    """How the master starts ``info``: ``twistd -n pomelo --type T --id ID`` (this Python).

    ``log_level`` is the master's own ``--log-level``: its servers log at the same level;
    ``log_format`` (``--log-format``) and ``discovery`` (``--discovery``) are passed on
    likewise.
    """
    args = [
        *TWISTD,
        "-n",
        "--pidfile=",
        "pomelo",
        "--app",
        str(config.base_dir),
        "--env",
        config.env,
        "--type",
        info.type,
        "--id",
        info.id,
    ]
    if not declared:
        args += ["--server", json.dumps(info.to_dict())]
    if log_level != "info":
        args += ["--log-level", log_level]
    if log_format != "text":
        args += ["--log-format", log_format]
    if discovery is not None:
        args += ["--discovery", discovery]
    return ProcessSpec(
        server_id=info.id,
        executable=sys.executable,
        args=tuple(args),
        log_path=config.base_dir / "logs" / f"{info.id}.log",
        env=None,
        path=str(config.base_dir),
        auto_restart=info.auto_restart,
        log_format=log_format,
    )
