"""Server and client connection state machines (sans-I/O).

``receive_data(bytes) -> list[Event]`` and ``send(event) -> bytes``. States
go ``INITIAL → WAITING_ACK → WORKING → CLOSED``. What each state does with
each received package type is one table per side (``SERVER_RECEIVE``,
``CLIENT_RECEIVE``); anything not in the table is a protocol error that
names the package and the state. A remote violation is reported as a final
:class:`ProtocolViolation` event (the events decoded before it stay valid)
and the connection is then ``CLOSED``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from .dictionary import RouteDictionary
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import (
    BadHandshake,
    ClientHandshake,
    Event,
    HandshakeAck,
    HandshakeResponse,
    Heartbeat,
    Ignored,
    Kick,
    Notify,
    ProtocolViolation,
    Push,
    Request,
    Response,
    UnknownRouteCode,
)
from .handshake import (
    CODE_OK,
    encode_client_handshake,
    encode_handshake_response,
    encode_kick,
    parse_client_handshake,
    parse_handshake_response,
    parse_kick,
)
from .message import (
    MAX_MESSAGE_ID,
    MessageType,
    decode_message,
    encode_message,
    encode_varint,
)
from .packet import (
    DEFAULT_MAX_PACKET_SIZE,
    MAX_BODY_LENGTH,
    Package,
    PackageDecoder,
    PackageType,
    encode_package,
)

__all__ = [
    "CLIENT_RECEIVE",
    "SERVER_RECEIVE",
    "ClientConnection",
    "ConnectionState",
    "ServerConnection",
    "encode_push",
    "encode_response",
]

HEARTBEAT_PACKAGE = encode_package(PackageType.HEARTBEAT)
HANDSHAKE_ACK_PACKAGE = encode_package(PackageType.HANDSHAKE_ACK)


class ConnectionState(Enum):
    """Where a connection is in its life."""

    INITIAL = "initial"
    WAITING_ACK = "waiting-ack"
    WORKING = "working"
    CLOSED = "closed"

    # Members are singletons: identity hashing is correct, and much cheaper than
    # Enum's Python-level hash of the name on every (state, type) table lookup.
    __hash__ = object.__hash__


S = ConnectionState
P = PackageType
# An action takes the connection and a package and returns the events it yields.
Action = Callable[[Any, Package], list[Event]]


def _ignore(reason: str) -> Action:
    event = Ignored(reason)
    return lambda _conn, _package: [event]


def _violation(reason: str) -> Action:
    def fail(_conn: Any, _package: Package) -> list[Event]:
        raise RemoteProtocolError(reason)

    return fail


def encode_response(msg_id: int, body: bytes) -> bytes:
    """One data package holding the response to request ``msg_id``.

    Built in one concatenation (the hot path); equal to
    ``encode_package(DATA, encode_message(RESPONSE, msg_id, "", body))``.
    """
    msg_id_bytes = encode_varint(msg_id)
    length = 1 + len(msg_id_bytes) + len(body)
    if length > MAX_BODY_LENGTH:
        raise ValueError(
            f"package body of {length} bytes exceeds the protocol maximum of {MAX_BODY_LENGTH}"
        )
    header = bytes((PackageType.DATA, length >> 16, (length >> 8) & 0xFF, length & 0xFF, 0x04))
    return header + msg_id_bytes + body


def encode_push(route: str, body: bytes, dictionary: RouteDictionary | None = None) -> bytes:
    """One data package holding a push, its route compressed when ``dictionary`` has it.

    The bytes do not depend on the connection, so a broadcast encodes once.
    """
    code = dictionary.code_of(route) if dictionary is not None else 0
    return encode_package(
        PackageType.DATA, encode_message(MessageType.PUSH, 0, route, body, route_code=code)
    )


class _Connection:
    __slots__ = ("_decoder", "packages_received", "state")

    _table: dict[tuple[ConnectionState, PackageType], Action]

    def __init__(self, max_packet_size: int) -> None:
        self.state = ConnectionState.INITIAL
        self.packages_received = 0
        self._decoder = PackageDecoder(max_packet_size)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet forming a whole package."""
        return self._decoder.buffered

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events they complete."""
        if self.state is ConnectionState.CLOSED:
            return []
        events: list[Event] = []
        try:
            packages = self._decoder.feed(data)
            while packages:
                for package in packages:
                    self.packages_received += 1
                    action = self._table.get((self.state, package.type))
                    if action is None:
                        raise RemoteProtocolError(
                            f"unexpected {package.type.name.lower()} package in state "
                            f"{self.state.value}"
                        )
                    events.extend(action(self, package))
                    if self._closed():
                        return events
                # A bad header right behind these packages stays buffered: raise it now.
                packages = self._decoder.feed(b"") if self._decoder.blocked else []
        except RemoteProtocolError as exc:
            self.state = ConnectionState.CLOSED
            events.append(ProtocolViolation(exc))
        return events

    def _closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    def close(self) -> None:
        """Mark the connection closed (timeouts, transport gone, local decision)."""
        self.state = ConnectionState.CLOSED

    def _require(self, event: object, *states: ConnectionState) -> None:
        if self.state not in states:
            raise LocalProtocolError(
                f"cannot send {type(event).__name__} in state {self.state.value}"
            )


class ServerConnection(_Connection):
    """The server side of one client connection."""

    __slots__ = ("_client_dict_version", "_handshake_pending", "dictionary")

    def __init__(
        self,
        dictionary: RouteDictionary | None = None,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> None:
        super().__init__(max_packet_size)
        self.dictionary = dictionary
        self._handshake_pending = False
        self._client_dict_version: str | None = None

    # -- receiving ----------------------------------------------------------

    def _on_handshake(self, package: Package) -> list[Event]:
        if self._handshake_pending:
            return [Ignored("second handshake before the reply")]
        self._handshake_pending = True
        try:
            handshake = parse_client_handshake(package.body)
        except ProtocolError as exc:
            # The caller answers code 500, which closes the connection.
            return [BadHandshake(exc.reason)]
        self._client_dict_version = handshake.dict_version
        return [handshake]

    def _on_ack(self, _package: Package) -> list[Event]:
        self.state = ConnectionState.WORKING
        return [HandshakeAck()]

    def _on_heartbeat(self, _package: Package) -> list[Event]:
        return [Heartbeat()]

    def _on_data(self, package: Package) -> list[Event]:
        msg = decode_message(package.body)
        route = msg.route
        if msg.route_code:
            resolved = self.dictionary.route_of(msg.route_code) if self.dictionary else None
            if resolved is None:
                if msg.type is MessageType.REQUEST:
                    return [UnknownRouteCode(msg.id, msg.route_code)]
                return [UnknownRouteCode(0, msg.route_code)]
            route = resolved
        if msg.type is MessageType.REQUEST:
            if msg.id == 0:
                return [Notify(route, msg.body)]
            return [Request(msg.id, route, msg.body)]
        if msg.type is MessageType.NOTIFY:
            return [Notify(route, msg.body)]
        raise RemoteProtocolError(f"client sent a {msg.type.name.lower()} message")

    # -- sending ------------------------------------------------------------

    def send_response(self, msg_id: int, body: bytes) -> bytes:
        """``send(Response(msg_id, body))`` without building the event (the hot path)."""
        if self.state is not ConnectionState.WORKING:
            raise LocalProtocolError(f"cannot send Response in state {self.state.value}")
        return encode_response(msg_id, body)

    def send(self, event: Event) -> bytes:
        """Bytes for ``event``; raises :class:`LocalProtocolError` when the state forbids it."""
        if isinstance(event, Response):
            return self.send_response(event.id, event.body)
        if isinstance(event, Push):
            self._require(event, S.WORKING)
            return encode_push(event.route, event.body, self.dictionary)
        if isinstance(event, Heartbeat):
            self._require(event, S.WORKING)
            return HEARTBEAT_PACKAGE
        if isinstance(event, Kick):
            self._require(event, S.INITIAL, S.WAITING_ACK, S.WORKING)
            self.state = ConnectionState.CLOSED
            return encode_package(PackageType.KICK, encode_kick(event.reason))
        if isinstance(event, HandshakeResponse):
            self._require(event, S.INITIAL)
            if not self._handshake_pending:
                raise LocalProtocolError("handshake response sent before a handshake arrived")
            self._handshake_pending = False
            # Compress pushes only with a dictionary the client was told to use.
            self.dictionary = event.dictionary if event.use_dict else None
            body = encode_handshake_response(event, self._client_dict_version)
            self.state = S.WAITING_ACK if event.code == CODE_OK else S.CLOSED
            return encode_package(PackageType.HANDSHAKE, body)
        raise LocalProtocolError(f"a server does not send {type(event).__name__}")


SERVER_RECEIVE: dict[tuple[ConnectionState, PackageType], Action] = {
    (S.INITIAL, P.HANDSHAKE): ServerConnection._on_handshake,
    (S.INITIAL, P.HANDSHAKE_ACK): _ignore("handshake ack before the handshake reply"),
    (S.INITIAL, P.HEARTBEAT): _ignore("heartbeat before the handshake"),
    (S.INITIAL, P.DATA): _ignore("message before the handshake"),
    (S.WAITING_ACK, P.HANDSHAKE): _ignore("second handshake"),
    (S.WAITING_ACK, P.HANDSHAKE_ACK): ServerConnection._on_ack,
    (S.WAITING_ACK, P.HEARTBEAT): _ignore("heartbeat before the handshake ack"),
    (S.WAITING_ACK, P.DATA): _ignore("message before the handshake ack"),
    (S.WORKING, P.HANDSHAKE): _ignore("second handshake"),
    (S.WORKING, P.HANDSHAKE_ACK): _ignore("second handshake ack"),
    (S.WORKING, P.HEARTBEAT): ServerConnection._on_heartbeat,
    (S.WORKING, P.DATA): ServerConnection._on_data,
    (S.INITIAL, P.KICK): _violation("client sent a kick package"),
    (S.WAITING_ACK, P.KICK): _violation("client sent a kick package"),
    (S.WORKING, P.KICK): _violation("client sent a kick package"),
}
ServerConnection._table = SERVER_RECEIVE


class ClientConnection(_Connection):
    """The client side of one connection to a Pomelo server."""

    __slots__ = ("_handshake_sent", "_pending_routes", "dictionary", "use_dict")

    def __init__(self, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE) -> None:
        super().__init__(max_packet_size)
        self.dictionary: RouteDictionary | None = None
        self.use_dict = False
        self._handshake_sent = False
        self._pending_routes: dict[int, str] = {}

    @property
    def pending(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending_routes)

    # -- receiving ----------------------------------------------------------

    def _on_handshake_response(self, package: Package) -> list[Event]:
        if not self._handshake_sent:
            raise RemoteProtocolError("handshake response before the client handshake")
        response = parse_handshake_response(package.body)
        if response.code != CODE_OK:
            self.state = ConnectionState.CLOSED
            return [response]
        if response.dictionary is not None:
            self.dictionary = response.dictionary
        self.use_dict = response.use_dict
        self.state = ConnectionState.WAITING_ACK
        return [response]

    def _on_heartbeat(self, _package: Package) -> list[Event]:
        return [Heartbeat()]

    def _on_kick(self, package: Package) -> list[Event]:
        self.state = ConnectionState.CLOSED
        return [Kick(parse_kick(package.body))]

    def _on_data(self, package: Package) -> list[Event]:
        msg = decode_message(package.body)
        if msg.type is MessageType.RESPONSE:
            route = self._pending_routes.pop(msg.id, "")
            return [Response(msg.id, msg.body, route)]
        if msg.type is MessageType.PUSH:
            route = msg.route
            if msg.route_code:
                resolved = self.dictionary.route_of(msg.route_code) if self.dictionary else None
                if resolved is None:
                    raise RemoteProtocolError(f"push with unknown route code {msg.route_code}")
                route = resolved
            return [Push(route, msg.body)]
        raise RemoteProtocolError(f"server sent a {msg.type.name.lower()} message")

    # -- sending ------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """Bytes for ``event``; raises :class:`LocalProtocolError` when the state forbids it."""
        if isinstance(event, Request):
            self._require(event, S.WORKING)
            if not 0 < event.id <= MAX_MESSAGE_ID:
                raise LocalProtocolError(f"request id {event.id} is outside 1..{MAX_MESSAGE_ID}")
            if event.id in self._pending_routes:
                raise LocalProtocolError(f"request id {event.id} is already in flight")
            data = self._encode_routed(MessageType.REQUEST, event.id, event.route, event.body)
            self._pending_routes[event.id] = event.route
            return data
        if isinstance(event, Notify):
            self._require(event, S.WORKING)
            return self._encode_routed(MessageType.NOTIFY, 0, event.route, event.body)
        if isinstance(event, Heartbeat):
            self._require(event, S.WORKING)
            return HEARTBEAT_PACKAGE
        if isinstance(event, HandshakeAck):
            self._require(event, S.WAITING_ACK)
            self.state = ConnectionState.WORKING
            return HANDSHAKE_ACK_PACKAGE
        if isinstance(event, ClientHandshake):
            self._require(event, S.INITIAL)
            if self._handshake_sent:
                raise LocalProtocolError("handshake already sent")
            self._handshake_sent = True
            return encode_package(PackageType.HANDSHAKE, encode_client_handshake(event))
        raise LocalProtocolError(f"a client does not send {type(event).__name__}")

    def forget(self, msg_id: int) -> None:
        """Stop tracking request ``msg_id`` (it timed out); a late response has no route."""
        self._pending_routes.pop(msg_id, None)

    def _encode_routed(self, msg_type: MessageType, msg_id: int, route: str, body: bytes) -> bytes:
        code = self.dictionary.code_of(route) if self.use_dict and self.dictionary else 0
        return encode_package(
            PackageType.DATA, encode_message(msg_type, msg_id, route, body, route_code=code)
        )


CLIENT_RECEIVE: dict[tuple[ConnectionState, PackageType], Action] = {
    (S.INITIAL, P.HANDSHAKE): ClientConnection._on_handshake_response,
    (S.INITIAL, P.KICK): ClientConnection._on_kick,
    (S.WAITING_ACK, P.HANDSHAKE): _ignore("second handshake response"),
    (S.WAITING_ACK, P.HEARTBEAT): _ignore("heartbeat before the ack was sent"),
    (S.WAITING_ACK, P.DATA): _ignore("message before the ack was sent"),
    (S.WAITING_ACK, P.KICK): ClientConnection._on_kick,
    (S.WORKING, P.HANDSHAKE): _ignore("second handshake response"),
    (S.WORKING, P.HEARTBEAT): ClientConnection._on_heartbeat,
    (S.WORKING, P.DATA): ClientConnection._on_data,
    (S.WORKING, P.KICK): ClientConnection._on_kick,
}
ClientConnection._table = CLIENT_RECEIVE
