"""EtcdDiscovery on the in-memory store and Clocks: joins, leases, outages, commands."""

from __future__ import annotations

import msgspec
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.discovery.commands import command_key, encode_command
from pomelo_twisted.discovery.etcd import decode_record, server_key
from pomelo_twisted.discovery.interfaces import MembershipEvent, ServerRecord
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.interfaces import IComponent
from pomelo_twisted.kv.interfaces import KeyValue

from .harness import CHAT_1, CHAT_2, CONNECTOR_1, PREFIX, TTL, EtcdCluster, ids


class EtcdCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.cluster = EtcdCluster()
        self.store = self.cluster.store

    def record(self, server_id: str) -> ServerRecord | None:
        kv = self.successResultOf(self.store.get(server_key(PREFIX, server_id)))
        return None if kv is None else decode_record(kv)


class RegistrationTests(EtcdCase):
    """What a server puts in etcd, and when."""

    def test_registers_only_once_started(self) -> None:
        """The record is put once the application has started, on a lease of the TTL."""
        self.cluster.join(CHAT_1, pid=77)
        record = self.record("chat-1")
        assert record is not None
        self.assertEqual((record.pid, record.info()), (77, CHAT_1))
        kv = self.successResultOf(self.store.get(server_key(PREFIX, "chat-1")))
        assert kv is not None
        self.assertNotEqual(kv.lease, 0)

    def test_snapshot_drops_unregistered_servers(self) -> None:
        """Servers the app knew from servers.json but absent from etcd are removed."""
        app, _ = self.cluster.join(CHAT_1)
        self.assertEqual(ids(app), ["chat-1"])
        other, _ = self.cluster.join(CONNECTOR_1)
        other.add_server(CHAT_2)  # declared, never registered
        self.cluster.discoveries["connector-1"].follower.stop()
        self.cluster.discoveries["connector-1"].follower.start()
        self.cluster.advance(1)  # the removal grace
        self.assertEqual(ids(other), ["chat-1", "connector-1"])

    def test_keeps_the_lease_alive(self) -> None:
        """Keep-alives hold the registration far past the TTL."""
        self.cluster.join(CHAT_1)
        self.cluster.advance(TTL * 5)
        self.assertIsNotNone(self.record("chat-1"))

    def test_stats_are_published(self) -> None:
        """Changed stats are put again within stats_interval (for list)."""
        self.cluster.join(CHAT_1)
        self.cluster.join(CHAT_2)
        self.cluster.advance(6)
        record = self.record("chat-1")
        assert record is not None
        self.assertEqual(record.stats["connections"], 0)

    def test_bad_record_is_ignored(self) -> None:
        """A malformed record under servers/ is logged and ignored."""
        app, _ = self.cluster.join(CHAT_1)
        with capturedLogs() as events:
            self.store.put(f"{PREFIX}/servers/bogus", b"{not json")
        self.assertEqual(ids(app), ["chat-1"])
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])


