"""The public EtcdServer test helper: start, health, outages, skip without a binary."""

from __future__ import annotations

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from pomelo_twisted.testing import etcdserver
from pomelo_twisted.testing.etcdserver import NOT_INSTALLED, EtcdServer, class_etcd


class EtcdServerTests(SynchronousTestCase):
    """One real etcd through its life cycle."""

    def test_life_cycle(self) -> None:
        """It serves once started, not when paused or killed, again after resume/restart."""
        server = class_etcd(type(self))
        self.assertTrue(server.health())
        server.pause()
        self.assertFalse(server.health(timeout=0.2))
        server.resume()
        self.assertTrue(server.health())
        server.kill()
        self.assertFalse(server.running)
        self.assertFalse(server.health())
        server.restart()
        self.assertTrue(server.health())

    def test_fast_raft_timings(self) -> None:
        """The command line asks for fast elections (1 s leases) on loopback ports only."""
        command = class_etcd(type(self)).command()
        self.assertIn("--election-timeout=100", command)
        self.assertTrue(all("0.0.0.0" not in arg for arg in command))

    def test_skips_without_binary(self) -> None:
        """Without an etcd binary the helper raises SkipTest saying how to get one."""
        self.patch(etcdserver, "etcd_binary", lambda: None)
        with self.assertRaises(SkipTest) as caught:
            EtcdServer()
        self.assertEqual(str(caught.exception), NOT_INSTALLED)
        self.assertIn("make test installs etcd-server", NOT_INSTALLED)
