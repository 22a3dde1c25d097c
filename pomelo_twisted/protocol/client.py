"""The client side of a connection (sans-I/O): see :mod:`.connection`."""

from __future__ import annotations

from .connection import (
    HANDSHAKE_ACK_PACKAGE,
    HEARTBEAT_PACKAGE,
    Action,
    ConnectionState,
    P,
    S,
    _Connection,
    _ignore,
)
from .dictionary import RouteDictionary
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    ClientHandshake,
    Event,
    HandshakeAck,
    Heartbeat,
    Kick,
    Notify,
    Push,
    Request,
    Response,
)
from .fastpath import decode_response_fast
from .handshake import CODE_OK, encode_client_handshake, parse_handshake_response, parse_kick
from .message import MAX_MESSAGE_ID, MessageType, decode_message, encode_message
from .packet import DEFAULT_MAX_PACKET_SIZE, Package, PackageType, encode_package

__all__ = ["CLIENT_RECEIVE", "ClientConnection"]


class ClientConnection(_Connection):
    """The client side of one connection to a Pomelo server."""

    __slots__ = ("_handshake_sent", "_pending_routes", "dictionary", "use_dict")

    def __init__(self, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE) -> None:
        super().__init__(max_packet_size, decode_response_fast)
        self.dictionary: RouteDictionary | None = None
        self.use_dict = False
        self._handshake_sent = False
        self._pending_routes: dict[int, str] = {}
        self._fast_context = self._pending_routes  # decode_response_fast pops their routes

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
