"""The conformance checks against the example game in memory (no sockets, one Clock).

:func:`memory_dialer` opens a raw :class:`~pomelo_twisted.conformance.Wire` to a frontend
of a :class:`~pomelo_twisted.testing.game.GameHarness`; :func:`drive` runs a coroutine,
delivering bytes and moving the clock until it is done.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connect

from pomelo_twisted.acceptors import TCPFactory
from pomelo_twisted.app.components import ConnectorComponent
from pomelo_twisted.conformance import Dialer, Wire
from pomelo_twisted.conformance.wire import stream_protocol
from pomelo_twisted.testing.game import GameHarness

T = TypeVar("T")


class MemoryTarget:
    """Raw connections to the first frontend of ``harness``; pumps them as the clock runs."""

    def __init__(self, harness: GameHarness) -> None:
        self.harness = harness
        connector = next(a for a in harness.service.apps if a.server.frontend).components[
            "connector"
        ]
        assert isinstance(connector, ConnectorComponent) and connector.agents is not None
        self.factory = TCPFactory(connector.agents)
        self.pumps: list[IOPump] = []

    def dial(self) -> Deferred[Wire]:
        wire = Wire(self.harness.clock, "tcp")
        client = stream_protocol(wire)
        server = self.factory.buildProtocol(None)
        self.pumps.append(
            connect(
                server,
                FakeTransport(server, isServer=True),
                client,
                FakeTransport(client, isServer=False),
            )
        )
        return succeed(wire)

    @property
    def dialer(self) -> Dialer:
        return self.dial

    def drive(self, work: Coroutine[Any, Any, T], step: float = 0.25, limit: float = 600) -> T:
        """Run ``work`` to its end: deliver bytes, then move the clock by ``step``."""
        outcome: list[Any] = []
        Deferred.fromCoroutine(work).addBoth(outcome.append)
        elapsed = 0.0
        while not outcome:
            for _ in range(2):  # bytes a settle produced are delivered before time moves
                for pump in self.pumps:
                    pump.flush()
                self.harness.settle()
            if outcome:
                break
            if elapsed > limit:
                raise AssertionError(f"still running after {limit}s of clock time")
            self.harness.advance(step)
            elapsed += step
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        result: T = outcome[0]
        return result
