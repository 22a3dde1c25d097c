"""Client connections on a frontend: the per-connection agent, its limits and metrics."""

from .agent import Agent, error_body
from .config import AgentConfig
from .metrics import CloseReason, ConnectionMetrics

__all__ = ["Agent", "AgentConfig", "CloseReason", "ConnectionMetrics", "error_body"]
