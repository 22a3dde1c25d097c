"""Per-user ordering across the forward hop, on a real cluster (a copy of the example game)."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks

from pomelo_twisted.client import PomeloClient, connect

from .cluster import ENTRY, ClusterCase, ClusterProcess

SLOW_LOCAL = "connector.entryHandler.echo"
FAST_FORWARDED = "chat.chatHandler.echo"
HOLD = "chat.gateHandler.hold"
RELEASE = "chat.gateHandler.release"

# A handler file added to the copy (the example game stays as it is): ``hold`` is
# declared concurrent and answers once ``release`` (a plain route) is called by the
# same player on the same chat server (the example routes a room to one chat server).
GATE_HANDLER = """
from twisted.internet.defer import Deferred

from pomelo_twisted.handlers import concurrent


class GateHandler:
    def __init__(self, app):
        self.app = app
        self.held = {}

    @concurrent
    def hold(self, session, msg):
        d = Deferred()
        self.held[session.uid] = d
        return d

    def release(self, session, msg):
        d = self.held.pop(session.uid, None)
        if d is None:
            return {"code": 500, "msg": "nothing held"}
        d.callback({"code": 200, "released": True})
        return {"code": 200}
"""


class OrderingClusterTests(ClusterCase):
    """A player's requests are answered in the order sent, forwarded ones included."""

    @inlineCallbacks
    def test_slow_local_then_fast_forwarded_answered_in_order(self) -> Any:
        """A slow local request then a fast forwarded one: the answers come in that order;
        a route declared @concurrent on the chat server (known to the connector from the
        game folder) is not held behind, nor holds, the player's other requests."""
        cluster = ClusterProcess()
        self.addCleanup(cluster.stop)
        (cluster.game / "servers" / "chat" / "handler" / "gateHandler.py").write_text(
            GATE_HANDLER, encoding="utf-8"
        )
        cluster.start()
        yield cluster.wait_started()
        port = cluster.client_port("connector-server-1")
        client: PomeloClient = yield connect(reactor, f"tcp:127.0.0.1:{port}", timeout=5.0)
        self.addCleanup(client.close)
        reply = yield client.request(ENTRY, {"uid": "ann", "rid": "room-1"})
        self.assertEqual(reply, {"code": 200, "uid": "ann"})

        arrived: list[str] = []

        def record(body: Any, name: str) -> Any:
            arrived.append(name)
            return body

        for round_ in range(3):
            slow = client.request(SLOW_LOCAL, {"delayMs": 300, "n": round_})
            fast = client.request(FAST_FORWARDED, {"n": round_})
            slow.addCallback(record, f"slow-{round_}")
            fast.addCallback(record, f"fast-{round_}")
            self.assertEqual((yield fast), {"n": round_})
            self.assertEqual((yield slow), {"delayMs": 300, "n": round_})
        self.assertEqual(arrived, ["slow-0", "fast-0", "slow-1", "fast-1", "slow-2", "fast-2"])

        # A concurrent route overtakes: held on the chat server until the player's next
        # request (a plain forwarded one) releases it. Were it held in order, the release
        # would wait behind it and it would time out.
        held = client.request(HOLD, {})
        released = yield client.request(RELEASE, {})
        self.assertEqual(released, {"code": 200})
        self.assertEqual((yield held), {"code": 200, "released": True})
        self.assertEqual(cluster.tracebacks(), {})
