"""The hand-off file: written atomically, read once, only when fresh and its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.channels.service import ChannelService
from pomelo_twisted.drain.handoff import (
    ChannelsHandoff,
    read_handoff,
    restore_states,
    snapshot_states,
    write_handoff,
)
from pomelo_twisted.drain.interfaces import IStateHandoff


def channels() -> ChannelService:
    return ChannelService(lambda *_: succeed(None), lambda: ["connector-1"])


class HandoffFileTests(SynchronousTestCase):
    """write_handoff and read_handoff."""

    def setUp(self) -> None:
        self.path = Path(self.mktemp()) / "logs" / "chat-1.handoff"

    def test_round_trip_and_read_once(self) -> None:
        """What is written is read back once; the file is gone after."""
        states = {"channels": {"room": {"u1": "connector-1"}}}
        self.assertGreater(write_handoff(self.path, "chat-1", states, 100.0), 0)
        self.assertEqual(list(self.path.parent.iterdir()), [self.path])
        self.assertEqual(read_handoff(self.path, "chat-1", 101.0, 60.0), states)
        self.assertFalse(self.path.exists())
        self.assertIsNone(read_handoff(self.path, "chat-1", 101.0, 60.0))

    def test_stale_file_ignored(self) -> None:
        """A file older than max_age is from another deploy: ignored (and deleted)."""
        write_handoff(self.path, "chat-1", {"x": 1}, 100.0)
        self.assertIsNone(read_handoff(self.path, "chat-1", 200.0, 60.0))
        self.assertFalse(self.path.exists())

    def test_another_servers_file_ignored(self) -> None:
        """A file written by another server id is not taken."""
        write_handoff(self.path, "chat-2", {"x": 1}, 100.0)
        self.assertIsNone(read_handoff(self.path, "chat-1", 100.0, 60.0))

    def test_malformed_file_ignored(self) -> None:
        """Garbage in the file is ignored with a warning, never raised."""
        self.path.parent.mkdir(parents=True)
        self.path.write_bytes(b"\xc1garbage")
        self.assertIsNone(read_handoff(self.path, "chat-1", 100.0, 60.0))
        self.flushLoggedErrors()


class ChannelsHandoffTests(SynchronousTestCase):
    """The channels' members as a hand-off."""

    def test_interface(self) -> None:
        """ChannelsHandoff provides IStateHandoff."""
        verifyObject(IStateHandoff, ChannelsHandoff(channels()))

    def test_members_survive(self) -> None:
        """A room's members, with their frontends, are restored in a new service."""
        old = channels()
        room = old.create("room")
        room.add("u1", "connector-1")
        room.add("u2", "connector-2")
        old.create("empty")
        states = snapshot_states([ChannelsHandoff(old)])
        new = channels()
        self.assertEqual(restore_states([ChannelsHandoff(new)], states), ["channels"])
        restored = new.get("room")
        assert restored is not None
        self.assertEqual(restored.members(), ["u1", "u2"])
        self.assertEqual(restored.member("u2"), "connector-2")
        self.assertIsNotNone(new.get("empty"))

    def test_malformed_state_is_skipped(self) -> None:
        """A malformed part is logged and skipped; the others are restored."""

        class Other:
            name = "other"
            got: Any = None

            def snapshot(self) -> object:
                return 1

            def restore(self, state: object) -> None:
                self.got = state

        other = Other()
        done = restore_states([ChannelsHandoff(channels()), other], {"channels": 5, "other": 2})
        self.assertEqual(done, ["other"])
        self.assertEqual(other.got, 2)
