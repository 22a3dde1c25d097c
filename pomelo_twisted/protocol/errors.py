"""Errors of the sans-I/O protocol layer.

Every error names its culprit: ``"remote"`` when the peer sent bytes that
break the protocol (the connection must be closed, the reason logged), or
``"local"`` when our own side asked for something the protocol cannot say
(a programming error, the connection may stay up).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BadPackageType",
    "LocalProtocolError",
    "MessageDecodeError",
    "PackageTooLarge",
    "ProtocolError",
    "RemoteProtocolError",
]

Culprit = Literal["local", "remote"]


class ProtocolError(Exception):
    """A violation of the Pomelo protocol; ``reason`` is short and loggable."""

    culprit: Culprit = "remote"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; close the connection with ``reason``."""

    culprit: Culprit = "remote"


class LocalProtocolError(ProtocolError):
    """Our side tried to send something the protocol or the state forbids."""

    culprit: Culprit = "local"


class BadPackageType(RemoteProtocolError):
    """A package header carried a type outside 1..5."""

    def __init__(self, package_type: int) -> None:
        super().__init__(f"bad package type {package_type:#04x}")
        self.package_type = package_type


class PackageTooLarge(RemoteProtocolError):
    """A package header declared a body longer than the configured maximum."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"package declares {length} bytes, over the limit of {limit}")
        self.length = length
        self.limit = limit


class MessageDecodeError(RemoteProtocolError):
    """The body of a data package is not a well-formed message."""
