"""Events: what a connection reports from received bytes, and what it is told to send.

Bodies are raw bytes; serializers live above the protocol layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .dictionary import RouteDictionary
from .errors import RemoteProtocolError

__all__ = [
    "BadHandshake",
    "ClientHandshake",
    "Event",
    "HandshakeAck",
    "HandshakeResponse",
    "Heartbeat",
    "Ignored",
    "Kick",
    "Notify",
    "ProtocolViolation",
    "Push",
    "Request",
    "Response",
    "UnknownRouteCode",
]


@dataclass(frozen=True, slots=True)
class ClientHandshake:
    """Client → server handshake: ``{"sys": {...}, "user": {...}}``.

    ``sys`` keeps every field the client sent (type, version, rsa, ...);
    ``dict_version`` is the dictionary version the client already holds.
    """

    sys: dict[str, Any] = field(default_factory=dict)
    user: Any = None
    dict_version: str | None = None


@dataclass(frozen=True, slots=True)
class BadHandshake:
    """A client handshake that is not a JSON object with ``sys``; answer code 500."""

    reason: str


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """Server → client handshake reply.

    On the server, ``dictionary`` is the server's dictionary (sent unless the
    client already holds its version). On the client, ``dictionary`` is what
    arrived (``None`` when the server did not send one); ``route_to_code`` and
    ``code_to_route`` are also sent, as pomelo 2.x did, when
    ``legacy_route_maps`` is set.
    """

    code: int = 200
    heartbeat: float | None = None
    dictionary: RouteDictionary | None = None
    dict_version: str | None = None
    use_dict: bool = False
    serializer: str | None = None
    user: Any = None
    message: str | None = None
    legacy_route_maps: bool = True
    compress_pushes: bool = True
    """With ``use_dict``: whether pushes travel with compressed routes too (a client that
    cannot read a compressed push, e.g. pypomelo, still sends codes)."""
    extra_sys: Mapping[str, Any] | None = None
    """More ``sys`` fields of a 200 reply, decided by the handshake negotiators (the
    protos, a resume token, ...); written after the standard ones."""


@dataclass(frozen=True, slots=True)
class HandshakeAck:
    """Client → server acknowledgement of a 200 handshake response."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A heartbeat package, in either direction."""


@dataclass(frozen=True, slots=True)
class Kick:
    """Server → client kick: the server is closing the session for ``reason``."""

    reason: str = "kick"


@dataclass(frozen=True, slots=True)
class Request:
    """A request: answered by exactly one response with the same ``id``."""

    id: int
    route: str
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Notify:
    """A notify: a request without id that is never answered."""

    route: str
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Response:
    """A response to request ``id``; ``route`` is the requested route (client side)."""

    id: int
    body: bytes = b""
    route: str = ""


@dataclass(frozen=True, slots=True)
class Push:
    """A server-initiated message on ``route`` (e.g. ``onChat``)."""

    route: str
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class UnknownRouteCode:
    """A request (``id`` > 0) or notify (``id`` == 0) whose compressed route has no entry."""

    id: int
    code: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed package that the current state ignores (counted, not fatal)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke the protocol; the connection is now closed. Always the last event."""

    error: RemoteProtocolError

    @property
    def reason(self) -> str:
        """The loggable reason."""
        return self.error.reason


Event = (
    ClientHandshake
    | BadHandshake
    | HandshakeResponse
    | HandshakeAck
    | Heartbeat
    | Kick
    | Request
    | Notify
    | Response
    | Push
    | UnknownRouteCode
    | Ignored
    | ProtocolViolation
)
