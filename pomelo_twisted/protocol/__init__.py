"""The Pomelo wire protocol, sans-I/O: bytes in, events out, bytes back.

Nothing in this package does I/O or imports Twisted (a test checks): the
acceptors, the agent and the client drive these objects from the outside.
See ``shared/PROTOCOL.md`` for the wire format.
"""

from .client import CLIENT_RECEIVE, ClientConnection
from .connection import (
    SERVER_RECEIVE,
    ConnectionState,
    ServerConnection,
    encode_push,
)
from .dictionary import RouteDictionary
from .errors import (
    BadPackageType,
    LocalProtocolError,
    MessageDecodeError,
    PackageTooLarge,
    ProtocolError,
    RemoteProtocolError,
)
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
from .fastpath import encode_response
from .handshake import CODE_BAD_HANDSHAKE, CODE_OK, CODE_REJECTED
from .message import Message, MessageType, decode_message, encode_message
from .packet import DEFAULT_MAX_PACKET_SIZE, Package, PackageDecoder, PackageType, encode_package

__all__ = [
    "CLIENT_RECEIVE",
    "CODE_BAD_HANDSHAKE",
    "CODE_OK",
    "CODE_REJECTED",
    "DEFAULT_MAX_PACKET_SIZE",
    "SERVER_RECEIVE",
    "BadHandshake",
    "BadPackageType",
    "ClientConnection",
    "ClientHandshake",
    "ConnectionState",
    "Event",
    "HandshakeAck",
    "HandshakeResponse",
    "Heartbeat",
    "Ignored",
    "Kick",
    "LocalProtocolError",
    "Message",
    "MessageDecodeError",
    "MessageType",
    "Notify",
    "Package",
    "PackageDecoder",
    "PackageTooLarge",
    "PackageType",
    "ProtocolError",
    "ProtocolViolation",
    "Push",
    "RemoteProtocolError",
    "Request",
    "Response",
    "RouteDictionary",
    "ServerConnection",
    "UnknownRouteCode",
    "decode_message",
    "encode_message",
    "encode_package",
    "encode_push",
    "encode_response",
]
