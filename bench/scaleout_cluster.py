"""The example game on three loopback "machines" with etcd discovery and Redis, no master.

:class:`ScaleoutCluster` is a :class:`bench.cluster.Cluster` whose copy of the example game
places connector-server-1 on 127.0.0.1, connector-server-2 on 127.0.0.2 and both chat
servers on 127.0.0.3 (free ports, ``auto-restart`` on), points ``master.json`` at a real
etcd (``discovery``, ``discoveryTtl``), adds ``config/redis.json`` (global channels on a
real Redis) and sets ``route`` and ``session_binding_ttl`` in the copy's ``app.py``. It
starts one ``pomelo-twisted start --host H`` supervisor per address; every CLI command
gets ``--discovery``. :class:`Services` is the etcd and Redis shared by a run's cases
(each case has its own prefix in both).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from bench.cluster import Cluster, _env
from pomelo_twisted.testing.etcdserver import EtcdServer
from pomelo_twisted.testing.redisserver import RedisServer

__all__ = ["HOSTS", "ScaleoutCluster", "Services"]

HOSTS = {
    "connector-server-1": "127.0.0.1",
    "connector-server-2": "127.0.0.2",
    "chat-server-1": "127.0.0.3",
    "chat-server-2": "127.0.0.3",
}

APP_SETTINGS = '''

_configure_example = configure


def configure(app: Application) -> None:  # noqa: F811 - bench/scaleout.py's settings
    """The example's configure, with the routing and binding settings of the bench."""
    app.set("route", {route!r})
    app.set("session_binding_ttl", {ttl!r})
    _configure_example(app)
'''


class Services:
    """One etcd and one Redis for every case of a run."""

    def __init__(self) -> None:
        self.etcd = EtcdServer()
        self.redis = RedisServer()

    def start(self) -> None:
        self.etcd.start()
        self.redis.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.etcd.resume()
        self.etcd.stop()
        self.redis.stop()


class ScaleoutCluster(Cluster):
    """Two connectors and two chat servers on three loopback hosts, etcd, Redis."""

    RUN_LOGS = "supervisor-*.log"  # one host supervisor per address, no master

    def __init__(self, services: Services, prefix: str, ttl: float, route: str = "crc32") -> None:
        super().__init__()
        self.services = services
        self.prefix = prefix
        self.ttl = ttl
        self.url = services.etcd.url.replace("http://", "etcd://") + "/" + prefix
        self.supervisors: dict[str, subprocess.Popen[bytes]] = {}
        config = self.game / "config"
        servers = json.loads((config / "servers.json").read_text())
        for entries in servers["development"].values():
            for entry in entries:
                entry["host"] = HOSTS[entry["id"]]
                entry["auto-restart"] = True
                if "clientHost" in entry:
                    entry["clientHost"] = entry["host"]
        (config / "servers.json").write_text(json.dumps(servers, indent=1))
        self.layout["servers"] = servers["development"]
        master = json.loads((config / "master.json").read_text())
        master["development"].update(
            discovery=self.url, discoveryTtl=ttl, discoveryKeepAlive=round(ttl / 3, 3)
        )
        (config / "master.json").write_text(json.dumps(master, indent=1))
        redis = {"development": {"url": services.redis.url, "prefix": prefix}}
        (config / "redis.json").write_text(json.dumps(redis, indent=1))
        app = self.game / "app.py"
        app.write_text(app.read_text() + APP_SETTINGS.format(route=route, ttl=ttl))

    def start(self, timeout: float = 60.0) -> None:
        """One supervisor per host; wait until ``list`` shows every server up."""
        for host in sorted(set(HOSTS.values())):
            out = (self.workdir / f"supervisor-{host}.log").open("wb")
            self._files.append(out)
            self.supervisors[host] = subprocess.Popen(
                [
                    *(sys.executable, "-m", "pomelo_twisted.admin.cli", "start"),
                    *("--app", str(self.game), "--host", host, "--discovery", self.url),
                ],
                cwd=self.workdir,
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for(self.all_up, timeout, "every server listed up")

    def cli(self, *args: str, timeout: float = 60.0) -> tuple[int, str]:
        """``pomelo-twisted ARGS --app GAME --discovery URL``: (exit code, output)."""
        return super().cli(*args, "--discovery", self.url, timeout=timeout)

    def rows(self) -> dict[str, list[str]]:
        """``list`` as server id -> its cells ({} if it fails)."""
        code, out = self.cli("list", timeout=20.0)
        if code != 0:
            return {}
        found: dict[str, list[str]] = {}
        for line in out.splitlines()[1:]:
            cells = line.split()
            if cells:
                found[cells[0]] = cells
        return found

    def listing(self) -> dict[str, str]:
        return {sid: cells[2] for sid, cells in self.rows().items() if len(cells) > 2}

    def all_up(self, ids: list[str] | None = None) -> bool:
        states = self.listing()
        return all(states.get(sid) == "up" for sid in ids or list(HOSTS))

    def wait_new_pid(self, server_id: str, old_pid: int, timeout: float = 40.0) -> float:
        """Seconds until ``list`` shows ``server_id`` up with another pid than ``old_pid``."""

        def back() -> bool:
            cells = self.rows().get(server_id, [])
            return len(cells) > 3 and cells[2] == "up" and cells[3] != str(old_pid)

        return self.wait_for(back, timeout, f"{server_id} up with a new pid")

    def close(self, keep: bool = False) -> None:
        """Bots, then ``stop`` through etcd, then whatever is left is killed."""
        for process in self.bots:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if any(p.poll() is None for p in self.supervisors.values()):
            with contextlib.suppress(Exception):
                self.cli("stop", timeout=30.0)
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline and any(
                p.poll() is None for p in self.supervisors.values()
            ):
                time.sleep(0.1)
        for process in self.supervisors.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pid in self.pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        super().close(keep=keep)


def host_of(cells: list[str]) -> str:
    """The host of a ``list`` row (its ``host:port`` cell)."""
    for cell in cells:
        if cell.count(".") == 3 and ":" in cell:
            return cell.rsplit(":", 1)[0]
    return "?"


def summary(report: dict[str, Any]) -> tuple[int, int]:
    """(requests, errors) of a bots' report."""
    return int(report.get("requests", 0)), int(report.get("errors", 0))