class MembershipTests(EtcdCase):
    """Peers joining, leaving, dying and coming back."""

    def test_kill_removes_within_the_ttl(self) -> None:
        """A server that stops renewing (kill -9) is removed from peers within the TTL."""
        app, discovery = self.cluster.join(CHAT_1)
        self.cluster.join(CHAT_2)
        seen: list[MembershipEvent] = []
        discovery.subscribe(seen.append)
        self.cluster.kill("chat-2")
        self.cluster.advance(TTL - 1)
        self.assertIn("chat-2", ids(app))
        self.cluster.advance(1.5)  # the lease expired, the removal grace (0.5 s) is over
        self.assertNotIn("chat-2", ids(app))
        self.assertEqual([(e.kind, e.server.id) for e in seen], [("removed", "chat-2")])

    def test_restarted_server_rejoins(self) -> None:
        """The same id registered again (a restart) is up again, with its new address."""
        app, _ = self.cluster.join(CHAT_1)
        self.cluster.join(CHAT_2)
        self.cluster.kill("chat-2")
        self.cluster.advance(TTL + 1)
        moved = ServerInfo(id="chat-2", type="chat", port=4999)
        self.cluster.join(moved, pid=900)
        self.assertEqual(app.servers_of("chat")[1], moved)

    def test_same_order_whatever_the_registration_order(self) -> None:
        """Peers list the servers of a type in servers.json's order, so routing agrees."""
        declared = {"chat": [CHAT_1, CHAT_2], "connector": [CONNECTOR_1]}
        self.cluster.join(CHAT_2)
        connector, _ = self.cluster.join(CONNECTOR_1, servers=declared)
        self.cluster.join(CHAT_1)
        self.assertEqual(connector.servers_of("chat"), [CHAT_1, CHAT_2])
        late = ServerInfo(id="chat-0", type="chat", port=4999)
        self.cluster.join(late)
        self.assertEqual(connector.servers_of("chat"), [CHAT_1, CHAT_2, late])

    def test_key_moved_to_a_new_lease_does_not_flap(self) -> None:
        """A peer's key deleted and put again within the grace is never removed."""
        app, discovery = self.cluster.join(CHAT_1)
        self.cluster.join(CHAT_2)
        seen: list[MembershipEvent] = []
        discovery.subscribe(seen.append)
        kv = self.successResultOf(self.store.get(server_key(PREFIX, "chat-2")))
        assert kv is not None
        self.store.delete(kv.key)
        self.cluster.advance(0.2)
        self.store.put(kv.key, kv.value, kv.lease)
        self.cluster.advance(2)
        self.assertEqual(seen, [])
        self.assertIn("chat-2", ids(app))

    def test_watch_broken_rereads(self) -> None:
        """When the watch breaks, the prefix is read again: changes made meanwhile are seen."""
        app, discovery = self.cluster.join(CHAT_1)
        self.store.fail()
        self.store.recover()
        self.cluster.join(CHAT_2)  # chat-1 has no watch right now
        self.assertNotIn("chat-2", ids(app))
        self.cluster.advance(discovery.retry_delay)  # type: ignore[attr-defined]
        self.assertIn("chat-2", ids(app))
        self.assertEqual(discovery.follower.snapshots, 2)  # type: ignore[attr-defined]

    def test_outage_keeps_peers_and_logs_one_line_per_event(self) -> None:
        """etcd down for less than the TTL: peers are kept, the lease too, no traceback."""
        app, discovery = self.cluster.join(CHAT_1)
        self.cluster.join(CHAT_2)
        lease = discovery.lease  # type: ignore[attr-defined]
        with capturedLogs() as events:
            self.store.fail()
            self.cluster.advance(TTL / 2)
            self.assertIn("chat-2", ids(app))
            self.store.recover()
            self.cluster.advance(2)
        self.assertIn("chat-2", ids(app))
        self.assertEqual(discovery.lease, lease)  # type: ignore[attr-defined]
        self.assertFalse([e for e in events if "log_failure" in e])
        mine = [formatEvent(e) for e in events if formatEvent(e).startswith("chat-1 ")]
        self.assertEqual(  # the watch and the lease: one line each way
            [(m.split(":")[0], "again" in m) for m in mine],
            [
                ("chat-1 discovery", False),
                ("chat-1 registration", False),
                ("chat-1 discovery", True),
                ("chat-1 registration", True),
            ],
        )

    def test_reregisters_after_lease_loss(self) -> None:
        """etcd down longer than the TTL: the leases expire; once back, servers register on
        new leases and see each other again."""
        app, discovery = self.cluster.join(CHAT_1)
        self.cluster.join(CHAT_2)
        first = discovery.lease  # type: ignore[attr-defined]
        self.store.fail()
        self.cluster.advance(TTL * 2)
        self.assertIn("chat-2", ids(app))  # kept while etcd is away
        self.store.recover()
        self.cluster.advance(TTL)
        self.assertNotEqual(discovery.lease, first)  # type: ignore[attr-defined]
        self.assertEqual(discovery.registrations, 2)  # type: ignore[attr-defined]
        self.assertIsNotNone(self.record("chat-1"))
        self.assertIsNotNone(self.record("chat-2"))
        self.assertIn("chat-2", ids(app))
        self.assertIn("chat-1", ids(self.cluster.apps["chat-2"]))

    def test_after_start_at_the_first_view(self) -> None:
        """Without a master, after_start runs once registered and the view is read, and
        not before: etcd down at start delays it until etcd answers."""
        self.store.fail()
        app, _ = self.cluster.join(CHAT_1)
        component = app.components["discovery"]
        self.assertTrue(verifyObject(IComponent, component))
        self.cluster.advance(3)
        self.assertFalse(app._after_start_done)
        self.store.recover()
        self.cluster.advance(TTL / 3 + 1)
        self.assertTrue(app._after_start_done)


class CommandTests(EtcdCase):
    """Commands written under {prefix}/commands/."""

    def put_command(self, server_id: str, command: str) -> None:
        self.store.put(command_key(PREFIX, server_id), encode_command(command, 0.0))

    def test_stop_command(self) -> None:
        """A stop command for this server calls on_command; others' are ignored."""
        self.cluster.join(CHAT_1)
        self.put_command("chat-2", "stop")
        self.put_command("chat-1", "restart")  # the supervisor's business
        self.put_command("chat-1", "stop")
        self.assertEqual(self.cluster.commands, [("chat-1", "stop")])

    def test_old_commands_are_ignored(self) -> None:
        """A command already present when the server starts is not for it."""
        self.put_command("chat-1", "stop")
        self.cluster.join(CHAT_1)
        self.assertEqual(self.cluster.commands, [])

    def test_unknown_command_rejected(self) -> None:
        """encode_command names a command it does not know."""
        self.assertRaises(ValueError, encode_command, "explode", 0.0)

    def test_own_record_deleted_is_put_back(self) -> None:
        """Deleting a live server's record by hand: it registers again at once."""
        self.cluster.join(CHAT_1)
        self.successResultOf(self.store.delete(server_key(PREFIX, "chat-1")))
        self.assertIsNotNone(self.record("chat-1"))


class RecordTests(SynchronousTestCase):
    """The record's wire form."""

    def test_round_trip(self) -> None:
        """A record is JSON with the entry, pid, host, start time and stats."""
        record = ServerRecord(CHAT_1.to_dict(), 5, "127.0.0.2", 1.5, {"connections": 3})
        kv = KeyValue("k", msgspec.json.encode(record), 1, 1, 0)
        self.assertEqual(decode_record(kv), record)
        self.assertEqual(msgspec.json.decode(kv.value)["host"], "127.0.0.2")
