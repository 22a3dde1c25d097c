"""Metrics for one server: :func:`install_metrics`, called as the server is built.

A server gets metrics when its servers.json entry names a ``metricsPort`` (served there
at ``/metrics``) or its ``metrics`` setting is true (collected for its stats only);
otherwise nothing is installed and nothing costs anything. Installed, it has its own
``CollectorRegistry`` (never the process-global one) holding the process and platform
collectors, the request hooks (a frontend), the RPC hooks (over a network transport:
the in-process transport of standalone mode is shared by every server, so its calls
cannot be told apart by server), the framework's counters read at scrape time, the
reactor lag and the GC pauses; every series is labelled ``server_id`` and
``server_type``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from ..acceptors import AgentPool
from ..errors import ConfigError
from ..gameconfig import ServerInfo, listen_endpoint
from ..instruments import Instruments
from ..interfaces import INetworkRpcTransport, IRpcTransport, IServerReactor
from ..session.service import SessionService
from .collectors import FrameworkCollector
from .hooks import HandledMetrics, RequestMetrics, RpcMetrics, Timer
from .listener import MetricsComponent
from .runtime import GcPauses, ReactorLag
from .settings import MetricsSettings
from .summary import metrics_summary

__all__ = ["MeteredServer", "install_metrics"]


class MeteredServer(Protocol):
    """What metrics need of their server (an Application)."""

    @property
    def server(self) -> ServerInfo:
        """This server."""

    @property
    def reactor(self) -> IServerReactor:
        """Its reactor (and clock)."""

    @property
    def settings(self) -> Mapping[str, Any]:
        """Its settings."""

    @property
    def instruments(self) -> Instruments:
        """Its hooks."""

    @property
    def rpc_transport(self) -> IRpcTransport:
        """Its RPC transport."""

    @property
    def session_service(self) -> SessionService | None:
        """Its client sessions (a frontend)."""

    @property
    def components(self) -> Mapping[str, object]:
        """Its components by name."""

    def load(self, component: Any, name: str | None = None) -> Any:
        """Add a component (a service child, started in load order)."""


def _agents(components: Mapping[str, object]) -> AgentPool | None:
    agents = getattr(components.get("connector"), "agents", None)
    return agents if isinstance(agents, AgentPool) else None


def install_metrics(
    app: MeteredServer,
    *,
    timer: Timer = time.perf_counter,
    gc_callbacks: list[Callable[[str, dict[str, Any]], object]] | None = None,
) -> MetricsComponent | None:
    """Give ``app`` its metrics (see the module docstring) and load them as its
    component ``metrics``; None when it wants none. ``timer`` times requests, calls
    and GC pauses; ``gc_callbacks`` stands for ``gc.callbacks``. Call it before the
    server starts (a frontend's request hooks are installed as its connector starts);
    ``ConfigError`` names a bad setting."""
    info = app.server
    try:
        settings = MetricsSettings.from_settings(app.settings)
    except ValueError as exc:
        raise ConfigError(f"server {info.id}: {exc}") from None
    port = info.metrics_port
    if port is None and not settings.enabled:
        return None
    server = (info.id, info.type)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    requests: RequestMetrics
    if info.frontend:  # client requests; a backend's: the forwarded ones its handlers serve
        requests = RequestMetrics(registry, server, timer, settings.buckets, settings.max_labels)
        app.instruments.add_request_hooks(requests)
    else:
        handled = HandledMetrics(registry, server, timer, settings.buckets, settings.max_labels)
        app.instruments.add_handler_hooks(handled)
        requests = handled
    rpc = RpcMetrics(registry, server, timer, settings.buckets, settings.max_labels)
    if INetworkRpcTransport.providedBy(app.rpc_transport):
        app.instruments.add_rpc_hooks(rpc)
    registry.register(
        FrameworkCollector(
            server,
            partial(_agents, app.components),
            app.session_service,
            app.rpc_transport,
        )
    )
    component = MetricsComponent(
        app.reactor,
        info.id,
        registry,
        None if port is None else listen_endpoint(port, info.host, backlog=None),
        lag=ReactorLag(app.reactor, settings.lag_interval, registry, server),
        gc_pauses=GcPauses(registry, server, timer, gc_callbacks),
        summary=partial(metrics_summary, requests, rpc),
    )
    app.load(component)
    return component
