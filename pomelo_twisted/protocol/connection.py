"""Server and client connection state machines (sans-I/O).

``receive_data(bytes) -> list[Event]`` and ``send(event) -> bytes``. States
go ``INITIAL → WAITING_ACK → WORKING → CLOSED``. What each state does with
each received package type is one table per side (``SERVER_RECEIVE`` here,
``CLIENT_RECEIVE`` in :mod:`.client`); anything not in the table is a protocol error that
names the package and the state. A remote violation is reported as a final
:class:`ProtocolViolation` event (the events decoded before it stay valid)
and the connection is then ``CLOSED``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import Enum
from typing import Any

from .dictionary import RouteDictionary
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import (
    BadHandshake,
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
    encode_handshake_response,
    encode_kick,
    parse_client_handshake,
)
from .message import (
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
    "SERVER_RECEIVE",
    "ConnectionState",
    "ServerConnection",
    "encode_push",
    "encode_response",
]

_DATA = int(PackageType.DATA)
_HEARTBEAT = int(PackageType.HEARTBEAT)
_PACKAGE_TYPES: tuple[PackageType, ...] = (PackageType.HANDSHAKE, *PackageType)
_HEARTBEAT_EVENT = Heartbeat()

# Events of the hot path are built without the frozen dataclass __init__, whose
# object.__setattr__ per field costs more than the decoding: the slot descriptors are
# set directly. The result is an ordinary, equal, still frozen instance.
_REQUEST = int(MessageType.REQUEST)
_NOTIFY = int(MessageType.NOTIFY)
_new = object.__new__
_set_request_id = Request.__dict__["id"].__set__
_set_request_route = Request.__dict__["route"].__set__
_set_request_body = Request.__dict__["body"].__set__
_set_notify_route = Notify.__dict__["route"].__set__
_set_notify_body = Notify.__dict__["body"].__set__


def decode_request_fast(body: bytes, routes: dict[int, str] | None) -> Request | Notify | None:
    """A client's request or notify straight from the body of a data package: the
    server's hot path, for the usual shapes (a varint id of up to four bytes, a route
    as a code in ``routes``, the dictionary's code -> route map, or as UTF-8). None
    for anything else, which :func:`decode_message` then decodes (or refuses) in
    full. The events are built without the frozen dataclass ``__init__``."""
    size = len(body)
    if size < 2:
        return None
    flag = body[0]
    msg_type = (flag >> 1) & 0x07
    offset = 1
    msg_id = 0
    if msg_type == _REQUEST:
        byte = body[1]
        offset = 2
        if byte < 0x80:
            msg_id = byte
        else:
            msg_id = byte & 0x7F
            shift = 7
            while True:
                # At most four bytes here (28 bits, always a valid id): a fifth one,
                # which may overflow 31 bits, is left to decode_message.
                if offset >= size or offset > 4:
                    return None
                byte = body[offset]
                offset += 1
                msg_id |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
    elif msg_type != _NOTIFY:
        return None
    if flag & 0x01:
        if routes is None or offset + 2 > size:
            return None
        route = routes.get((body[offset] << 8) | body[offset + 1])
        if route is None:
            return None
        offset += 2
    else:
        if offset >= size:
            return None
        stop = offset + 1 + body[offset]
        if stop > size:
            return None
        try:
            route = body[offset + 1 : stop].decode("utf-8")
        except UnicodeDecodeError:
            return None
        offset = stop
    payload = body[offset:] if offset < size else b""
    if msg_id:
        request = _new(Request)
        _set_request_id(request, msg_id)
        _set_request_route(request, route)
        _set_request_body(request, payload)
        return request
    notify = _new(Notify)
    _set_notify_route(notify, route)
    _set_notify_body(notify, payload)
    return notify


HEARTBEAT_PACKAGE = encode_package(PackageType.HEARTBEAT)
HANDSHAKE_ACK_PACKAGE = encode_package(PackageType.HANDSHAKE_ACK)

# A response's package header and message flag, packed at once: the type byte and the
# 24-bit length as one big-endian word, then the flag (RESPONSE << 1) and the varint id
# (one or two bytes for ids below 2**14; longer ids are appended).
_DATA_TYPE_BITS = int(PackageType.DATA) << 24
_RESPONSE_FLAG = int(MessageType.RESPONSE) << 1
_RESPONSE_FLAG_BITS = _RESPONSE_FLAG << 8
_PACK_0 = struct.Struct(">IB").pack
_PACK_1 = struct.Struct(">IH").pack
_PACK_2 = struct.Struct(">IBH").pack


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

    Built with one pack and one concatenation (the hot path); equal to
    ``encode_package(DATA, encode_message(RESPONSE, msg_id, "", body))``.
    """
    if 0 <= msg_id < 0x80:
        length = 2 + len(body)
    elif 0x80 <= msg_id < 0x4000:
        length = 3 + len(body)
    else:
        msg_id_bytes = encode_varint(msg_id)
        length = 1 + len(msg_id_bytes) + len(body)
    if length > MAX_BODY_LENGTH:
        raise ValueError(
            f"package body of {length} bytes exceeds the protocol maximum of {MAX_BODY_LENGTH}"
        )
    if msg_id < 0x80:
        return _PACK_1(_DATA_TYPE_BITS | length, _RESPONSE_FLAG_BITS | msg_id) + body
    if msg_id < 0x4000:
        varint = (msg_id & 0x7F | 0x80) << 8 | msg_id >> 7
        return _PACK_2(_DATA_TYPE_BITS | length, _RESPONSE_FLAG, varint) + body
    return b"".join((_PACK_0(_DATA_TYPE_BITS | length, _RESPONSE_FLAG), msg_id_bytes, body))


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
                    events.extend(self._act(package))
                    if self._closed():
                        return events
                # A bad header right behind these packages stays buffered: raise it now.
                packages = self._decoder.feed(b"") if self._decoder.blocked else []
        except RemoteProtocolError as exc:
            self.state = ConnectionState.CLOSED
            events.append(ProtocolViolation(exc))
        return events

    def _act(self, package: Package) -> list[Event]:
        """What the state table makes of ``package`` in the current state."""
        action = self._table.get((self.state, package.type))
        if action is None:
            raise RemoteProtocolError(
                f"unexpected {package.type.name.lower()} package in state {self.state.value}"
            )
        return action(self, package)

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

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events they complete.

        Once working, data and heartbeat packages take a fast path: the common
        message shapes are decoded inline, straight into events; anything else goes
        through the state table exactly as before the handshake ack.
        """
        if self.state is not ConnectionState.WORKING:
            return super().receive_data(data)
        events: list[Event] = []
        decoder = self._decoder
        received = self.packages_received
        dictionary = self.dictionary
        routes = dictionary._code_to_route if dictionary is not None else None
        try:
            frames = decoder.feed_frames(data)
            while frames:
                for ptype, body in frames:
                    received += 1
                    if ptype == _DATA:
                        event = decode_request_fast(body, routes)
                        if event is None:
                            events.extend(self._on_data(Package(P.DATA, body)))
                        else:
                            events.append(event)
                    elif ptype == _HEARTBEAT:
                        events.append(_HEARTBEAT_EVENT)
                    else:
                        # Handshake, ack or kick once working: the table decides.
                        events.extend(self._act(Package(_PACKAGE_TYPES[ptype], body)))
                frames = decoder.feed_frames(b"") if decoder.blocked else []
        except RemoteProtocolError as exc:
            self.state = ConnectionState.CLOSED
            events.append(ProtocolViolation(exc))
        finally:
            self.packages_received = received
        return events

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
