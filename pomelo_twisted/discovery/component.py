"""The component running a server's discovery (without a master).

:class:`DiscoveryComponent` starts its :class:`IServiceDiscovery` once the application has
started (its RPC port listens, so peers that see it can connect), and stops it (a clean
deregistration) when the server stops. The discovery applies membership events to the
application itself (:func:`~pomelo_twisted.discovery.membership.apply_event`).

``after_start`` without a master: there is no one to say "the whole cluster is up", so a
server runs its ``after_start`` hooks once it is registered and has its first view of the
cluster (the discovery's ``first_view``). Servers that join later are announced by ``up``
events; hooks must not assume every server of servers.json is already there.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ..interfaces import IComponent
from .interfaces import DiscoveredServer, IServiceDiscovery

__all__ = ["DiscoveryComponent", "discovery_of"]

log = Logger()


@implementer(IComponent)
class DiscoveryComponent:
    """Starts ``discovery`` after ``app`` has started; after_start at the first view."""

    name = "discovery"

    def __init__(self, app: DiscoveredServer, discovery: IServiceDiscovery) -> None:
        self.app = app
        self.discovery = discovery

    def start(self) -> None:
        """Register once the application has started (not now: it must listen first)."""
        self.app.started.addCallback(self._start)

    def _start(self, result: object) -> object:
        d = self.discovery.start()
        d.addCallback(self._first_view)
        return result

    def _first_view(self, _: object) -> Deferred[None]:
        count = len(self.discovery.servers())
        log.info(
            "{server}: in the cluster ({count} servers); running after_start",
            server=self.app.server_id,
            count=count,
        )
        return self.app.after_start()

    def after_start(self) -> None:
        """Nothing: the first view triggers ``after_start`` (see the module docstring)."""

    def stop(self, force: bool) -> Deferred[None]:
        """Deregister."""
        return self.discovery.stop()


def discovery_of(components: Mapping[str, object]) -> IServiceDiscovery | None:
    """The discovery among an application's ``components`` (``app.components``): the
    ``discovery`` of the :class:`DiscoveryComponent` (etcd) or of the master's monitor;
    None for a server without one (standalone). Other components subscribe through it::

        discovery = discovery_of(app.components)
        if discovery is not None:
            discovery.subscribe(on_membership)
    """
    for component in components.values():
        discovery = getattr(component, "discovery", None)
        if IServiceDiscovery.providedBy(discovery):
            return discovery
    return None
