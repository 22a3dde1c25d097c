"""The tracing hooks on their own: spans, parents, contexts, outcomes (on a Clock)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import StatusCode
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.interfaces import IHandlerHooks, IRequestHooks, IRpcHooks
from pomelo_twisted.responses import EncodedBody
from pomelo_twisted.serializers import JsonSerializer
from pomelo_twisted.tracing import HandlerTracing, RequestTracing, RpcTracing
from pomelo_twisted.tracing.hooks import answer_code, carried, parent_of
from pomelo_twisted.tracing.provider import RandomSourceIds

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def agent(sid: int = 4, uid: str | None = "ann") -> Any:
    """What the request hook reads of an agent: sid, session.uid, serializer."""
    return SimpleNamespace(sid=sid, session=SimpleNamespace(uid=uid), serializer=JsonSerializer())


class HooksCase(SynchronousTestCase):
    """Hooks of server ``s-1`` on a Clock, exporting to memory."""

    sampler: Sampler = ParentBased(ALWAYS_ON)

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(12.5)
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(
            sampler=self.sampler,
            shutdown_on_exit=False,
            id_generator=RandomSourceIds(random.Random(5)),
        )
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.addCleanup(provider.shutdown)
        tracer = provider.get_tracer("test")
        self.requests = RequestTracing(tracer, self.clock, "s-1")
        self.rpc = RpcTracing(tracer, self.clock, "s-1")
        self.handlers = HandlerTracing(tracer, self.clock, "s-1")

    def spans(self) -> Any:
        return self.exporter.get_finished_spans()


class HookTests(HooksCase):
    """Spans of the three hooks, sampled."""

    def test_provide_their_interfaces(self) -> None:
        """Each hook class provides its interface."""
        verifyObject(IRequestHooks, self.requests)
        verifyObject(IRpcHooks, self.rpc)
        verifyObject(IHandlerHooks, self.handlers)

    def test_request_span_times_come_from_the_clock(self) -> None:
        """Start and end are the clock's times; the context keeps its other items."""
        context, end = self.requests.request_started(agent(), "a.b.c", False, {"rid": "r-1"})
        assert context is not None and end is not None
        self.assertEqual(context["rid"], "r-1")
        self.assertIn("traceparent", context)
        self.clock.advance(0.25)
        end({"code": 200})
        (span,) = self.spans()
        self.assertEqual((span.start_time, span.end_time), (12_500_000_000, 12_750_000_000))
        self.assertEqual(span.kind.name, "SERVER")
        self.assertEqual(span.attributes["pomelo.session_id"], 4)

    def test_a_failure_and_an_encoded_error_mark_the_request(self) -> None:
        """A Failure, or an encoded body with code >= 400: status ERROR."""
        _, end = self.requests.request_started(agent(), "a.b.c", False, None)
        assert end is not None
        end(Failure(ValueError("broken")))
        _, end = self.requests.request_started(agent(), "a.b.d", False, None)
        assert end is not None
        end(EncodedBody(b'{"code":504,"msg":"request timed out"}'))
        failed, timed_out = self.spans()
        self.assertEqual(failed.status.status_code, StatusCode.ERROR)
        self.assertIn("broken", failed.status.description)
        self.assertEqual(timed_out.status.status_code, StatusCode.ERROR)
        self.assertEqual(timed_out.attributes["pomelo.code"], 504)

    def test_rpc_spans_follow_the_carried_parent(self) -> None:
        """call then serve: CLIENT child of the carried span, SERVER child of the CLIENT."""
        called, call_end = self.rpc.call_started("s-2", "svc", "m", {"traceparent": TRACEPARENT})
        served, serve_end = self.rpc.serve_started("s-1", "svc", "m", called)
        assert call_end is not None and serve_end is not None and served is not None
        serve_end(None)
        call_end(Failure(RuntimeError("peer down")))
        server, client = self.spans()
        self.assertEqual(client.parent.span_id, 0xB7AD6B7169203331)
        self.assertEqual(server.parent.span_id, client.context.span_id)
        self.assertEqual(client.context.trace_id, 0x0AF7651916CD43DD8448EB211C80319C)
        self.assertEqual((client.name, client.kind.name), ("svc/m", "CLIENT"))
        self.assertEqual(client.attributes["pomelo.peer"], "s-2")
        self.assertEqual(client.status.status_code, StatusCode.ERROR)
        self.assertEqual(server.status.status_code, StatusCode.UNSET)
        self.assertNotEqual(served["traceparent"], called["traceparent"])  # type: ignore[index]

    def test_no_rpc_or_handler_span_outside_a_trace(self) -> None:
        """A call or handler without a traceparent: no span, no end, context as it was."""
        self.assertEqual(self.rpc.call_started("s-2", "svc", "m", None), (None, None))
        self.assertEqual(
            self.rpc.serve_started("s-2", "svc", "m", {"rid": "x"}), ({"rid": "x"}, None)
        )
        self.assertEqual(self.handlers.handler_started("a.b.c", None, False, None), (None, None))
        self.assertEqual(self.spans(), ())

    def test_handler_span_names_the_route_and_session(self) -> None:
        """An INTERNAL span named by the route, with session id and uid; an error body
        marks it."""
        session = SimpleNamespace(id=9, uid="ann")
        _, end = self.handlers.handler_started(
            "c.h.m", session, False, {"traceparent": TRACEPARENT}
        )
        assert end is not None
        end({"code": 500, "msg": "no"})
        (span,) = self.spans()
        self.assertEqual((span.name, span.kind.name), ("c.h.m", "INTERNAL"))
        self.assertEqual(span.attributes["pomelo.session_id"], 9)
        self.assertEqual(span.attributes["pomelo.uid"], "ann")
        self.assertEqual(span.status.status_code, StatusCode.ERROR)

    def test_a_malformed_traceparent_starts_a_new_trace(self) -> None:
        """A traceparent that is not W3C: the request span is a root."""
        _, end = self.requests.request_started(agent(), "a.b.c", False, {"traceparent": "junk"})
        assert end is not None
        end(None)
        (span,) = self.spans()
        self.assertIsNone(span.parent)


