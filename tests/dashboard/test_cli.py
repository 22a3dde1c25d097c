"""``pomelo-twisted start`` names the dashboard's address (``make run`` prints it)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin.cli import dashboard_address

from .test_service import game


class DashboardAddressTests(SynchronousTestCase):
    """dashboard_address: the URL to open, when this start runs a master with a dashboard."""

    def test_on_the_master_host(self) -> None:
        """dashboardPort on the master's host (the default), or on dashboardHost."""
        self.assertEqual(
            dashboard_address(game(self, dashboardPort=4006)), "http://127.0.0.1:4006/"
        )
        config = game(self, dashboardPort=4006, dashboardHost="::1")
        self.assertEqual(dashboard_address(config), "http://[::1]:4006/")
        self.assertEqual(dashboard_address(config, host="127.0.0.1"), "http://[::1]:4006/")

    def test_none(self) -> None:
        """No dashboardPort, or a start of another host's supervisor: no address."""
        self.assertIsNone(dashboard_address(game(self)))
        self.assertIsNone(dashboard_address(game(self, dashboardPort=4006), host="10.0.0.2"))
