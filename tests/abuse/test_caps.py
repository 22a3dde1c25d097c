"""Real-socket probe: the per-IP connection cap closes the connection over it at accept,
while the connections under it keep being answered."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure

from pomelo_twisted.agent import AgentConfig

from ..integration.test_loopback import ECHO, TIMEOUT, LoopbackTestCase


class Silent(Protocol):
    """Connects and waits; notes when the server closes it."""

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


class CapProbeTests(LoopbackTestCase):
    """Caps on loopback (every client is 127.0.0.1)."""

    timeout = 30

    @inlineCallbacks
    def test_per_ip_cap_refuses_at_accept(self) -> Any:
        """With a cap of 2 per IP, a third connection is closed at once and counted; the
        two under the cap keep being answered."""
        server = yield self.serve()
        server.agents.config = AgentConfig(max_connections_per_ip=2)
        first = yield self.client(f"tcp:127.0.0.1:{server.port}")
        second = yield self.client(f"tcp:127.0.0.1:{server.port}")
        extra = Silent()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port), extra)
        yield extra.lost.addTimeout(TIMEOUT, reactor)
        self.assertEqual(server.agents.metrics.refused, {"per-IP connection cap": 1})
        self.assertEqual((yield first.request(ECHO, {"a": 1})), {"a": 1})
        self.assertEqual((yield second.request(ECHO, {"b": 2})), {"b": 2})
