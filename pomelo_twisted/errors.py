"""Exceptions raised by pomelo_twisted.

Every exception the framework raises on purpose derives from :class:`PomeloError`, so a
caller can tell framework failures from bugs.  Errors of the sans-I/O wire codec live in
:mod:`pomelo_twisted.protocol.errors`, which must not depend on this module's layer.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "INTERNAL_ERROR",
    "BadRequest",
    "CircuitOpen",
    "ConfigError",
    "HandlerError",
    "HandshakeRejected",
    "PeerUnavailable",
    "PomeloError",
    "RequestTimeout",
    "RouteNotFound",
    "RpcError",
    "RpcTimeout",
    "SerializationError",
    "ServerUnavailable",
    "error_response",
]

INTERNAL_ERROR = "internal server error"
"""The ``msg`` of a request whose handler failed unexpectedly (details go to the log)."""


def error_response(code: int, msg: str) -> dict[str, Any]:
    """The response body of a failed request: ``{"code": code, "msg": msg}``."""
    return {"code": code, "msg": msg}


class PomeloError(Exception):
    """Base class of every error raised on purpose by pomelo_twisted."""


class SerializationError(PomeloError):
    """A message body could not be encoded to, or decoded from, bytes by a serializer."""


class HandlerError(PomeloError):
    """Raised by a handler to answer ``{"code": code, "msg": msg}`` to the client."""

    def __init__(self, code: int, msg: str = "") -> None:
        super().__init__(f"{code}: {msg}" if msg else str(code))
        self.code = code
        self.msg = msg

    def response(self) -> dict[str, Any]:
        """The response body this error answers with."""
        return error_response(self.code, self.msg)


class BadRequest(HandlerError):
    """The request's body cannot be decoded (answered 400)."""

    def __init__(self, msg: str) -> None:
        super().__init__(400, msg)


class RouteNotFound(HandlerError):
    """No handler answers the route: unknown route or route code, handler, method or
    server type (answered 404)."""

    def __init__(self, msg: str) -> None:
        super().__init__(404, msg)


class ServerUnavailable(HandlerError):
    """No server of the route's type can take the request now (answered 503)."""

    def __init__(self, msg: str = "server unavailable") -> None:
        super().__init__(503, msg)


class RequestTimeout(HandlerError):
    """A request passed its deadline (answered 504, ``"request timed out"``)."""

    def __init__(self, msg: str = "request timed out") -> None:
        super().__init__(504, msg)


class HandshakeRejected(PomeloError):
    """Raised by a handshake hook to refuse a client (handshake reply code 501 by default)."""

    def __init__(self, reason: str, code: int = 501) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ConfigError(PomeloError):
    """A game's configuration is missing or wrong; the message names the file and key."""


class RpcError(PomeloError):
    """A server-to-server call failed; the message names the server, remote and method."""


class RpcTimeout(RpcError):
    """A server-to-server call passed its deadline."""


class PeerUnavailable(RpcError):
    """A server-to-server call was not sent: the server is unknown, not connected, down
    (it does not answer its pings) or its circuit breaker is open. Nothing ran there, so
    an idempotent remote may be retried on another server; a client is answered 503."""


class CircuitOpen(PeerUnavailable):
    """A server-to-server call failed fast: the circuit breaker of that server is open
    after consecutive failures (until its cool-down ends and a probe call succeeds)."""
