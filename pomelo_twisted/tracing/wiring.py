"""Tracing wired into one server: its provider, its hooks, the service that flushes it.

:func:`install_tracing` is called by :func:`~pomelo_twisted.app.build.build_application`
when the process has a :class:`~.provider.TracingSetup` (the ``OTEL_*`` environment
configures one, :meth:`~.provider.TracingSetup.from_environ`); without one nothing is
installed and tracing costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider
from twisted.internet.interfaces import IReactorTime

from ..gameconfig import ServerInfo
from ..instruments import Instruments
from .hooks import HandlerTracing, RequestTracing, RpcTracing
from .provider import TracingService, TracingSetup

__all__ = ["INSTRUMENTATION", "ServerTracing", "install_tracing"]

INSTRUMENTATION = "pomelo_twisted"
"""The instrumentation scope of every span."""


@dataclass(frozen=True)
class ServerTracing:
    """One server's tracing: what the builder still wires in."""

    provider: TracerProvider
    service: TracingService
    """Load it as the server's first component: it stops last, flushing every span."""
    handlers: HandlerTracing
    """The hooks of the server's ``ForwardReceiver`` (its ``hooks`` attribute)."""


def install_tracing(
    setup: TracingSetup, server: ServerInfo, clock: IReactorTime, instruments: Instruments
) -> ServerTracing:
    """Trace ``server`` (before it starts): a TracerProvider of its own, its request
    hooks (a frontend) and RPC hooks added to ``instruments``; the service and handler
    hooks for the builder to wire in."""
    provider = setup.provider_for(server)
    tracer = provider.get_tracer(INSTRUMENTATION)
    if server.frontend:
        instruments.add_request_hooks(RequestTracing(tracer, clock, server.id))
    instruments.add_rpc_hooks(RpcTracing(tracer, clock, server.id))
    return ServerTracing(
        provider, TracingService(provider), HandlerTracing(tracer, clock, server.id)
    )
