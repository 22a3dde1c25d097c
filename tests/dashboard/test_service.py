"""DashboardService on a real loopback port, its place in the master's process
(with_dashboard) and master.json's dashboard keys."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

import treq
from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.dashboard import DashboardService
from pomelo_twisted.dashboard.build import with_dashboard
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig
from pomelo_twisted.interfaces import IServerReactor

from .fakes import FakeCluster
from .test_site import events_in

SERVERS = {"chat": [{"id": "chat-1", "host": "127.0.0.1", "port": 4150}]}


def game(test: SynchronousTestCase, **master: Any) -> GameConfig:
    """A game folder whose master.json has ``master``'s keys too; removed after ``test``."""
    base = Path(tempfile.mkdtemp(prefix="pomelo-dashboard-"))
    test.addCleanup(shutil.rmtree, base, ignore_errors=True)
    (base / "config").mkdir()
    entry = {"id": "master-server-1", "host": "127.0.0.1", "port": 4005, **master}
    entry.setdefault("secret", "development-only-cluster-secret")
    (base / "config" / "servers.json").write_text(json.dumps({"development": SERVERS}))
    (base / "config" / "master.json").write_text(json.dumps({"development": entry}))
    return GameConfig(base)


class ServiceTests(TestCase):
    """The dashboard served on 127.0.0.1 by the real reactor."""

    def started(self) -> DashboardService:
        service = DashboardService(
            cast(IServerReactor, reactor),
            FakeCluster(),
            "tcp:0:interface=127.0.0.1",
            admin_secret=b"admin-secret-123",
            interval=0.05,
        )
        with capturedLogs() as events:
            service.startService()
        self.addCleanup(service.stopService)
        self.assertIsNotNone(service.url)  # a TCP endpoint listens at once
        lines = [e for e in events if e.get("log_namespace", "").startswith("pomelo_twisted")]
        self.assertTrue(any("dashboard of the cluster at" in e["log_format"] for e in lines))
        self.assertTrue(all(e["log_level"] == LogLevel.info for e in lines))
        return service

    @inlineCallbacks
    def test_serves_the_page_and_the_snapshot(self) -> Any:
        """Over a real socket: the page, and /api/servers as JSON."""
        service = self.started()
        page = yield treq.get(service.url, persistent=False)
        self.assertEqual(page.code, 200)
        self.assertIn(b"pomelo_twisted cluster", (yield page.content()))
        response = yield treq.get(service.url + "api/servers", persistent=False)
        snapshot = yield response.json()
        self.assertEqual(snapshot["servers"][0]["id"], "master-server-1")

    @inlineCallbacks
    def test_stream_then_stop(self) -> Any:
        """A stream gets snapshots; stopping the service ends it and stops polling."""
        service = self.started()
        response = yield treq.get(service.url + "api/events", persistent=False, unbuffered=True)
        chunks: list[bytes] = []
        two: Deferred[None] = Deferred()

        def received(chunk: bytes) -> None:
            chunks.append(chunk)
            if len(events_in(chunks)) >= 2 and not two.called:
                two.callback(None)  # the first at once, the next an interval later

        body = treq.collect(response, received)
        yield two
        yield service.stopService()
        yield body
        self.assertFalse(service.events.polling)
        self.assertIsNone(service.port)

    def test_listen_failure(self) -> None:
        """A taken port: a critical line naming the endpoint, and on_listen_failure."""
        first = self.started()
        assert first.port is not None
        endpoint = f"tcp:{first.port.getHost().port}:interface=127.0.0.1"  # type: ignore[attr-defined]
        failures: list[None] = []
        second = DashboardService(
            cast(IServerReactor, reactor),
            FakeCluster(),
            endpoint,
            admin_secret=None,
            on_listen_failure=lambda: failures.append(None),
        )
        with capturedLogs() as events:
            second.startService()
        self.addCleanup(second.stopService)
        self.assertEqual(failures, [None])
        critical = [e for e in events if e["log_level"] == LogLevel.critical]
        self.assertEqual(len(critical), 1)
        self.assertEqual(critical[0]["endpoint"], endpoint)


class WithDashboardTests(SynchronousTestCase):
    """with_dashboard: the master alone, or the master then the dashboard."""

    def master(self, config: GameConfig) -> MasterService:
        return MasterService(
            cast(IServerReactor, Clock()), config, b"cluster-secret-1", spawn=False
        )

    def test_no_port_no_dashboard(self) -> None:
        """Without a dashboardPort the master is returned as it is."""
        config = game(self)
        master = self.master(config)
        self.assertIs(with_dashboard(master, config, Clock(), on_listen_failure=print), master)  # type: ignore[arg-type]

    def test_master_then_dashboard(self) -> None:
        """With one: a MultiService of the master then the dashboard, on dashboardHost
        (default the master's), polling every dashboardInterval, with the admin secret."""
        config = game(self, dashboardPort=4006, dashboardInterval=2.5)
        master = self.master(config)
        master.admin_secret = b"admin-secret-123"
        process = with_dashboard(master, config, Clock(), on_listen_failure=print)  # type: ignore[arg-type]
        assert isinstance(process, MultiService)
        master_child, dashboard = list(process)
        self.assertIs(master_child, master)
        assert isinstance(dashboard, DashboardService)
        self.assertEqual(dashboard.endpoint, "tcp:4006:interface=127.0.0.1")
        self.assertEqual(dashboard.events.interval, 2.5)
        self.assertEqual(dashboard.actions.admin_secret, b"admin-secret-123")
        self.assertIs(dashboard.snapshots.cluster, master)

    def test_ipv6_host(self) -> None:
        """dashboardHost may be an IPv6 address (quoted in the endpoint)."""
        settings = game(self, dashboardPort=4006, dashboardHost="::1").master_settings()
        self.assertEqual(settings.dashboard_endpoint, r"tcp:4006:interface=\:\:1")

    def test_bad_keys_named(self) -> None:
        """A bad dashboardPort, dashboardHost or dashboardInterval is a ConfigError naming
        master.json and the key."""
        for key, value in (
            ("dashboardPort", 70000),
            ("dashboardPort", "x"),
            ("dashboardHost", ""),
            ("dashboardInterval", 0),
        ):
            with self.assertRaises(ConfigError) as caught:
                game(self, **{key: value}).master_settings()
            self.assertIn(f"master.json (development): {key!r}", str(caught.exception))
