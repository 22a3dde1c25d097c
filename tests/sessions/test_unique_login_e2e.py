"""Cluster-wide unique login through real sockets: the example game as real processes
(master + 2 connectors + 2 chat servers), its RPC session directory."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks

from pomelo_twisted.client import PomeloClient, connect

from ..e2e.cluster import ClusterCase, ClusterProcess

ENTRY = "connector.entryHandler.entry"


class UniqueLoginClusterTests(ClusterCase):
    """The same uid on both connectors of a real cluster."""

    @inlineCallbacks
    def client(self, cluster: ClusterProcess, connector: str) -> Any:
        port = cluster.client_port(connector)
        client: PomeloClient = yield connect(reactor, f"tcp:127.0.0.1:{port}", timeout=5.0)
        self.addCleanup(client.close)
        return client

    @inlineCallbacks
    def test_second_login_kicks_the_first(self) -> Any:
        """A login on connector 2 kicks the uid's client on connector 1 with a kick package
        saying "another login" before connector 2 answers; no traceback in any log."""
        cluster = yield self.started()
        first = yield self.client(cluster, "connector-server-1")
        kicks: list[str] = []
        first.on_kick(kicks.append)
        reply = yield first.request(ENTRY, {"uid": "zoe"})
        self.assertEqual(reply, {"code": 200, "uid": "zoe"})
        second = yield self.client(cluster, "connector-server-2")
        reply = yield second.request(ENTRY, {"uid": "zoe"})
        self.assertEqual(reply, {"code": 200, "uid": "zoe"})
        reason = yield first.closed
        self.assertEqual((kicks, reason), (["another login"], "kicked: another login"))
        self.assertIsNone(second.close_reason)
        self.assertEqual(cluster.tracebacks(), {})
