"""TurnBatcher: the items of a reactor turn leave at its end, in batches of a bounded size."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.rpc.batcher import TurnBatcher
from pomelo_twisted.rpc.payload import pack_plain, unpack_plain


class TurnBatcherTests(SynchronousTestCase):
    """One callLater(0) per turn; chunks of at most max_size bytes; withdraw and clear."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.sent: list[list[object]] = []
        self.batcher = TurnBatcher(self.clock, self.record, 100)

    def record(self, batch: bytes) -> None:
        self.sent.append(unpack_plain(batch))

    def test_items_of_a_turn_leave_together_at_its_end(self) -> None:
        """Three items added in one turn: nothing before its end, then one batch of three."""
        for n in range(3):
            self.batcher.add(pack_plain(n))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual((self.sent, len(self.batcher)), ([], 3))
        self.clock.advance(0)
        self.assertEqual(self.sent, [[0, 1, 2]])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_each_turn_its_own_batch(self) -> None:
        """Items added after a turn ended leave at the end of the next one."""
        self.batcher.add(pack_plain("a"))
        self.clock.advance(0)
        self.batcher.add(pack_plain("b"))
        self.clock.advance(0)
        self.assertEqual(self.sent, [["a"], ["b"]])

    def test_large_turns_are_split(self) -> None:
        """Items adding up to more than max_size bytes leave in several batches, in order;
        an item bigger than max_size goes alone."""
        items = ["x" * 40, "y" * 40, "z" * 40, "w" * 150, "v"]
        for item in items:
            self.batcher.add(pack_plain(item))
        self.clock.advance(0)
        self.assertEqual(self.sent, [items[:2], items[2:3], items[3:4], items[4:]])

    def test_withdrawn_items_are_not_sent(self) -> None:
        """A withdrawn item is left out; withdrawing a sent item's ticket changes nothing."""
        first = self.batcher.add(pack_plain(1))
        second = self.batcher.add(pack_plain(2))
        self.batcher.withdraw(second)
        self.clock.advance(0)
        self.batcher.withdraw(first)  # sent already
        third = self.batcher.add(pack_plain(3))
        self.assertNotIn(third, (first, second))
        self.clock.advance(0)
        self.assertEqual(self.sent, [[1], [3]])

    def test_a_turn_of_withdrawn_items_sends_nothing(self) -> None:
        """When every item of the turn was withdrawn, no batch leaves."""
        self.batcher.withdraw(self.batcher.add(pack_plain(1)))
        self.clock.advance(0)
        self.assertEqual(self.sent, [])

    def test_clear_drops_the_turn(self) -> None:
        """clear() drops the unsent items and the pending end-of-turn call."""
        ticket = self.batcher.add(pack_plain(1))
        self.batcher.clear()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.batcher.withdraw(ticket)  # harmless, and does not touch the next turn's items
        self.batcher.add(pack_plain(2))
        self.batcher.withdraw(ticket)
        self.clock.advance(0)
        self.assertEqual(self.sent, [[2]])

    def test_flush_sends_now(self) -> None:
        """flush() sends the turn's items at once and cancels the end-of-turn call."""
        self.batcher.add(pack_plain(1))
        self.batcher.flush()
        self.assertEqual(self.sent, [[1]])
        self.assertEqual(self.clock.getDelayedCalls(), [])
