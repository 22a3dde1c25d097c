"""The Prometheus file_sd target file: its content, its atomic write, the master's."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.cluster.avatars import ServerAvatar
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig, ServerInfo
from pomelo_twisted.metrics.filesd import file_sd_targets, write_file_sd
from pomelo_twisted.rpc.payload import pack_plain

from ..cluster.fakes import SECRET, FakeMind, ProcessReactor, write_game


def info(server_id: str, server_type: str, **entry: object) -> ServerInfo:
    return ServerInfo.from_entry(server_type, {"id": server_id, **entry})


class TargetsTests(SynchronousTestCase):
    """file_sd_targets and write_file_sd."""

    def test_targets_of_servers_with_a_metrics_port(self) -> None:
        """One group per server with a metricsPort, by id, labelled with id and type;
        an IPv6 host is bracketed."""
        servers = [
            info("gate-1", "gate", host="10.0.0.2", metricsPort=9300),
            info("chat-1", "chat", host="::1", metricsPort=9200),
            info("area-1", "area", port=4000),
        ]
        self.assertEqual(
            file_sd_targets(servers),
            [
                {
                    "targets": ["[::1]:9200"],
                    "labels": {"server_id": "chat-1", "server_type": "chat"},
                },
                {
                    "targets": ["10.0.0.2:9300"],
                    "labels": {"server_id": "gate-1", "server_type": "gate"},
                },
            ],
        )

    def test_written_whole_through_a_rename(self) -> None:
        """The file is written (its folder made), and no temporary file is left."""
        base = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, base, ignore_errors=True)
        path = base / "logs" / "targets.json"
        write_file_sd(path, [info("chat-1", "chat", metricsPort=9200)])
        write_file_sd(path, [info("chat-2", "chat", metricsPort=9201)])
        self.assertEqual(
            json.loads(path.read_text()),
            [
                {
                    "targets": ["127.0.0.1:9201"],
                    "labels": {"server_id": "chat-2", "server_type": "chat"},
                }
            ],
        )
        self.assertEqual(sorted(p.name for p in path.parent.iterdir()), ["targets.json"])

    def test_metrics_port_is_validated(self) -> None:
        """A metricsPort that is not a port number is refused naming the server and key."""
        with self.assertRaises(ConfigError) as caught:
            info("chat-1", "chat", metricsPort="nine")
        self.assertIn("'metricsPort' must be a TCP port number", str(caught.exception))
        self.assertIn("chat-1", str(caught.exception))
        self.assertIsNone(info("chat-1", "chat").metrics_port)
        self.assertEqual(info("chat-1", "chat", metricsPort=9).metrics_port, 9)
        self.assertEqual(
            ServerInfo.from_dict(info("c", "chat", metricsPort=9).to_dict()).metrics_port, 9
        )


class MasterTargetsTests(SynchronousTestCase):
    """The master keeps the target file as the membership changes."""

    def setUp(self) -> None:
        self.base = write_game(self)
        servers_path = self.base / "config" / "servers.json"
        servers = json.loads(servers_path.read_text())
        for number, entry in enumerate(servers["development"]["chat"]):
            entry["metricsPort"] = 9200 + number
        servers_path.write_text(json.dumps(servers))
        self.config = GameConfig(self.base)
        self.reactor = ProcessReactor()
        self.path = self.base / "logs" / "prometheus-targets.json"

    def master(self) -> MasterService:
        master = MasterService(self.reactor, self.config, SECRET, spawn=False)
        master.startService()
        self.addCleanup(master.stopService)
        return master

    def targets(self) -> dict[str, list[str]]:
        return {g["labels"]["server_id"]: g["targets"] for g in json.loads(self.path.read_text())}

    def test_written_at_start(self) -> None:
        """Once listening, the file lists every declared server with a metricsPort."""
        self.master()
        self.assertEqual(
            self.targets(), {"chat-1": ["127.0.0.1:9200"], "chat-2": ["127.0.0.1:9201"]}
        )

    def test_rewritten_when_a_server_registers(self) -> None:
        """A server registering with another metrics port (or a new one) is written."""
        master = self.master()
        moved = info("chat-1", "chat", host="127.0.0.1", port=4250, metricsPort=9900)
        avatar = ServerAvatar(master, "chat-1", FakeMind())
        avatar.perspective_register(pack_plain({"server": moved.to_dict(), "pid": 7}))
        self.assertEqual(self.targets()["chat-1"], ["127.0.0.1:9900"])

    def test_configurable_path(self) -> None:
        """master.json's metricsTargets names the file, relative to the game folder."""
        master_path = self.base / "config" / "master.json"
        master = json.loads(master_path.read_text())
        master["development"]["metricsTargets"] = "prom/targets.json"
        master_path.write_text(json.dumps(master))
        self.config = GameConfig(self.base)
        self.master()
        self.assertTrue((self.base / "prom" / "targets.json").exists())
        self.assertFalse(self.path.exists())

    def test_not_written_without_metrics_ports(self) -> None:
        """A game without any metricsPort gets no target file."""
        servers_path = self.base / "config" / "servers.json"
        servers = json.loads(servers_path.read_text())
        for entry in servers["development"]["chat"]:
            del entry["metricsPort"]
        servers_path.write_text(json.dumps(servers))
        self.config = GameConfig(self.base)
        self.master()
        self.assertFalse(self.path.exists())
