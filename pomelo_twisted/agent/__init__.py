"""The server side of one client connection: the agent, its send queue, admission rules,
limits and metrics (frontend sessions live in :mod:`pomelo_twisted.session`)."""

from .agent import Agent
from .config import AgentConfig
from .metrics import CloseReason, ConnectionMetrics

__all__ = [
    "Agent",
    "AgentConfig",
    "CloseReason",
    "ConnectionMetrics",
]