class UnsampledHookTests(HooksCase):
    """A sampler that records nothing."""

    sampler = ALWAYS_OFF

    def test_unsampled_request_carries_its_context_and_has_no_end(self) -> None:
        """The context names an unsampled span (flags 00); no end, nothing exported; the
        RPCs after it record nothing either."""
        context, end = self.requests.request_started(agent(), "a.b.c", False, None)
        self.assertIsNone(end)
        assert context is not None
        self.assertTrue(context["traceparent"].endswith("-00"))
        self.assertEqual(self.rpc.call_started("s-2", "svc", "m", context)[1], None)
        self.assertEqual(self.spans(), ())


class HelperTests(SynchronousTestCase):
    """The small functions of the hooks."""

    def test_answer_code(self) -> None:
        """A dict's int code; an encoded body decoded with the agent's serializer; else None."""
        self.assertEqual(answer_code({"code": 404}), 404)
        self.assertIsNone(answer_code({"code": "x"}))
        self.assertIsNone(answer_code([1]))
        self.assertIsNone(answer_code(EncodedBody(b'{"code":1}')))  # no agent to decode
        self.assertEqual(answer_code(EncodedBody(b'{"code":1}'), agent()), 1)
        self.assertIsNone(answer_code(EncodedBody(b"\xff"), agent()))

    def test_parent_of_without_a_traceparent_is_empty(self) -> None:
        """No context, or no traceparent in it: an empty OpenTelemetry context."""
        self.assertEqual(dict(parent_of(None)), {})
        self.assertEqual(dict(parent_of({"rid": "x"})), {})

    def test_carried_copies(self) -> None:
        """carried() never changes the context it is given."""
        original = {"rid": "x", "tracestate": "a=b"}
        provider = TracerProvider(
            shutdown_on_exit=False, id_generator=RandomSourceIds(random.Random(1))
        )
        real = provider.get_tracer("t").start_span("s")
        out = carried(original, real)
        self.assertEqual(original, {"rid": "x", "tracestate": "a=b"})
        self.assertEqual(out["rid"], "x")
        self.assertIn("traceparent", out)
        self.assertNotIn("tracestate", out)  # the new span has none
