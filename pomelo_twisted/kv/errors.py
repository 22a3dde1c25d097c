"""The errors of a key-value store (:mod:`pomelo_twisted.kv`).

Every one derives from :class:`KVError` (itself a :class:`~pomelo_twisted.errors.PomeloError`,
so an ``Exception``); each message names the endpoint or the key at fault.
"""

from __future__ import annotations

from ..errors import PomeloError

__all__ = ["CompactedRevision", "KVError", "KVUnavailable", "LeaseNotFound"]


class KVError(PomeloError):
    """Base class of every error a key-value store raises on purpose."""


class KVUnavailable(KVError):
    """The store cannot be reached or answered with a server error: connection refused,
    timeout, a 5xx answer, a broken watch stream. The message names the endpoint."""


class LeaseNotFound(KVError):
    """The lease has expired, was revoked, or never existed."""


class CompactedRevision(KVError):
    """A watch asked to start at a revision the store has already compacted away."""

    def __init__(self, message: str, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision
