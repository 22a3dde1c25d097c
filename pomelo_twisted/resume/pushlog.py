"""The recent pushes of one resumable session, numbered, bounded in count and bytes.

Every push package written to the session's connection (or buffered while it is
parked) is numbered from 1. The client counts the pushes it receives; on resume it
says how many, and the ones after it are replayed from here, provided the log still
holds them all.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PushLog"]


class PushLog:
    """The last pushes of a session: at most ``max_pushes`` of them, ``max_bytes`` in all."""

    __slots__ = ("_packages", "bytes", "first", "format", "max_bytes", "max_pushes", "sent")

    def __init__(self, max_pushes: int, max_bytes: int, format: object = None) -> None:
        self.max_pushes = max_pushes
        self.max_bytes = max_bytes
        self.format = format
        """What the packages' bytes depend on (serializer, dictionary use, variant): a
        resumed connection must read them the same way."""
        self._packages: deque[bytes] = deque()
        self.bytes = 0
        self.sent = 0
        """Pushes recorded so far (the number of the last one)."""
        self.first = 1
        """The number of the oldest push held (``sent + 1`` when none is)."""

    def __len__(self) -> int:
        return len(self._packages)

    def record(self, package: bytes) -> None:
        """Number ``package`` and keep it, dropping the oldest beyond the bounds."""
        packages = self._packages
        packages.append(package)
        self.sent += 1
        self.bytes += len(package)
        while len(packages) > self.max_pushes or (self.bytes > self.max_bytes and packages):
            self.bytes -= len(packages.popleft())
            self.first += 1

    def since(self, received: int) -> list[bytes] | None:
        """The pushes after the first ``received``, in order; None when the log no longer
        holds them all (or ``received`` is more than was ever sent)."""
        if received < 0 or received > self.sent or received + 1 < self.first:
            return None
        start = received + 1 - self.first
        packages = self._packages
        return [packages[i] for i in range(start, len(packages))]

    def describe(self, received: int) -> str:
        """Why :meth:`since` refuses ``received``, in words."""
        if received < 0 or received > self.sent:
            return f"the client says it received {received} pushes; {self.sent} were sent"
        return (
            f"the client received {received} of {self.sent} pushes and the buffer holds "
            f"only those from {self.first} on (it overflowed)"
        )
