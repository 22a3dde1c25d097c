"""Counters of the calls one server makes to another, for metrics and the admin interface."""

from __future__ import annotations

__all__ = ["RpcCounters"]


class RpcCounters:
    """The calls made to one server; cheap integer counters.

    ``calls`` counts every call; each ends in a result, in one of ``failures``
    (any error but a deadline: server unavailable, arguments or result not plain
    data, the remote raised, including ``HandlerError``), in one of ``timeouts``,
    or is cancelled by the caller. ``late`` counts results or failures that
    arrived after their call had timed out or been cancelled (dropped). ``expired``
    counts the calls not sent because the deadline of the request they were made for
    had passed (:mod:`~pomelo_twisted.budget`; also counted in ``timeouts``).
    """

    __slots__ = ("calls", "expired", "failures", "late", "timeouts")

    def __init__(self) -> None:
        self.calls = 0
        self.failures = 0
        self.timeouts = 0
        self.late = 0
        self.expired = 0

    def snapshot(self) -> dict[str, int]:
        """A plain-dict copy."""
        return {
            "calls": self.calls,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "late": self.late,
            "expired": self.expired,
        }
