"""One OpenTelemetry TracerProvider per server, and the service that flushes it at stop.

A :class:`TracingSetup` says how the servers of a process trace (their span
processors, sampler, service name); :meth:`TracingSetup.provider_for` gives each server
its own ``TracerProvider``, whose resource names it (``service.name`` = the game's,
``service.instance.id`` = the server id, ``pomelo.server_type``). The provider is passed
explicitly to the hooks: the global provider of ``opentelemetry.trace`` is never set.
:meth:`TracingSetup.from_environ` builds the setup the ``OTEL_*`` variables ask for
(:mod:`.settings`): an OTLP/HTTP exporter behind a ``BatchSpanProcessor``.

Span and trace ids come from an injected :class:`random.Random`
(:class:`RandomSourceIds`), like every other randomness of the framework.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import INVALID_SPAN_ID, INVALID_TRACE_ID
from twisted.application.service import Service
from twisted.logger import Logger

from ..gameconfig import ServerInfo
from .settings import DEFAULT_SERVICE_NAME, TracingSettings

__all__ = [
    "RandomSourceIds",
    "TracingService",
    "TracingSetup",
    "sampler_of",
    "span_exporters",
    "span_processors",
]

log = Logger()


class RandomSourceIds(IdGenerator):
    """Trace and span ids drawn from ``rng`` (never the invalid all-zero ids)."""

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def generate_span_id(self) -> int:
        span_id = self._bits(64)
        while span_id == INVALID_SPAN_ID:
            span_id = self._bits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = self._bits(128)
        while trace_id == INVALID_TRACE_ID:
            trace_id = self._bits(128)
        return trace_id


def sampler_of(settings: TracingSettings) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` (and its ratio) names."""
    name = settings.sampler
    root: Sampler
    if name.endswith("always_on"):
        root = ALWAYS_ON
    elif name.endswith("always_off"):
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(settings.sampler_ratio)
    return ParentBased(root) if name.startswith("parentbased_") else root


def span_exporters(settings: TracingSettings) -> list[SpanExporter]:
    """A new exporter per exporter name of ``settings`` (one server's)."""
    exporters: list[SpanExporter] = []
    for name in settings.exporters:
        if name == "otlp":
            exporters.append(
                OTLPSpanExporter(
                    endpoint=settings.endpoint,
                    headers=dict(settings.headers),
                    timeout=settings.timeout,
                    compression=Compression(settings.compression),
                )
            )
        else:
            exporters.append(ConsoleSpanExporter(service_name=settings.service_name))
    return exporters


def span_processors(settings: TracingSettings) -> list[SpanProcessor]:
    """One server's exporters, each behind a ``BatchSpanProcessor`` (``OTEL_BSP_*``)."""
    return [
        BatchSpanProcessor(
            exporter,
            max_queue_size=settings.max_queue_size,
            schedule_delay_millis=settings.schedule_delay_millis,
            max_export_batch_size=min(settings.max_export_batch_size, settings.max_queue_size),
            export_timeout_millis=settings.export_timeout_millis,
        )
        for exporter in span_exporters(settings)
    ]


class TracingSetup:
    """How the servers of a process trace: ``processors()`` gives one server's span
    processors (called once per server), ``sampler`` decides which requests are traced
    (a request's servers follow its frontend's decision by default), ``rng`` draws the
    ids."""

    def __init__(
        self,
        processors: Callable[[], Sequence[SpanProcessor]],
        *,
        rng: random.Random,
        sampler: Sampler | None = None,
        service_name: str = DEFAULT_SERVICE_NAME,
        resource_attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.processors = processors
        self.sampler = sampler if sampler is not None else ParentBased(ALWAYS_ON)
        self.service_name = service_name
        self.resource_attributes = dict(resource_attributes or {})
        self.ids = RandomSourceIds(rng)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], rng: random.Random) -> TracingSetup | None:
        """The setup the ``OTEL_*`` variables of ``environ`` ask for, or None when they
        leave tracing off; ``ConfigError`` naming a variable that cannot be used."""
        settings = TracingSettings.from_environ(environ)
        if settings is None:
            return None
        return cls(
            lambda: span_processors(settings),
            rng=rng,
            sampler=sampler_of(settings),
            service_name=settings.service_name,
            resource_attributes=settings.resource_attributes,
        )

    def provider_for(self, server: ServerInfo) -> TracerProvider:
        """A new TracerProvider for ``server`` with its processors."""
        resource = Resource(
            {
                **self.resource_attributes,
                "service.name": self.service_name,
                "service.instance.id": server.id,
                "pomelo.server_type": server.type,
            }
        )
        provider = TracerProvider(
            sampler=self.sampler,
            resource=resource,
            shutdown_on_exit=False,  # TracingService shuts it down with the server
            id_generator=self.ids,
        )
        for processor in self.processors():
            provider.add_span_processor(processor)
        return provider


class TracingService(Service):
    """Shuts the server's TracerProvider down (exporting the spans still queued) when
    the server stops; loaded first, so it stops after every other component."""

    name = "tracing"

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    def stopService(self) -> None:
        """Flush and shut down the provider (the exporter's timeout bounds it)."""
        super().stopService()
        try:
            self.provider.shutdown()
        except Exception:
            log.failure("the tracer provider failed to shut down")
