"""The master's live dashboard (master.json's ``dashboardPort``): a page listing the
cluster's servers, updated live over Server-Sent Events, with restart, stop and drain
behind the admin secret. See :mod:`pomelo_twisted.dashboard.site`.
"""

from __future__ import annotations

from .site import DashboardService, dashboard_url

__all__ = ["DashboardService", "dashboard_url"]
