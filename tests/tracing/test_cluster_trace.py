"""A real cluster exports one trace per request to an OTLP/HTTP collector (loopback).

The collector is a twisted.web resource in the test's reactor decoding the SDK's
protobuf requests; the cluster is the example game started by ``pomelo-twisted start``
with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at it.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from pomelo_twisted.client import PomeloClient, connect

from ..e2e.cluster import ENTRY, ClusterCase
from ..e2e.test_cluster import JOIN, SEND, room_on

LOUD = re.compile(r"#(warn|error|critical)\]")
"""A log line above info."""

WAIT = 20.0
"""Seconds the spans of a request may take to reach the collector (bounded wait)."""


class Collector(Resource):
    """Collects the spans POSTed to /v1/traces as (service.instance.id, span)."""

    isLeaf = True  # noqa: N815 (twisted.web names it)

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[str, Any]] = []
        self.paths: set[bytes] = set()

    def render_POST(self, request: Request) -> bytes:  # noqa: N802 (twisted.web names it)
        self.paths.add(request.path)
        assert request.content is not None
        export = ExportTraceServiceRequest.FromString(request.content.read())
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append((attributes["service.instance.id"], span))
        request.setHeader(b"content-type", b"application/x-protobuf")
        return ExportTraceServiceResponse().SerializeToString()


class ClusterTraceTests(ClusterCase):
    """The example cluster, traced to a collector on loopback."""

    @inlineCallbacks
    def test_a_forwarded_request_is_one_trace_across_processes(self) -> Any:
        """send on connector-server-1, served by a chat server that pushes back: one trace
        holding spans of both processes, each parented as in memory; then a stop that
        flushes and logs nothing above info."""
        collector = Collector()
        port = reactor.listenTCP(0, Site(collector), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        endpoint = f"http://127.0.0.1:{port.getHost().port}"
        cluster = yield self.started(
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_SERVICE_NAME": "example",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            }
        )
        rid = room_on("chat-server-2")
        client: PomeloClient = yield connect(
            reactor, f"tcp:127.0.0.1:{cluster.client_port('connector-server-1')}", timeout=5.0
        )
        self.addCleanup(client.close)
        yield client.request(ENTRY, {"uid": "ann", "rid": rid})
        yield client.request(JOIN, {"rid": rid})
        reply = yield client.request(SEND, {"rid": rid, "content": "traced"})
        self.assertEqual(reply, {"code": 200})

        def send_trace() -> list[tuple[str, Any]]:
            roots = [s for _, s in collector.spans if s.name == SEND and not s.parent_span_id]
            if not roots:
                return []
            trace = roots[0].trace_id
            return [(who, s) for who, s in collector.spans if s.trace_id == trace]

        deadline = reactor.seconds() + WAIT
        while len(send_trace()) < 6 and reactor.seconds() < deadline:
            yield deferLater(reactor, 0.1, lambda: None)
        trace = send_trace()
        self.assertEqual(collector.paths, {b"/v1/traces"})
        seen = sorted((who, s.name, s.kind) for who, s in trace)
        server, client_kind, internal = 2, 3, 1  # the protobuf's SpanKind values
        self.assertEqual(
            seen,
            sorted(
                [
                    ("connector-server-1", SEND, server),
                    ("connector-server-1", "pomelo.sys/forward", client_kind),
                    ("chat-server-2", "pomelo.sys/forward", server),
                    ("chat-server-2", SEND, internal),
                    ("chat-server-2", "pomelo.sys/push", client_kind),
                    ("connector-server-1", "pomelo.sys/push", server),
                ]
            ),
        )
        by_id = {s.span_id: s for _, s in trace}
        for _, span in trace:
            if span.parent_span_id:
                self.assertIn(span.parent_span_id, by_id, span.name)
        self.assertEqual(cluster.tracebacks(), {})
        _out, err, code = yield cluster.cli("stop")
        self.assertEqual(code, 0, err)
        self.assertEqual((yield cluster.wait_exit()), 0)
        for name in ["master", *cluster.server_ids()]:  # a traced stop is a quiet stop
            loud = [line for line in cluster.log(name).splitlines() if LOUD.search(line)]
            self.assertEqual(loud, [], name)
