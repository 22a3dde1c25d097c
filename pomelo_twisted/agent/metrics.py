"""Counters of a frontend's connections: why they closed, what was dropped."""

from __future__ import annotations

from collections import Counter

__all__ = ["CloseReason", "ConnectionMetrics"]


class CloseReason:
    """The causes a connection can close for (the prefix of every recorded reason)."""

    CLIENT_CLOSED = "client closed"
    HANDSHAKE_TIMEOUT = "handshake timeout"
    HANDSHAKE_REJECTED = "handshake rejected"
    BAD_HANDSHAKE = "bad handshake"
    HEARTBEAT_TIMEOUT = "heartbeat timeout"
    PROTOCOL_ERROR = "protocol error"
    KICKED = "kicked"
    SLOW_CONSUMER = "slow consumer"
    SERVER_CLOSED = "server closed"


class ConnectionMetrics:
    """Shared by every connection of one acceptor; cheap integer counters."""

    __slots__ = (
        "closed",
        "connections_opened",
        "dropped",
        "late_answers",
        "notifies",
        "ordering_timeouts",
        "rate_limited",
        "refused",
        "requests",
        "responses_dropped",
    )

    def __init__(self) -> None:
        self.connections_opened = 0
        self.requests = 0
        self.notifies = 0
        self.rate_limited = 0
        self.responses_dropped = 0
        self.ordering_timeouts = 0
        """Requests and notifies that held the order past ``order_timeout`` (:mod:`.ordering`)."""
        self.late_answers = 0
        """Answers that came after their request was answered 504 by the order: dropped."""
        self.closed: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        """Connections closed as they were accepted, by cap (never counted as opened)."""

    @property
    def connections_open(self) -> int:
        """Connections opened and not yet closed."""
        return self.connections_opened - sum(self.closed.values())

    def snapshot(self) -> dict[str, object]:
        """A plain-dict copy, for logs and the admin interface."""
        return {
            "connections_open": self.connections_open,
            "connections_opened": self.connections_opened,
            "requests": self.requests,
            "notifies": self.notifies,
            "rate_limited": self.rate_limited,
            "responses_dropped": self.responses_dropped,
            "ordering_timeouts": self.ordering_timeouts,
            "late_answers": self.late_answers,
            "closed": dict(self.closed),
            "dropped": dict(self.dropped),
            "refused": dict(self.refused),
        }
