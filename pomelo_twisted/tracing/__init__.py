"""OpenTelemetry tracing of requests across servers, off unless the ``OTEL_*``
environment configures it (:mod:`.settings`); see docs/operations.md, "Tracing"."""

from .hooks import HandlerTracing, RequestTracing, RpcTracing
from .provider import TracingService, TracingSetup
from .settings import TracingSettings
from .wiring import ServerTracing, install_tracing

__all__ = [
    "HandlerTracing",
    "RequestTracing",
    "RpcTracing",
    "ServerTracing",
    "TracingService",
    "TracingSettings",
    "TracingSetup",
    "install_tracing",
]
