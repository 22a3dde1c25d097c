"""Freezing the startup heap out of the garbage collector."""

from __future__ import annotations

import gc

from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.heap import freeze_heap, freeze_heap_when_running


class FakeCollector:
    """Records the calls :func:`freeze_heap` makes, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.frozen = 0

    def collect(self) -> int:
        self.calls.append("collect")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")
        self.frozen = 1234

    def get_freeze_count(self) -> int:
        return self.frozen


class FreezeHeapTests(SynchronousTestCase):
    """What is frozen, when, and in which order."""

    def test_collects_garbage_before_freezing(self) -> None:
        """Garbage is collected first (so it is not frozen forever), then the rest is frozen."""
        collector = FakeCollector()
        self.assertEqual(freeze_heap(collector), 1234)
        self.assertEqual(collector.calls, ["collect", "freeze"])

    def test_waits_for_the_reactor(self) -> None:
        """Nothing happens until the reactor runs; then the heap is frozen once."""
        reactor = MemoryReactor()
        collector = FakeCollector()
        freeze_heap_when_running(reactor, collector)
        self.assertEqual(collector.calls, [])
        reactor.run()
        self.assertEqual(collector.calls, ["collect", "freeze"])

    def test_real_collector(self) -> None:
        """With the real gc module the objects alive now leave the collected generations."""
        survivor = [object()]
        self.assertTrue(any(each is survivor for each in gc.get_objects()))
        try:
            self.assertGreater(freeze_heap(), 1000)
            self.assertFalse(any(each is survivor for each in gc.get_objects()))
        finally:
            gc.unfreeze()
