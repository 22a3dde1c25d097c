"""What turns tracing on, what keeps it off, and a bad OTEL_* value named clearly."""

from __future__ import annotations

import random

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    TraceIdRatioBased,
)
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.tracing import TracingSettings, TracingSetup
from pomelo_twisted.tracing.provider import sampler_of, span_exporters, span_processors

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


class OnOffTests(SynchronousTestCase):
    """Off unless configured."""

    def test_off_by_default(self) -> None:
        """An environment without OTEL_* variables: off (None)."""
        self.assertIsNone(TracingSettings.from_environ({}))
        self.assertIsNone(TracingSetup.from_environ({"PATH": "/bin"}, random.Random(1)))

    def test_an_endpoint_turns_it_on(self) -> None:
        """Either OTLP endpoint variable alone: on, exporting with OTLP."""
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            settings = TracingSettings.from_environ({name: "http://c:4318"})
            assert settings is not None
            self.assertEqual(settings.exporters, ("otlp",))

    def test_an_exporter_turns_it_on(self) -> None:
        """OTEL_TRACES_EXPORTER=otlp (default endpoint) or console: on."""
        settings = TracingSettings.from_environ({"OTEL_TRACES_EXPORTER": "otlp"})
        assert settings is not None
        self.assertEqual(settings.endpoint, "http://localhost:4318/v1/traces")
        console = TracingSettings.from_environ({"OTEL_TRACES_EXPORTER": "console, otlp"})
        assert console is not None
        self.assertEqual(console.exporters, ("console", "otlp"))

    def test_none_or_disabled_keeps_it_off(self) -> None:
        """OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true: off, endpoint or not."""
        self.assertIsNone(
            TracingSettings.from_environ({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"})
        )
        self.assertIsNone(TracingSettings.from_environ({**ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}))
        on = TracingSettings.from_environ({**ENDPOINT, "OTEL_SDK_DISABLED": "false"})
        self.assertIsNotNone(on)


class ValueTests(SynchronousTestCase):
    """Each variable read as the specification says."""

    def test_endpoints(self) -> None:
        """The base endpoint gets /v1/traces; the traces endpoint is used as it is."""
        base = TracingSettings.from_environ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:1/x/"})
        assert base is not None
        self.assertEqual(base.endpoint, "https://c:1/x/v1/traces")
        exact = TracingSettings.from_environ(
            {**ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:2/traces"}
        )
        assert exact is not None
        self.assertEqual(exact.endpoint, "http://t:2/traces")

    def test_names_headers_timeouts_and_batching(self) -> None:
        """Service name, resource attributes, headers, timeout (ms), BSP limits."""
        settings = TracingSettings.from_environ(
            {
                **ENDPOINT,
                "OTEL_SERVICE_NAME": "chatgame",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=a%20b",
                "OTEL_EXPORTER_OTLP_HEADERS": "x-key=1,x-other=a%3Db",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-key=2",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
                "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                "OTEL_BSP_MAX_QUEUE_SIZE": "100",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            }
        )
        assert settings is not None
        self.assertEqual(settings.service_name, "chatgame")
        self.assertEqual(
            dict(settings.resource_attributes),
            {"deployment.environment": "prod", "team": "a b"},
        )
        self.assertEqual(dict(settings.headers), {"x-key": "2"})  # the traces-specific one
        self.assertEqual(settings.timeout, 2.5)
        self.assertEqual(settings.compression, "gzip")
        self.assertEqual((settings.max_queue_size, settings.schedule_delay_millis), (100, 200))

    def test_service_name_from_resource_attributes(self) -> None:
        """Without OTEL_SERVICE_NAME, service.name of the resource attributes; else pomelo."""
        settings = TracingSettings.from_environ(
            {**ENDPOINT, "OTEL_RESOURCE_ATTRIBUTES": "service.name=lobby"}
        )
        assert settings is not None
        self.assertEqual(settings.service_name, "lobby")
        plain = TracingSettings.from_environ(ENDPOINT)
        assert plain is not None
        self.assertEqual(plain.service_name, "pomelo")

    def test_samplers(self) -> None:
        """Each OTEL_TRACES_SAMPLER value gives its sampler; parent-based by default."""

        def sampler(**env: str) -> object:
            settings = TracingSettings.from_environ({**ENDPOINT, **env})
            assert settings is not None
            return sampler_of(settings)

        default = sampler()
        self.assertIsInstance(default, ParentBased)
        self.assertIs(sampler(OTEL_TRACES_SAMPLER="always_on"), ALWAYS_ON)
        self.assertIs(sampler(OTEL_TRACES_SAMPLER="always_off"), ALWAYS_OFF)
        ratio = sampler(OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0.25")
        assert isinstance(ratio, TraceIdRatioBased)
        self.assertEqual(ratio.rate, 0.25)
        based = sampler(
            OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.5"
        )
        self.assertIsInstance(based, ParentBased)
        self.assertIn("0.5", based.get_description())


class BadValueTests(SynchronousTestCase):
    """A value that cannot be used is a ConfigError naming the variable."""

    def test_each_bad_value_is_named(self) -> None:
        """Unknown exporter, sampler, protocol, compression; bad ratio, URL, number, pair."""
        for env, named in [
            ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
            ({**ENDPOINT, "OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
            (
                {**ENDPOINT, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            ({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
            ({**ENDPOINT, "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "COMPRESSION"),
            ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            ({**ENDPOINT, "OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
            ({**ENDPOINT, "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
            ({**ENDPOINT, "OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ]:
            with self.assertRaises(ConfigError, msg=named) as raised:
                TracingSettings.from_environ(env)
            self.assertIn(named, str(raised.exception))


class SetupTests(SynchronousTestCase):
    """What the setup builds from the environment."""

    def test_each_exporter_behind_a_batch_processor(self) -> None:
        """An exporter per name, in order; each behind its own BatchSpanProcessor."""
        settings = TracingSettings.from_environ(
            {**ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp,console"}
        )
        assert settings is not None
        exporters = span_exporters(settings)
        self.assertEqual([type(e) for e in exporters], [OTLPSpanExporter, ConsoleSpanExporter])
        for exporter in exporters:
            exporter.shutdown()
        processors = span_processors(settings)
        for processor in processors:
            self.addCleanup(processor.shutdown)
        self.assertEqual([type(p) for p in processors], [BatchSpanProcessor] * 2)

    def test_provider_resource_names_the_server(self) -> None:
        """service.name, service.instance.id and pomelo.server_type, plus the extra ones."""
        setup = TracingSetup.from_environ(
            {
                "OTEL_TRACES_EXPORTER": "console",
                "OTEL_SERVICE_NAME": "game",
                "OTEL_RESOURCE_ATTRIBUTES": "region=eu",
            },
            random.Random(2),
        )
        assert setup is not None
        provider = setup.provider_for(ServerInfo("chat-3", "chat"))
        self.addCleanup(provider.shutdown)
        self.assertEqual(
            dict(provider.resource.attributes),
            {
                "region": "eu",
                "service.name": "game",
                "service.instance.id": "chat-3",
                "pomelo.server_type": "chat",
            },
        )
