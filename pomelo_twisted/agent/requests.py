"""The requests and notifies of one connection: handed to the connection handler with
their raw bodies, every request answered exactly once.

A request is refused by the :class:`.Admission` rules (429, 503) or handed over (in
arrival order, one after the other, when the connection keeps order: :mod:`.ordering`); its
result is a body (serialized here), an ``EncodedBody`` (written as it is), or a Deferred
or coroutine of either, and a failure is answered through ``failure_response``. Answers
come from the connection's ``send_response`` (which refuses them once the connection
is closed: they are counted as dropped) and leave through the agent's send queue.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from ..errors import INTERNAL_ERROR, SerializationError, error_response
from ..interfaces import IAgent, IConnectionHandler, ISerializer
from ..protocol import LocalProtocolError, Notify, Request, ServerConnection, UnknownRouteCode
from ..responses import CODE_INTERNAL, CODE_NOT_FOUND, EncodedBody, failure_response
from ..results import is_later, settle
from .admission import Admission
from .metrics import ConnectionMetrics
from .negotiation import ResponseEncoder
from .ordering import OrderMaker, RequestOrder
from .sendqueue import SendQueue

__all__ = ["KICK_RATE_LIMITED", "RequestRunner"]

KICK_RATE_LIMITED = "over the request rate limit persistently"

log = Logger()


class RequestRunner:
    """Runs the requests and notifies of ``agent``'s connection through its handler."""

    __slots__ = (
        "admission",
        "agent",
        "connection",
        "handler",
        "metrics",
        "order",
        "orders",
        "response_encoder",
        "send_queue",
        "serializer",
    )

    def __init__(
        self,
        agent: IAgent,
        handler: IConnectionHandler,
        connection: ServerConnection,
        serializer: ISerializer,
        send_queue: SendQueue,
        admission: Admission,
        metrics: ConnectionMetrics,
    ) -> None:
        self.agent = agent
        self.handler = handler
        self.connection = connection
        self.serializer = serializer
        self.send_queue = send_queue
        self.admission = admission
        self.metrics = metrics
        self.response_encoder: ResponseEncoder | None = None
        """Encodes every answer instead of the serializer when set (a client dialect)."""
        self.order: RequestOrder | None = None
        """The connection's per-user order, made by ``orders`` when a result first comes
        later (None until then: requests answered at once need none)."""
        self.orders: OrderMaker | None = None
        """Makes the order (None: ``ordered`` is off, requests are handed over as they come)."""

    def request(self, event: Request) -> None:
        """Answer ``event`` exactly once: refused, at once, or when its result comes."""
        self.metrics.requests += 1
        msg_id = event.id
        refusal = self.admission.refuse_request()
        if refusal is not None:
            self._respond(msg_id, refusal)
            if self.admission.persistent:
                self.agent.kick(KICK_RATE_LIMITED)
            return
        order = self.order
        if order is not None and order.busy and order.hold(event):
            self.admission.inflight += 1  # a queued request counts against max_inflight
            return
        self.run_request(event, False)

    def run_request(self, event: Request, queued: bool) -> None:
        """Hand ``event`` to the handler and answer it (``queued``: it waited in the order,
        counted in flight meanwhile)."""
        msg_id = event.id
        admission = self.admission
        if queued:
            admission.inflight -= 1
        try:
            result = self.handler.request(self.agent, event.route, event.body)
        except Exception:
            self._respond(msg_id, failure_response(Failure(), event.route))
            return
        if is_later(result):
            answer: Deferred[Any] = settle(result)
            admission.inflight += 1
            order = self._order()
            if order is not None and order.follows(event.route):
                answer.addBoth(admission.answered)
                order.wait(answer, msg_id, event.route)  # answers it, in order
                return
            answer.addCallbacks(
                self._respond_later,
                self._respond_failure,
                callbackArgs=(msg_id,),
                errbackArgs=(msg_id, event.route),
            )
            answer.addBoth(admission.answered)
        else:  # a plain body (the common case): answered at once, without a Deferred
            self._respond(msg_id, result)

    def _order(self) -> RequestOrder | None:
        """The connection's order, made now if this is its first result that comes later
        (None when ``ordered`` is off)."""
        order = self.order
        if order is None and self.orders is not None:
            order = self.order = self.orders.make(self)
        return order

    def answer(self, msg_id: int, body: object) -> None:
        """Answer request ``msg_id`` with ``body`` (the order's way to answer)."""
        self._respond(msg_id, body)

    def close(self) -> None:
        """The connection closed: what waits in the order is dropped."""
        if self.order is not None:
            self.order.close()

    def _respond_later(self, body: object, msg_id: int) -> None:
        self._respond(msg_id, body)

    def _respond_failure(self, failure: Failure, msg_id: int, route: str) -> None:
        self._respond(msg_id, failure_response(failure, route))

    def _respond(self, msg_id: int, body: object) -> None:
        serializer = self.serializer
        try:
            if self.response_encoder is not None:  # a client dialect (pitaya's flags)
                package = self.response_encoder(self.connection, msg_id, body)
            elif isinstance(body, EncodedBody):  # already in the connection's serializer
                package = self.connection.send_response(msg_id, body)
            else:
                package = self.connection.send_response(
                    msg_id, serializer.encode({} if body is None else body)
                )
        except LocalProtocolError:  # closing or closed: the answer has no one to go to
            self.metrics.responses_dropped += 1
            return
        except (SerializationError, ValueError) as exc:
            log.error(
                "response to request {id} of {agent} cannot be sent: {error}",
                id=msg_id,
                agent=self.agent,
                error=exc,
            )
            fallback = error_response(CODE_INTERNAL, INTERNAL_ERROR)
            if self.response_encoder is not None:
                package = self.response_encoder(self.connection, msg_id, fallback)
            else:
                package = self.connection.send_response(msg_id, serializer.encode(fallback))
        self.send_queue.write(package)

    def notify(self, event: Notify) -> None:
        """Hand ``event`` to the handler (within the rate limit); its result is dropped."""
        self.metrics.notifies += 1
        if not self.admission.admit_notify():
            if self.admission.persistent:
                self.agent.kick(KICK_RATE_LIMITED)
            return
        order = self.order
        if order is not None and order.busy and order.hold(event):
            return
        self.run_notify(event)

    def run_notify(self, event: Notify) -> None:
        """Hand ``event`` to the handler (it may hold the order until its result comes)."""
        try:
            result = self.handler.notify(self.agent, event.route, event.body)
        except Exception:
            log.failure(
                "notify handler for {route} failed ({agent})",
                route=event.route,
                agent=self.agent,
                level=LogLevel.error,
            )
            return
        if is_later(result):
            done = settle(result).addErrback(self._notify_failed, event.route)
            order = self._order()
            if order is not None and order.follows(event.route):
                order.wait(done, 0, event.route)

    def _notify_failed(self, failure: Failure, route: str) -> None:
        log.failure(
            "notify handler for {route} failed ({agent})",
            failure,
            route=route,
            agent=self.agent,
            level=LogLevel.error,
        )

    def unknown_code(self, event: UnknownRouteCode) -> None:
        """A request with an unknown route code is answered 404; a notify is dropped."""
        if event.id:
            self._respond(
                event.id, error_response(CODE_NOT_FOUND, f"unknown route code {event.code}")
            )
        else:
            self.metrics.dropped["notify with unknown route code"] += 1
