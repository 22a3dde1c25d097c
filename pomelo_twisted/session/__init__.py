"""Sessions of a frontend: what a server knows about each client connection (bound uid,
settings), the service indexing them, and the copy a backend sees. The connection itself
is an :class:`~pomelo_twisted.agent.Agent`."""

from .backend import SYS_SERVICE, BackendSession, RpcCall
from .service import ANOTHER_LOGIN, SESSION_OPS, SessionService
from .session import ClosedCallback, Session

__all__ = [
    "ANOTHER_LOGIN",
    "SESSION_OPS",
    "SYS_SERVICE",
    "BackendSession",
    "ClosedCallback",
    "RpcCall",
    "Session",
    "SessionService",
]
