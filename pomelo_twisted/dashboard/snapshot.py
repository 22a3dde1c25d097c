"""The dashboard's picture of the cluster: the master's rows joined with each server's stats.

:class:`Snapshots` asks the master for its rows (:meth:`IClusterView.rows`: id, type,
state, host, pid, uptime, restarts) and every server that is up for its stats
(:meth:`IClusterView.stats`, what ``pomelo-twisted list`` shows: connections, breakers
and, when the server's metrics are on, ``requests``, ``routes`` and ``rpc``). Requests
per second come from the difference of ``requests`` between two snapshots of the same
process. A value a server does not report is ``None`` (the page shows "—"), and so is a
number that is not finite (JSON has no NaN).
"""

from __future__ import annotations

import math
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime

from ..cluster.interfaces import IClusterView

__all__ = ["ROW_KEYS", "Snapshots"]

#: The keys of the master's rows a snapshot keeps, as they are.
ROW_KEYS = ("id", "type", "state", "host", "port", "clientPort", "pid", "uptime", "restarts")


class Snapshots:
    """Takes snapshots of the cluster (see the module docstring)."""

    def __init__(self, cluster: IClusterView, clock: IReactorTime, stats_timeout: float) -> None:
        self.cluster = cluster
        self.clock = clock
        #: Seconds a server has to answer its stats before it counts as silent.
        self.stats_timeout = stats_timeout
        #: server id -> (pid, time, requests) of the last snapshot that had its requests.
        self._counted: dict[str, tuple[object, float, int]] = {}

    def take(self) -> Deferred[dict[str, Any]]:
        """A snapshot: ``{"time": seconds, "servers": [server, ...]}``, the master first."""
        rows = self.cluster.rows()
        asked = [row for row in rows[1:] if row.get("state") == "up"]
        polls = [self.cluster.stats(row["id"], self.stats_timeout) for row in asked]
        d: Deferred[list[tuple[bool, Any]]] = DeferredList(polls, consumeErrors=True)

        def assemble(results: list[tuple[bool, Any]]) -> dict[str, Any]:
            stats = {
                row["id"]: value if ok and isinstance(value, dict) else None
                for row, (ok, value) in zip(asked, results, strict=True)
            }
            now = self.clock.seconds()
            servers = [self._server(row, stats.get(row["id"]), now) for row in rows]
            live = {server["id"] for server in servers}
            for gone in set(self._counted) - live:
                del self._counted[gone]
            return {"time": now, "servers": servers}

        return d.addCallback(assemble)

    def _server(
        self, row: dict[str, Any], stats: dict[str, Any] | None, now: float
    ) -> dict[str, Any]:
        server = {key: row.get(key) for key in ROW_KEYS}
        server["answered"] = stats is not None
        connections = row.get("connections")
        if stats is not None and isinstance(stats.get("connections"), int):
            connections = stats["connections"]
        server["connections"] = connections
        requests = stats.get("requests") if stats is not None else None
        requests = requests if isinstance(requests, int) else None
        server["requests"] = requests
        server["requestsPerSecond"] = self._rate(row, requests, now)
        server["routes"] = _routes(stats.get("routes")) if stats is not None else None
        rpc = stats.get("rpc") if stats is not None else None
        rpc = {str(k): _number(v) for k, v in rpc.items()} if isinstance(rpc, dict) else None
        server["rpc"] = rpc
        server["rpcErrors"] = rpc.get("errors") if rpc is not None else None
        breakers = stats.get("breakers", {}) if stats is not None else None
        breakers = (
            {str(k): str(v) for k, v in breakers.items()} if isinstance(breakers, dict) else None
        )
        server["breakers"] = breakers
        return server

    def _rate(self, row: dict[str, Any], requests: int | None, now: float) -> float | None:
        """Requests per second since the last snapshot of the same process, or None."""
        server_id = row["id"]
        if requests is None:
            self._counted.pop(server_id, None)
            return None
        last = self._counted.get(server_id)
        self._counted[server_id] = (row.get("pid"), now, requests)
        if last is None:
            return None
        pid, then, before = last
        if pid != row.get("pid") or requests < before or now <= then:
            return None  # restarted (its counters began anew), or no time has passed
        return (requests - before) / (now - then)


def _number(value: object) -> int | float | None:
    """A finite number as it is; anything else (NaN of an empty histogram...) None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _routes(routes: object) -> list[dict[str, Any]] | None:
    """``{route: {"count", "p50", "p99"}}`` as rows sorted by route; None when absent."""
    if not isinstance(routes, dict):
        return None
    rows = []
    for route, values in sorted(routes.items()):
        values = values if isinstance(values, dict) else {}
        rows.append(
            {
                "route": str(route),
                **{key: _number(values.get(key)) for key in ("count", "p50", "p99")},
            }
        )
    return rows
