"""What a client is answered when a request does not go as planned.

One function, :func:`failure_response`, turns every failure of a request into the body
the client gets, wherever the failure happened (the agent, the dispatcher, a filter, a
handler, a forwarded call to a backend). The codes are documented here and in the
README; no server id, address or exception text of ours reaches a client: details go
to the log.

=====  =====================================================================
code   meaning
=====  =====================================================================
400    the request body cannot be decoded (``BadRequest``)
404    no such route: unknown route or route code, handler, method or server
       type (``RouteNotFound``)
429    the connection's request rate limit is exceeded
500    an internal failure (``"internal server error"``; the traceback is
       logged), or the request was cancelled
503    the server is busy (too many requests in flight on the connection), or
       no server of the route's type is available, or the one the request was
       forwarded to is down or refused the call (``ServerUnavailable``), or a
       server-to-server call could not be sent (``PeerUnavailable``: the server
       is down or its circuit breaker is open); the server id and the RPC error
       go to the log
504    the request timed out: a handler's timeout or a forwarded call's
       deadline (``RequestTimeout``, ``RpcTimeout``)
other  a game's own ``HandlerError(code, msg)``, as raised
=====  =====================================================================
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from .errors import (
    INTERNAL_ERROR,
    HandlerError,
    PeerUnavailable,
    RpcError,
    RpcTimeout,
    error_response,
)

__all__ = [
    "CODE_BAD_REQUEST",
    "CODE_BUSY",
    "CODE_INTERNAL",
    "CODE_NOT_FOUND",
    "CODE_RATE_LIMITED",
    "CODE_TIMEOUT",
    "TIMED_OUT",
    "EncodedBody",
    "failure_response",
]

log = Logger()

CODE_BAD_REQUEST = 400
CODE_NOT_FOUND = 404
CODE_RATE_LIMITED = 429
CODE_INTERNAL = 500
CODE_BUSY = 503
CODE_TIMEOUT = 504

TIMED_OUT = "request timed out"
"""The ``msg`` of a request that passed its deadline, wherever it was."""


class EncodedBody(bytes):
    """A response body already serialized in the connection's serializer (the answer to
    a forwarded request, which the frontend passes on without decoding it): the agent
    writes these bytes as they are."""

    __slots__ = ()


def failure_response(failure: Failure, route: str = "?") -> dict[str, Any]:
    """The body that answers a request of ``route`` that failed with ``failure``.

    A ``HandlerError`` (the game's own, or the framework's ``BadRequest``,
    ``RouteNotFound``, ``RequestTimeout``, ``ServerUnavailable``) answers with its code
    and message; a forwarded call's timeout answers 504; a call that could not be sent
    (``PeerUnavailable``, ``CircuitOpen``) 503; a cancelled request 500
    ``"request cancelled"``; any other failure 500 ``"internal server error"``, its
    details logged (an RPC failure as a warning, anything else with its traceback).
    """
    exc = failure.value
    if isinstance(exc, HandlerError):
        return exc.response()
    if isinstance(exc, RpcTimeout):
        log.info("request {route} timed out: {error}", route=route, error=str(exc))
        return error_response(CODE_TIMEOUT, TIMED_OUT)
    if isinstance(exc, PeerUnavailable):
        log.warn("request {route} failed: {error}", route=route, error=str(exc))
        return error_response(CODE_BUSY, "server unavailable")
    if isinstance(exc, RpcError):
        log.warn("request {route} failed: {error}", route=route, error=str(exc))
        return error_response(CODE_INTERNAL, INTERNAL_ERROR)
    if isinstance(exc, CancelledError):  # the caller gave up (e.g. the client left)
        log.debug("request {route} cancelled", route=route)
        return error_response(CODE_INTERNAL, "request cancelled")
    log.failure("request {route} failed", failure, route=route, level=LogLevel.error)
    return error_response(CODE_INTERNAL, INTERNAL_ERROR)
