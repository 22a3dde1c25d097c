"""Client acceptors: raw TCP, WebSocket, and both on one port (hybrid), from endpoint strings."""

from .hybrid import HybridFactory, HybridProtocol
from .service import KINDS, AcceptorKind, AcceptorService
from .tcp import AgentPool, PomeloTCPProtocol, TCPFactory
from .websocket import PomeloWebSocketProtocol, WebSocketFactory

__all__ = [
    "KINDS",
    "AcceptorKind",
    "AcceptorService",
    "AgentPool",
    "HybridFactory",
    "HybridProtocol",
    "PomeloTCPProtocol",
    "PomeloWebSocketProtocol",
    "TCPFactory",
    "WebSocketFactory",
]
