"""The tracing hooks: spans around requests, RPC hops and backend handlers.

One client request is one trace:

- the frontend's :class:`RequestTracing` starts a SERVER span named by the route
  (attributes ``pomelo.route``, ``pomelo.session_id``, ``pomelo.uid``,
  ``pomelo.server_id``; status ERROR with ``pomelo.code`` when the answer is an error);
- each RPC made within it gets a CLIENT span on the caller and a SERVER span on the
  callee (:class:`RpcTracing`, named ``service/method``, OpenTelemetry's ``rpc.*``
  attributes), pushes back to the frontend included;
- the backend's handler of a forwarded request gets an INTERNAL span named by the route
  (:class:`HandlerTracing`).

Each span's W3C trace context (``traceparent``, ``tracestate``) travels in the call
context (:mod:`pomelo_twisted.callcontext`) and each parent is taken explicitly from
it: OpenTelemetry's own current context is never used, so nothing depends on it
surviving across Deferreds. RPCs made outside a traced request (no ``traceparent``)
get no span. A request the sampler drops still carries its (unsampled) trace context,
so the servers after it drop it too, and no span of it is recorded or ended.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ..callcontext import CallContext
from ..interfaces import (
    CallEnd,
    IAgent,
    IHandlerHooks,
    IRequestHooks,
    IRpcHooks,
    RequestEnd,
)

__all__ = [
    "ERROR_CODE",
    "HandlerTracing",
    "RequestTracing",
    "RpcTracing",
    "answer_code",
    "carried",
    "parent_of",
]

ERROR_CODE = 400
"""An answer whose integer ``code`` is at least this is an error (the framework's
codes, :mod:`pomelo_twisted.responses`, and a game's HTTP-like ones)."""

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = "traceparent"
_TRACESTATE = "tracestate"
_MAX_NAMES = 4096
"""RPC span names kept formatted (service/method pairs; more are formatted each time)."""


def parent_of(context: CallContext | None) -> Context:
    """The OpenTelemetry context of the span named by ``context``'s ``traceparent``
    (an empty one, for a new trace, without it)."""
    if context is None or _TRACEPARENT not in context:
        return Context()
    return _PROPAGATOR.extract(context, Context())


def carried(context: CallContext | None, span: Span) -> CallContext:
    """A copy of ``context`` naming ``span`` as the parent of what runs within it."""
    out = dict(context) if context else {}
    out.pop(_TRACESTATE, None)
    _PROPAGATOR.inject(out, set_span_in_context(span, Context()))
    return out


def answer_code(body: object, agent: IAgent | None = None) -> int | None:
    """The integer ``code`` of a response body, None without one; an encoded body (a
    backend's answer) is decoded with ``agent``'s serializer first."""
    if isinstance(body, bytes):
        if agent is None:
            return None
        try:
            body = agent.serializer.decode(bytes(body))  # an EncodedBody: plain bytes
        except Exception:
            return None
    if isinstance(body, dict):
        code = body.get("code")
        if type(code) is int:
            return code
    return None


class _Spans:
    """What the three hooks share: the tracer, the clock, this server's id."""

    def __init__(self, tracer: Tracer, clock: IReactorTime, server_id: str) -> None:
        self._tracer = tracer
        self._clock = clock
        self.server_id = server_id

    def _now(self) -> int:
        return int(self._clock.seconds() * 1e9)

    def _start(
        self, name: str, kind: SpanKind, parent: Context, attributes: dict[str, Any]
    ) -> Span:
        return self._tracer.start_span(name, parent, kind, attributes, start_time=self._now())

    def _end_answered(self, span: Span, agent: IAgent | None, body: object) -> None:
        """End ``span`` of a request answered ``body`` (or failed with a Failure)."""
        if isinstance(body, Failure):
            span.set_status(Status(StatusCode.ERROR, body.getErrorMessage()))
        else:
            code = answer_code(body, agent)
            if code is not None:
                span.set_attribute("pomelo.code", code)
                if code >= ERROR_CODE:
                    span.set_status(Status(StatusCode.ERROR, f"answered code {code}"))
        span.end(self._now())


@implementer(IRequestHooks)
class RequestTracing(_Spans):
    """A frontend's SERVER span per client request or notify: the root of its trace
    (or a child of a ``traceparent`` already current)."""

    def request_started(
        self, agent: IAgent, route: str, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        attributes: dict[str, Any] = {
            "pomelo.route": route,
            "pomelo.server_id": self.server_id,
            "pomelo.session_id": agent.sid,
            "pomelo.notify": notify,
        }
        uid = getattr(agent.session, "uid", None)
        if uid is not None:
            attributes["pomelo.uid"] = str(uid)
        span = self._start(route, SpanKind.SERVER, parent_of(context), attributes)
        if not span.is_recording():  # not sampled: only its context goes on
            return carried(context, span), None
        return carried(context, span), partial(self._ended, span, agent, uid is None)

    def _ended(self, span: Span, agent: IAgent, no_uid: bool, body: object) -> None:
        if no_uid:  # bound by this request (an entry route)?
            uid = getattr(agent.session, "uid", None)
            if uid is not None:
                span.set_attribute("pomelo.uid", str(uid))
        self._end_answered(span, agent, body)


@implementer(IRpcHooks)
class RpcTracing(_Spans):
    """A CLIENT span per call made and a SERVER span per call served, within a trace."""

    def __init__(self, tracer: Tracer, clock: IReactorTime, server_id: str) -> None:
        super().__init__(tracer, clock, server_id)
        self._names: dict[tuple[str, str], str] = {}

    def _name(self, service: str, method: str) -> str:
        key = (service, method)
        name = self._names.get(key)
        if name is None:
            name = f"{service}/{method}"
            if len(self._names) < _MAX_NAMES:
                self._names[key] = name
        return name

    def _rpc(
        self,
        kind: SpanKind,
        peer: str,
        service: str,
        method: str,
        context: CallContext | None,
    ) -> tuple[CallContext | None, CallEnd | None]:
        if context is None or _TRACEPARENT not in context:
            return context, None  # not within a traced request
        attributes = {
            "rpc.system": "pomelo",
            "rpc.service": service,
            "rpc.method": method,
            "pomelo.server_id": self.server_id,
            "pomelo.peer": peer,
        }
        span = self._start(self._name(service, method), kind, parent_of(context), attributes)
        if not span.is_recording():
            return carried(context, span), None
        return carried(context, span), partial(self._ended, span)

    def _ended(self, span: Span, failure: Failure | None) -> None:
        if failure is not None:
            span.set_status(Status(StatusCode.ERROR, failure.getErrorMessage()))
        span.end(self._now())

    def call_started(
        self, server_id: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        return self._rpc(SpanKind.CLIENT, server_id, service, method, context)

    def serve_started(
        self, peer: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        return self._rpc(SpanKind.SERVER, peer, service, method, context)


@implementer(IHandlerHooks)
class HandlerTracing(_Spans):
    """A backend's INTERNAL span around the handler of a forwarded request."""

    def handler_started(
        self, route: str, session: object, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        if context is None or _TRACEPARENT not in context:
            return context, None
        attributes: dict[str, Any] = {
            "pomelo.route": route,
            "pomelo.server_id": self.server_id,
            "pomelo.notify": notify,
        }
        sid = getattr(session, "id", None)
        if sid is not None:
            attributes["pomelo.session_id"] = sid
        uid = getattr(session, "uid", None)
        if uid is not None:
            attributes["pomelo.uid"] = str(uid)
        span = self._start(route, SpanKind.INTERNAL, parent_of(context), attributes)
        if not span.is_recording():
            return carried(context, span), None
        return carried(context, span), partial(self._end_answered, span, None)
