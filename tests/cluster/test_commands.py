"""The master's credentials per login name, admin ``add`` validation, restarting adopted servers."""

from __future__ import annotations

from twisted.logger import LogLevel, capturedLogs
from twisted.spread import pb

from pomelo_twisted.cluster.avatars import AdminAvatar
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.rpc.payload import pack_plain, unpack_plain

from .fakes import SECRET
from .test_master import MasterCase

ADMIN_SECRET = b"the-admin-secret"


class CredentialTests(MasterCase):
    """Which secret each login name must prove on the master's port."""

    def test_secret_per_name(self) -> None:
        """Declared server ids prove the cluster secret, ``admin`` the admin secret; any
        other name, or ``admin`` without an admin secret, may not log in."""
        master = MasterService(
            self.reactor, self.config, SECRET, spawn=False, admin_secret=ADMIN_SECRET
        )
        self.assertEqual(master.secret_for("chat-1"), SECRET)
        self.assertEqual(master.secret_for("admin"), ADMIN_SECRET)
        self.assertIsNone(master.secret_for("chat-9"))
        self.assertIsNone(master.secret_for("../../../../tmp/x"))
        self.assertIsNone(self.master.secret_for("admin"))


class AddTests(MasterCase):
    """admin ``add``: ids and types checked before anything is spawned."""

    def setUp(self) -> None:
        super().setUp()
        self.master.startService()
        self.admin = AdminAvatar(self.master)

    def refused(self, entry: dict[str, object]) -> str:
        spawned = len(self.reactor.spawned)
        with self.assertRaises(pb.Error) as caught:
            self.admin.perspective_add(pack_plain(entry))
        self.assertEqual(len(self.reactor.spawned), spawned)
        self.assertNotIn(entry.get("id"), self.master.declared)
        return str(caught.exception)

    def test_path_in_the_id_refused(self) -> None:
        """An id that is a path (it names the log file) is refused with a clear message."""
        message = self.refused({"type": "chat", "id": "../../../../tmp/x", "port": 4299})
        self.assertIn("bad server id '../../../../tmp/x': use 1 to 64 of A-Z a-z 0-9 _ -", message)
        for bad in ("a b", "x/y", "é", "x" * 65, "chat.3"):
            self.refused({"type": "chat", "id": bad, "port": 4299})

    def test_unknown_type_refused(self) -> None:
        """A type the game does not declare is refused, naming the declared ones."""
        message = self.refused({"type": "nosuch", "id": "x-1", "port": 4299})
        self.assertIn("unknown server type 'nosuch': the game declares chat, connector", message)

    def test_valid_entry_spawned(self) -> None:
        """An id of letters, digits, _ and - of a declared type is spawned."""
        entry = {"type": "chat", "id": "Chat_3-b", "port": 4299}
        answer = unpack_plain(self.admin.perspective_add(pack_plain(entry)))
        self.assertEqual(answer["added"], "Chat_3-b")
        self.assertEqual(self.reactor.spawned_ids()[-1], "Chat_3-b")

    def test_tls_cluster_needs_a_certificate_id(self) -> None:
        """In a TLS cluster an id must be a DNS label (no '_') with its certificate made."""
        certs = self.config.base_dir / "certs"
        certs.mkdir()
        self.master.tls_root = certs
        message = self.refused({"type": "chat", "id": "chat_3", "port": 4299})
        self.assertIn("server id 'chat_3' cannot name a TLS certificate", message)
        message = self.refused({"type": "chat", "id": "chat-3", "port": 4299})
        self.assertIn("no TLS certificate for 'chat-3'", message)
        self.assertIn("run `pomelo-twisted certs chat-3` first", message)
        (certs / "chat-3.pem").write_text("a certificate")
        answer = unpack_plain(
            self.admin.perspective_add(pack_plain({"type": "chat", "id": "chat-3", "port": 4299}))
        )
        self.assertEqual(answer["added"], "chat-3")


class AdoptedRestartTests(MasterCase):
    """An adopting master restarts a server it did not start."""

    running_at_start = frozenset({"chat-1", "connector-2"})

    def setUp(self) -> None:
        super().setUp()
        self.killed: list[int] = []
        self.master.kill_pid = self.killed.append
        self.master.startService()
        self.register_all()
        self.admin = AdminAvatar(self.master)

    def test_restart_through_its_link(self) -> None:
        """restart asks the adopted server to stop over its link; once it left, it is
        spawned (after the restart delay) and answered with the new pid; nothing above
        info is logged, and its loss does not respawn it a second time."""
        with capturedLogs() as events:
            d = self.admin.perspective_restart("chat-1")
            self.assertEqual(self.minds["chat-1"].methods()[-1], "stop")
            self.assertNoResult(d)
            self.avatars["chat-1"].logout()  # it stops: its link drops
            self.reactor.advance(self.supervisor.min_delay)
        new = self.reactor.process("chat-1")
        self.assertEqual(
            unpack_plain(self.successResultOf(d)), {"restarted": "chat-1", "pid": new.pid}
        )
        self.assertEqual(self.killed, [])
        self.reactor.advance(5)
        self.assertEqual(self.reactor.spawned_ids().count("chat-1"), 1)
        self.assertEqual([e for e in events if e["log_level"] > LogLevel.info], [])
        self.assertNotIn("chat-1", self.master.restarting)

    def test_restart_kills_by_pid_when_it_stays(self) -> None:
        """An adopted server that does not leave within the stop timeout is killed by the
        pid it registered with, then spawned."""
        d = self.admin.perspective_restart("connector-2")
        self.reactor.advance(self.master.stop_timeout)
        self.assertEqual(self.killed, [7])
        self.reactor.advance(self.supervisor.min_delay)
        self.assertEqual(self.reactor.spawned_ids()[-1], "connector-2")
        self.successResultOf(d)
        self.flushLoggedErrors()

    def test_unknown_server_refused(self) -> None:
        """A server neither started nor registered cannot be restarted."""
        self.avatars["chat-1"].logout()
        self.master.adopted.discard("chat-1")
        with self.assertRaises(pb.Error) as caught:
            self.admin.perspective_restart("chat-1")
        self.assertIn("not started by this master and is not registered", str(caught.exception))


class DeliberateRestartLogTests(MasterCase):
    """A restart asked for by the admin logs nothing above info."""

    def test_restart_of_a_started_server_is_info(self) -> None:
        """restart of a server the master started: its stop, its link's drop and its new
        start are info lines; the adoption of a running server at start is info too."""
        self.master.startService()
        self.register_all()
        admin = AdminAvatar(self.master)
        with capturedLogs() as events:
            d = admin.perspective_restart("chat-1")
            self.avatars["chat-1"].logout()
            self.reactor.process("chat-1").exit(0)
            self.register("chat-1", pid=self.reactor.process("chat-1").pid)
        self.successResultOf(d)
        self.assertEqual([e["log_format"] for e in events if e["log_level"] > LogLevel.info], [])
        self.assertNotIn("chat-1", self.master.restarting)
