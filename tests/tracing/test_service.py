"""The tracing service flushes at stop; the entry point reads the environment it is given."""

from __future__ import annotations

import random
from pathlib import Path

from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.application import Application
from pomelo_twisted.app.build import StandaloneService
from pomelo_twisted.app.tap import Options, makeService
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.tracing import RpcTracing, TracingService, TracingSetup

EXAMPLE = str(Path(__file__).resolve().parents[2] / "example_game")
CONSOLE = {"OTEL_TRACES_EXPORTER": "console"}


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class TracingServiceTests(SynchronousTestCase):
    """Stopping the server exports what is still queued."""

    def test_stop_flushes_queued_spans(self) -> None:
        """A span queued in a batch processor (long delay) is exported at stop, once."""
        exporter = InMemorySpanExporter()
        setup = TracingSetup(
            lambda: [BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000)],
            rng=random.Random(3),
        )
        provider = setup.provider_for(ServerInfo("chat-1", "chat"))
        service = TracingService(provider)
        service.startService()
        provider.get_tracer("t").start_span("queued").end()
        self.assertEqual(exporter.get_finished_spans(), ())
        service.stopService()
        self.assertEqual([s.name for s in exporter.get_finished_spans()], ["queued"])
        self.assertFalse(service.running)


class EntryPointTests(SynchronousTestCase):
    """makeService traces when the environment it is given says so."""

    def test_cluster_server_traced_by_its_environment(self) -> None:
        """OTEL_TRACES_EXPORTER=console: the tracing component first, hooks on the PB
        transport."""
        service = makeService(
            parse("--app", EXAMPLE, "--type", "chat", "--id", "chat-server-1"),
            MemoryReactorClock(),
            environ=CONSOLE,
        )
        assert isinstance(service, Application)
        self.addCleanup(service.components["tracing"].provider.shutdown)  # type: ignore[union-attr]
        self.assertEqual(
            list(service.components),
            ["tracing", "rpc_server", "sessions", "cron", "metrics", "monitor", "drain"],
        )
        transport = service.rpc_transport
        assert isinstance(transport, PbRpcTransport)
        chained = getattr(transport.hooks, "hooks", [transport.hooks])  # metrics' hooks too
        self.assertTrue(any(isinstance(hook, RpcTracing) for hook in chained))

    def test_no_environment_no_tracing(self) -> None:
        """An empty environment: no tracing component, no hooks."""
        service = makeService(
            parse("--app", EXAMPLE, "--env", "production", "--type", "all"),
            MemoryReactorClock(),
            environ={},
        )
        assert isinstance(service, StandaloneService)
        for app in service.apps:
            self.assertNotIn("tracing", app.components)
            self.assertIsNone(app.instruments.rpc)

    def test_a_bad_variable_is_a_usage_error_naming_it(self) -> None:
        """OTEL_TRACES_SAMPLER=sometimes: a usage error naming the variable."""
        with self.assertRaises(usage.UsageError) as raised:
            makeService(
                parse("--app", EXAMPLE, "--type", "chat", "--id", "chat-server-1"),
                MemoryReactorClock(),
                environ={**CONSOLE, "OTEL_TRACES_SAMPLER": "sometimes"},
            )
        self.assertIn("OTEL_TRACES_SAMPLER", str(raised.exception))
