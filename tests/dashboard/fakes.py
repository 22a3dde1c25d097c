"""A fake master for the dashboard's tests: rows, stats and actions the test sets."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from pomelo_twisted.cluster.interfaces import CommandRefused, IClusterView

MASTER_ROW = {
    "id": "master-server-1",
    "type": "master",
    "state": "up",
    "pid": 100,
    "host": "127.0.0.1",
    "port": 4005,
    "clientPort": None,
    "uptime": 12.0,
    "connections": 2,
    "restarts": 0,
}


def server_row(server_id: str, kind: str, pid: int | None, state: str = "up") -> dict[str, Any]:
    """A row as the master's ``rows()`` gives it for a server."""
    return {
        "id": server_id,
        "type": kind,
        "state": state,
        "pid": pid,
        "host": "127.0.0.1",
        "port": 4100,
        "clientPort": None,
        "uptime": 5.0 if state == "up" else None,
        "connections": None,
        "restarts": 0,
    }


@implementer(IClusterView)
class FakeCluster:
    """Answers what the test put in ``table`` and ``stats_of``; records what it is asked.

    ``pending`` holds a Deferred per server whose stats the test answers by hand.
    """

    def __init__(self) -> None:
        self.table: list[dict[str, Any]] = [
            dict(MASTER_ROW),
            server_row("connector-1", "connector", 201),
            server_row("chat-1", "chat", 301),
        ]
        self.stats_of: dict[str, dict[str, Any] | None] = {
            "connector-1": {"connections": 3, "peers": {}},
            "chat-1": {"connections": 0, "peers": {}},
        }
        self.pending: dict[str, Deferred[dict[str, Any] | None]] = {}
        self.stats_calls: list[tuple[str, float]] = []
        self.calls: list[tuple[Any, ...]] = []
        self.refusal: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.table]

    def stats(self, server_id: str, timeout: float) -> Deferred[dict[str, Any] | None]:
        self.stats_calls.append((server_id, timeout))
        if server_id in self.pending:
            return self.pending[server_id]
        return succeed(self.stats_of.get(server_id))

    def _answer(self, result: Any, ids: list[str], *call: Any) -> Deferred[Any]:
        """``result``, or the master's refusal: of ``refusal``, or of an unknown id."""
        self.calls.append(call)
        known = {row["id"] for row in self.table[1:]}
        unknown = [server_id for server_id in ids if server_id not in known]
        if unknown:
            return fail(CommandRefused(f"no server {', '.join(unknown)} in the cluster"))
        if self.refusal is not None:
            return fail(CommandRefused(self.refusal))
        return succeed(result)

    def restart(self, server_id: str) -> Deferred[int]:
        return self._answer(4242, [server_id], "restart", server_id)

    def stop(self, server_ids: list[str]) -> Deferred[list[str]]:
        return self._answer(list(server_ids), server_ids, "stop", server_ids)

    def server_command(
        self, server_id: str, name: str, args: dict[str, Any], timeout: float
    ) -> Deferred[Any]:
        call = ("command", server_id, name, args, timeout)
        return self._answer({"drained": True}, [server_id], *call)
