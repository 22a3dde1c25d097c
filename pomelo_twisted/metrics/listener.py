"""The metrics of one server: a component of its Application, and ``/metrics``.

:class:`MetricsComponent` (loaded as ``metrics``: a service child of the Application,
started in load order) starts the reactor-lag and GC measures and, when the server's
entry names a ``metricsPort``, serves ``GET /metrics`` there (twisted.web, bound to the
entry's host, IPv6 included) in Prometheus' text format (OpenMetrics when the scraper
asks for it). The page is rendered on the reactor's thread: the collectors read the
framework's counters where they change. A port it cannot listen on fails the server's
start with one line naming the server and the endpoint.

(``prometheus_client.twisted.MetricsResource`` is not used: it takes the global reactor
and renders in a thread.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, pages
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from ..errors import ConfigError
from ..interfaces import IComponent, IServerReactor
from .runtime import GcPauses, ReactorLag

__all__ = ["MetricsComponent", "MetricsPage", "MetricsPortError", "metrics_site"]

log = Logger()


class MetricsPortError(ConfigError):
    """The metrics port cannot be listened on (taken, or a bad address)."""


class MetricsPage(Resource):
    """``/metrics``: the registry in the text format the scraper accepts."""

    isLeaf = True  # noqa: N815 (twisted.web's name)

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        """The registry, collected now."""
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", content_type.encode("ascii"))
        return bytes(encoder(self.registry))


class _QuietSite(Site):
    """A Site that logs no line per request (a scrape every few seconds)."""

    noisy = False

    def log(self, request: http.Request) -> None:
        """Nothing: scrapes are not worth a log line each."""


class _Root(Resource):
    """``/``: only its ``metrics`` child exists; anything else is 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:  # noqa: N802 (Twisted's)
        return pages.notFound()

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        """404 as well: the metrics are at /metrics."""
        request.setResponseCode(404)
        return b"see /metrics\n"


def metrics_site(registry: CollectorRegistry) -> Site:
    """A site serving ``registry`` at ``/metrics`` (anything else: 404)."""
    root = _Root()
    root.putChild(b"metrics", MetricsPage(registry))
    return _QuietSite(root)


@implementer(IComponent)
class MetricsComponent:
    """One server's metrics: measures while started, ``/metrics`` on ``endpoint``
    (an endpoint string; None: no listener)."""

    name = "metrics"

    def __init__(
        self,
        reactor: IServerReactor,
        server_id: str,
        registry: CollectorRegistry,
        endpoint: str | None,
        *,
        lag: ReactorLag,
        gc_pauses: GcPauses,
        summary: Callable[[], dict[str, Any]],
    ) -> None:
        self.reactor = reactor
        self.server_id = server_id
        self.registry = registry
        self.endpoint = endpoint
        self.lag = lag
        self.gc_pauses = gc_pauses
        self._summary = summary
        self.port: IListeningPort | None = None

    def summary(self) -> dict[str, Any]:
        """``requests``, ``routes`` and ``rpc`` for the server's stats
        (:mod:`pomelo_twisted.metrics.summary`)."""
        return self._summary()

    def start(self) -> Deferred[None]:
        """Start measuring; listen when there is an endpoint. Fires once ``/metrics`` is
        served (at once without a port), or fails with a :class:`MetricsPortError`."""
        self.lag.start()
        self.gc_pauses.start()
        if self.endpoint is None:
            return succeed(None)
        listening = serverFromString(self.reactor, self.endpoint).listen(
            metrics_site(self.registry)
        )
        return listening.addCallbacks(self._listening, self._failed)

    def after_start(self) -> None:
        """Nothing to do once the cluster is up."""

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        address = port.getHost()
        if isinstance(address, IPv4Address | IPv6Address):
            log.info(
                "{server}: metrics at http://{host}:{port}/metrics",
                server=self.server_id,
                host=f"[{address.host}]" if ":" in address.host else address.host,
                port=address.port,
            )

    def _failed(self, failure: Failure) -> Failure:
        return Failure(
            MetricsPortError(
                f"{self.server_id}: cannot serve metrics on {self.endpoint}: "
                f"{failure.getErrorMessage()}"
            )
        )

    def stop(self, force: bool) -> Deferred[None]:
        """Stop measuring and listening."""
        self.lag.stop()
        self.gc_pauses.stop()
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        stopped = port.stopListening()
        return stopped if stopped is not None else succeed(None)
