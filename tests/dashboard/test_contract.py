"""IClusterView's contract, written once and run against the real master and the fake
the dashboard's tests use (so the fake answers as the master does)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.cluster.interfaces import CommandRefused, IClusterView
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.interfaces import IServerReactor

from .fakes import FakeCluster


class ClusterViewContract:
    """What the dashboard relies on; ``view()`` builds the implementation under test."""

    def view(self) -> Any:
        raise NotImplementedError

    def test_provides(self: Any) -> None:
        """It provides IClusterView."""
        verifyObject(IClusterView, self.view())

    def test_rows_master_first(self: Any) -> None:
        """rows() lists the master first, then each server with the keys the page shows."""
        rows = self.view().rows()
        self.assertEqual(rows[0]["type"], "master")
        for row in rows:
            for key in ("id", "type", "state", "pid", "host", "uptime", "restarts"):
                self.assertIn(key, row)
        self.assertGreater(len(rows), 1)

    def test_stats_of_unknown_is_none(self: Any) -> None:
        """stats() of a server that is not registered is None (never a failure)."""
        d = self.view().stats("no-such-server", 1.0)
        self.assertIsNone(self.successResultOf(d))

    def test_actions_on_unknown_are_refused(self: Any) -> None:
        """restart, stop and a command on an unknown id are refused with CommandRefused
        (raised or as the failure), whose text names the id."""
        view = self.view()
        for call in (
            lambda: view.restart("no-such-server"),
            lambda: view.stop(["no-such-server"]),
            lambda: view.server_command("no-such-server", "drain", {}, 1.0),
        ):
            failure = self.failureResultOf(maybeDeferred(call), CommandRefused)
            self.assertIn("no-such-server", failure.getErrorMessage())


class FakeClusterContractTests(ClusterViewContract, SynchronousTestCase):
    """The fake master of the dashboard's tests."""

    def view(self) -> FakeCluster:
        return FakeCluster()


class MasterContractTests(ClusterViewContract, SynchronousTestCase):
    """The real master (not started: its control API alone)."""

    def view(self) -> MasterService:
        base = Path(tempfile.mkdtemp(prefix="pomelo-dashboard-"))
        self.addCleanup(shutil.rmtree, base, ignore_errors=True)
        (base / "config").mkdir()
        servers = {"chat": [{"id": "chat-1", "host": "127.0.0.1", "port": 4150}]}
        master = {"id": "master-server-1", "host": "127.0.0.1", "port": 4005}
        (base / "config" / "servers.json").write_text(json.dumps({"development": servers}))
        (base / "config" / "master.json").write_text(json.dumps({"development": master}))
        config = GameConfig(base)
        return MasterService(cast(IServerReactor, Clock()), config, b"cluster-secret", spawn=False)
