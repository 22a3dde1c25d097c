"""Server and client connection state machines (sans-I/O).

``receive_data(bytes) -> list[Event]`` and ``send(event) -> bytes``. States
go ``INITIAL → WAITING_ACK → WORKING → CLOSED``. What each state does with
each received package type is one table per side (``SERVER_RECEIVE`` here,
``CLIENT_RECEIVE`` in :mod:`.client`); anything not in the table is a protocol error that
names the package and the state. A remote violation is reported as a final
:class:`ProtocolViolation` event (the events decoded before it stay valid)
and the connection is then ``CLOSED``.

Both sides share one receive loop (``_Connection.receive_data``); once working, each
side's fast decoder (:mod:`.fastpath`) takes the usual data packages. Every byte a
server sends comes from a ``ServerConnection`` method that checks the state: ``send``
and its event-free hot paths ``send_response``, ``send_push``, ``send_heartbeat``,
``send_kick``, ``prepare_push``/``send_prepared`` (a broadcast) and
``send_violation_kick`` (the goodbye after a violation).
"""

from __future__ import annotations

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
from .fastpath import decode_request_fast, encode_response
from .handshake import (
    CODE_OK,
    encode_handshake_response,
    encode_kick,
    parse_client_handshake,
)
from .message import (
    MessageType,
    decode_message,
    deflate_body,
    encode_message,
    inflate_body,
)
from .packet import (
    DEFAULT_MAX_PACKET_SIZE,
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


def encode_push(
    route: str, body: bytes, dictionary: RouteDictionary | None = None, deflate: bool = False
) -> bytes:
    """One data package holding a push, its route compressed when ``dictionary`` has it,
    its body zlib-compressed with flag 0x10 when ``deflate`` and that is smaller.

    The bytes do not depend on the connection, so a broadcast encodes once.
    """
    code = dictionary.code_of(route) if dictionary is not None else 0
    compressed = deflate_body(body) if deflate else None
    if compressed is not None:
        body = compressed
    return encode_package(
        PackageType.DATA,
        encode_message(
            MessageType.PUSH, 0, route, body, route_code=code, gzip=compressed is not None
        ),
    )


FastDecoder = Callable[[bytes, Any], "Event | None"]
"""A side's fast decoder: ``fast(body, context)`` -> the event of a data package in the
usual shape, or None to let the state table decode (or refuse) it."""


class _Connection:
    """What both sides share: the state, the package decoder and the receive loops."""

    __slots__ = ("_decoder", "_fast", "_fast_context", "packages_received", "state", "violation")

    _table: dict[tuple[ConnectionState, PackageType], Action]

    def __init__(self, max_packet_size: int, fast: FastDecoder) -> None:
        self.state = ConnectionState.INITIAL
        self._fast = fast
        """This side's fast decoder of data packages, called as ``fast(body, context)``."""
        self._fast_context: Any = None
        self.packages_received = 0
        self.violation: str | None = None
        """Why the peer's bytes closed the connection (a protocol violation), if they did."""
        self._decoder = PackageDecoder(max_packet_size)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet forming a whole package."""
        return self._decoder.buffered

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events they complete.

        Once working, data and heartbeat packages take the fast path: the side's
        fast decoder (``_fast``, with ``_fast_context``) turns the usual data packages
        straight into events; anything else goes through the state table, as before the ack.
        """
        if self.state is not ConnectionState.WORKING:
            return self._receive_by_table(data)
        events: list[Event] = []
        decoder = self._decoder
        received = self.packages_received
        fast = self._fast
        context = self._fast_context
        try:
            frames = decoder.feed_frames(data)
            while frames:
                for ptype, body in frames:
                    received += 1
                    if ptype == _DATA:
                        event = fast(body, context)
                        if event is not None:
                            events.append(event)
                            continue
                    elif ptype == _HEARTBEAT:
                        events.append(_HEARTBEAT_EVENT)
                        continue
                    events.extend(self._act(Package(_PACKAGE_TYPES[ptype], body)))
                    if self._closed():  # e.g. the server kicked a client
                        return events
                # A bad header right behind these frames stays buffered: raise it now.
                frames = decoder.feed_frames(b"") if decoder.blocked else []
        except RemoteProtocolError as exc:
            events.append(self._violated(exc))
        finally:
            self.packages_received = received
        return events

    def _receive_by_table(self, data: bytes) -> list[Event]:
        """Every package through the state table (before the ack)."""
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
                packages = self._decoder.feed(b"") if self._decoder.blocked else []
        except RemoteProtocolError as exc:
            events.append(self._violated(exc))
        return events

    def _violated(self, exc: RemoteProtocolError) -> ProtocolViolation:
        self.state = ConnectionState.CLOSED
        self.violation = exc.reason
        return ProtocolViolation(exc)

    def _act(self, package: Package) -> list[Event]:
        """What the state table makes of ``package`` in the current state."""
        action = self._table.get((self.state, package.type))
        if action is None:
            raise RemoteProtocolError(
                f"unexpected {package.type.name.lower()} package in state {self.state.value}"
            )
        return action(self, package)

    def _closed(self) -> bool:
        # A method: mypy would narrow ``self.state`` across the action's call otherwise.
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

    __slots__ = (
        "_client_dict_version",
        "_dictionary",
        "_handshake_pending",
        "_violation_answered",
        "deflate_pushes",
        "max_inflated_body",
        "push_dictionary",
    )

    def __init__(
        self,
        dictionary: RouteDictionary | None = None,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        max_inflated_body: int = DEFAULT_MAX_PACKET_SIZE,
    ) -> None:
        super().__init__(max_packet_size, decode_request_fast)
        self.dictionary = dictionary
        self.push_dictionary: RouteDictionary | None = dictionary
        """The dictionary push routes are compressed with (None: pushes carry strings)."""
        self.max_inflated_body = max_inflated_body
        """The most bytes a compressed request or notify body (flag 0x10) may inflate to;
        more is a protocol violation."""
        self.deflate_pushes = False
        """Push bodies go zlib-compressed with flag 0x10 when smaller (pitaya's clients)."""
        self._handshake_pending = False
        self._client_dict_version: str | None = None
        self._violation_answered = False

    # -- receiving ----------------------------------------------------------

    @property
    def dictionary(self) -> RouteDictionary | None:
        """The route dictionary client route codes are resolved with."""
        return self._dictionary

    @dictionary.setter
    def dictionary(self, dictionary: RouteDictionary | None) -> None:
        self._dictionary = dictionary
        # decode_request_fast resolves route codes in the dictionary's own map.
        self._fast_context = dictionary._code_to_route if dictionary is not None else None

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
        body = inflate_body(msg.body, self.max_inflated_body) if msg.gzip else msg.body
        if msg.route_code:
            resolved = self.dictionary.route_of(msg.route_code) if self.dictionary else None
            if resolved is None:
                if msg.type is MessageType.REQUEST:
                    return [UnknownRouteCode(msg.id, msg.route_code)]
                return [UnknownRouteCode(0, msg.route_code)]
            route = resolved
        if msg.type is MessageType.REQUEST:
            if msg.id == 0:
                return [Notify(route, body)]
            return [Request(msg.id, route, body)]
        if msg.type is MessageType.NOTIFY:
            return [Notify(route, body)]
        raise RemoteProtocolError(f"client sent a {msg.type.name.lower()} message")

    # -- sending ------------------------------------------------------------
    #
    # Every byte a server sends to its client comes from one of these methods, and
    # each checks the state as ``send`` does (LocalProtocolError when it forbids the
    # package). The specific methods are the hot paths: no event is built.

    def send_response(self, msg_id: int, body: bytes) -> bytes:
        """``send(Response(msg_id, body))`` without building the event (the hot path)."""
        if self.state is not ConnectionState.WORKING:
            raise LocalProtocolError(f"cannot send Response in state {self.state.value}")
        return encode_response(msg_id, body)

    def send_response_flagged(
        self, msg_id: int, body: bytes, *, compressed: bool = False, error: bool = False
    ) -> bytes:
        """A response with flag 0x10 (``body`` is compressed) and/or 0x20 (an error):
        pitaya's clients, checked as :meth:`send_response`."""
        if self.state is not ConnectionState.WORKING:
            raise LocalProtocolError(f"cannot send Response in state {self.state.value}")
        message = encode_message(
            MessageType.RESPONSE, msg_id, "", body, gzip=compressed, error=error
        )
        return encode_package(PackageType.DATA, message)

    def send_push(self, route: str, body: bytes) -> bytes:
        """``send(Push(route, body))`` without building the event."""
        if self.state is not ConnectionState.WORKING:
            raise LocalProtocolError(f"cannot send Push in state {self.state.value}")
        return encode_push(route, body, self.push_dictionary, self.deflate_pushes)

    def prepare_push(self, route: str, body: bytes) -> bytes:
        """A push package for :meth:`send_prepared`, encoded once for a broadcast.

        The bytes depend only on the push dictionary and ``deflate_pushes``: they serve
        every connection of the same push format. Preparing sends nothing, in any state.
        """
        return encode_push(route, body, self.push_dictionary, self.deflate_pushes)

    def send_prepared(self, package: bytes) -> bytes:
        """``package`` (from :meth:`prepare_push` of a connection sharing this one's
        dictionary) when a push may be sent now."""
        if self.state is not ConnectionState.WORKING:
            raise LocalProtocolError(f"cannot send Push in state {self.state.value}")
        return package

    def send_heartbeat(self) -> bytes:
        """``send(Heartbeat())``."""
        if self.state is not ConnectionState.WORKING:
            raise LocalProtocolError(f"cannot send Heartbeat in state {self.state.value}")
        return HEARTBEAT_PACKAGE

    def send_kick(self, reason: str) -> bytes:
        """``send(Kick(reason))``: the last package; the connection is then closed."""
        if self.state is ConnectionState.CLOSED:
            raise LocalProtocolError("cannot send Kick in state closed")
        self.state = ConnectionState.CLOSED
        return encode_package(PackageType.KICK, encode_kick(reason))

    def send_violation_kick(self, reason: str) -> bytes:
        """The goodbye after the client broke the protocol: a kick telling ``reason``.

        Only once, and only on a connection a :class:`ProtocolViolation` closed (which
        ``send_kick`` refuses, as it refuses every package once closed).
        """
        if self.state is not ConnectionState.CLOSED or self.violation is None:
            raise LocalProtocolError("no protocol violation to answer")
        if self._violation_answered:
            raise LocalProtocolError("the protocol violation was already answered")
        self._violation_answered = True
        return encode_package(PackageType.KICK, encode_kick(reason))

    def send(self, event: Event) -> bytes:
        """Bytes for ``event``; raises :class:`LocalProtocolError` when the state forbids it."""
        if isinstance(event, Response):
            return self.send_response(event.id, event.body)
        if isinstance(event, Push):
            return self.send_push(event.route, event.body)
        if isinstance(event, Heartbeat):
            return self.send_heartbeat()
        if isinstance(event, Kick):
            return self.send_kick(event.reason)
        if isinstance(event, HandshakeResponse):
            self._require(event, S.INITIAL)
            if not self._handshake_pending:
                raise LocalProtocolError("handshake response sent before a handshake arrived")
            # Encoded first: a reply that cannot be encoded (user data holding a lone
            # surrogate) leaves the handshake pending, so an error reply can still go.
            body = encode_handshake_response(event, self._client_dict_version)
            self._handshake_pending = False
            # Compress pushes only with a dictionary the client was told to use.
            self.dictionary = event.dictionary if event.use_dict else None
            self.push_dictionary = self.dictionary if event.compress_pushes else None
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
