"""Client connections on a frontend: the per-connection agent, its limits and metrics,
the sessions of a frontend and the copy a backend sees."""

from .agent import Agent
from .backend import SYS_SERVICE, BackendSession, RpcCall
from .config import AgentConfig
from .metrics import CloseReason, ConnectionMetrics
from .service import ANOTHER_LOGIN, SESSION_OPS, SessionService
from .session import ClosedCallback, Session, SessionAgent

__all__ = [
    "ANOTHER_LOGIN",
    "SESSION_OPS",
    "SYS_SERVICE",
    "Agent",
    "AgentConfig",
    "BackendSession",
    "CloseReason",
    "ClosedCallback",
    "ConnectionMetrics",
    "RpcCall",
    "Session",
    "SessionAgent",
    "SessionService",
]
