"""Start and stop the reference pinus 1.7.4 chat server (``shared/peers/pinus-chat``).

The peer folder is copied to a temporary directory (the shared one is
read-only), its dependencies installed with ``npm ci`` (npm's own cache makes
later runs quick), and ``start.sh`` started on free loopback ports; it returns
once a request forwarded to the chat backend is answered. ``stop()`` runs
``stop.sh``, which stops exactly the pids the peer recorded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pomelo_twisted.testing.gamecopy import free_ports

__all__ = ["PinusPeer", "find_peer_source", "free_ports", "interop_enabled", "skip_reason"]

REPO = Path(__file__).resolve().parents[2]


def interop_enabled() -> bool:
    """Interop tests run only when asked (``make test-interop`` sets the variable)."""
    return os.environ.get("POMELO_INTEROP") == "1"


def find_peer_source() -> Path | None:
    """The pinus-chat peer folder: ``$POMELO_PINUS_PEER`` or ``../shared/peers/pinus-chat``."""
    configured = os.environ.get("POMELO_PINUS_PEER")
    candidate = Path(configured) if configured else REPO.parent / "shared/peers/pinus-chat"
    return candidate if (candidate / "start.sh").is_file() else None


def skip_reason() -> str | None:
    """Why interop tests cannot run here, or ``None`` when they can."""
    if not interop_enabled():
        return "interop tests run with POMELO_INTEROP=1 (make test-interop)"
    if find_peer_source() is None:
        return "the pinus-chat peer folder is missing (set POMELO_PINUS_PEER)"
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass
class PinusPeer:
    """One running pinus master + connector + chat backend on loopback."""

    heartbeat: int = 30
    client_port: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pinus-chat-")))

    def start(self) -> None:
        """Copy, install and start the peer; raise with its log when it does not come up."""
        source = find_peer_source()
        if source is None:
            raise RuntimeError("pinus-chat peer folder not found")
        peer = self.workdir / "pinus-chat"
        shutil.copytree(source, peer, ignore=shutil.ignore_patterns("node_modules", "logs", "run"))
        for path in [peer, *peer.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=peer,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )
        client, master, connector_rpc, chat_rpc = free_ports(4)
        self.client_port = client
        env = dict(
            os.environ,
            PEER_CLIENT_PORT=str(client),
            PEER_MASTER_PORT=str(master),
            PEER_CONNECTOR_RPC=str(connector_rpc),
            PEER_CHAT_RPC=str(chat_rpc),
            PEER_HEARTBEAT=str(self.heartbeat),
        )
        result = subprocess.run(
            ["bash", "start.sh"], cwd=peer, env=env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"pinus peer did not start:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        """Stop the peer's processes and remove the copy."""
        peer = self.workdir / "pinus-chat"
        if (peer / "stop.sh").exists():
            subprocess.run(["bash", "stop.sh"], cwd=peer, capture_output=True, timeout=60)
        shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def tcp_target(self) -> str:
        """The client endpoint string for raw TCP."""
        return f"tcp:127.0.0.1:{self.client_port}"

    @property
    def ws_target(self) -> str:
        """The WebSocket URL (pinus's hybrid connector accepts any path)."""
        return f"ws://127.0.0.1:{self.client_port}/"
