"""Adding the live dashboard to the master's process, when master.json asks for one."""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import IService, MultiService

from ..cluster.master import MasterService
from ..gameconfig import GameConfig
from ..interfaces import IServerReactor
from .site import DashboardService

__all__ = ["with_dashboard"]


def with_dashboard(
    service: IService,
    config: GameConfig,
    reactor: IServerReactor,
    *,
    on_listen_failure: Callable[[], object],
) -> IService:
    """``service`` (what :func:`~pomelo_twisted.cluster.build.build_master` built), with the
    dashboard when it is a master and master.json has a ``dashboardPort``: then a
    MultiService of the master, then the dashboard (which stops first). A host supervisor
    (etcd discovery, ``--host``) or a master without a ``dashboardPort`` is returned as is.
    """
    settings = config.master_settings()
    endpoint = settings.dashboard_endpoint
    if endpoint is None or not isinstance(service, MasterService):
        return service
    process = MultiService()
    process.setName("master-process")
    service.setServiceParent(process)
    dashboard = DashboardService(
        reactor,
        service,
        endpoint,
        admin_secret=service.admin_secret,
        interval=settings.dashboard_interval,
        on_listen_failure=on_listen_failure,
    )
    dashboard.setServiceParent(process)
    return process
