"""SIGTERM drains a cluster server before it stops."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ReactorNotRunning
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.process import SigtermDrain


class FakeReactor:
    """Counts stops; a second stop raises as a real reactor's does."""

    def __init__(self) -> None:
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1
        if self.stops > 1:
            raise ReactorNotRunning()


class SigtermTests(SynchronousTestCase):
    """What SigtermDrain does on each SIGTERM."""

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.on_term = SigtermDrain(self.reactor)  # type: ignore[arg-type]
        self.drains: list[Deferred[object]] = []

    def drain(self) -> Deferred[object]:
        d: Deferred[object] = Deferred()
        self.drains.append(d)
        return d

    def test_without_a_drain_it_stops(self) -> None:
        """A server without a drain (a master, an echo server) stops at once."""
        self.on_term()
        self.assertEqual(self.reactor.stops, 1)

    def test_drains_first(self) -> None:
        """With a drain, SIGTERM starts it and leaves the stop to it."""
        self.on_term.drain = self.drain
        self.on_term()
        self.assertEqual((len(self.drains), self.reactor.stops), (1, 0))
        self.drains[0].callback({})
        self.assertEqual(self.reactor.stops, 0)

    def test_second_sigterm_stops_at_once(self) -> None:
        """An operator who insists (a second SIGTERM) stops it during the drain; a third
        is harmless."""
        self.on_term.drain = self.drain
        self.on_term()
        self.on_term()
        self.on_term()
        self.assertEqual((len(self.drains), self.reactor.stops), (1, 2))

    def test_failed_drain_still_stops(self) -> None:
        """A drain that fails stops the process anyway."""
        self.on_term.drain = lambda: fail(RuntimeError("boom"))
        self.on_term()
        self.assertEqual(self.reactor.stops, 1)
