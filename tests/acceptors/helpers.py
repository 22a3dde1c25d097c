"""WebSocket frames built and read by hand, and a hybrid connection over a memory transport."""

from __future__ import annotations

import base64
import hashlib
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransportWithDisconnection

from pomelo_twisted.acceptors import AgentPool, HybridFactory, HybridProtocol

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_TEXT",
    "PEER",
    "accept_key",
    "client_frame",
    "open_hybrid",
    "server_frames",
    "upgrade_request",
]

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
PEER = IPv4Address("TCP", "127.0.0.1", 50123)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(path: str = "/", key: str = KEY) -> bytes:
    """A client's WebSocket upgrade request (RFC 6455 section 4.1)."""
    return (
        f"GET {path} HTTP/1.1\r\n"
        "Host: localhost:3010\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode("ascii")


def accept_key(key: str = KEY) -> bytes:
    """The Sec-WebSocket-Accept value a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest())


def client_frame(
    payload: bytes, opcode: int = OP_BINARY, mask: bytes = b"\x37\xfa\x21\x3d"
) -> bytes:
    """One final, masked client frame holding ``payload``."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", length)
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split unmasked server frames into ``(opcode, payload)``; every frame must be final."""
    frames: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        first, second = data[offset], data[offset + 1]
        assert first & 0x80, "fragmented frame"
        assert not second & 0x80, "server frames are not masked"
        length = second & 0x7F
        offset += 2
        if length == 126:
            (length,) = struct.unpack_from("!H", data, offset)
            offset += 2
        elif length == 127:
            (length,) = struct.unpack_from("!Q", data, offset)
            offset += 8
        frames.append((first & 0x0F, data[offset : offset + length]))
        offset += length
    assert offset == len(data), "truncated frame"
    return frames


def open_hybrid(
    agents: AgentPool,
) -> tuple[HybridFactory, HybridProtocol, StringTransportWithDisconnection]:
    """A hybrid protocol of ``agents`` connected to a fresh memory transport."""
    factory = HybridFactory(agents)
    protocol = factory.buildProtocol(PEER)
    transport = StringTransportWithDisconnection(peerAddress=PEER)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return factory, protocol, transport
