"""Resume tokens: ``payload.signature``, both base64url, the signature HMAC-SHA256.

The payload names the frontend server, the session id, the uid the session was bound to
when the token was issued (``None`` before login) and a random nonce. The registry of
resumable sessions keeps the nonce of each session's latest token: a token whose nonce
is not that one (used, or superseded by a newer token) never works again. A token
expires with its session's resume window (it works only while its session is parked).

The key is per frontend process (parked sessions live in its memory, so no other
process could honour a token anyway): random unless ``resume_secret`` is set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from random import Random

__all__ = [
    "FORGED",
    "MAX_TOKEN_LENGTH",
    "RESUME_END_ROUTE",
    "RESUME_ROUTE",
    "ResumeClaims",
    "ResumeRefused",
    "ResumeTokens",
]

RESUME_ROUTE = "sys.resume"
"""The reserved push route of a fresh token (after a bind or unbind), sent only to
clients that asked for resume."""

RESUME_END_ROUTE = "sys.resume.end"
"""The reserved notify route of a client leaving on purpose: its session is not parked
when the connection then closes (no one comes back for it), it closes at once."""

MAX_TOKEN_LENGTH = 1024
"""Longer tokens are refused before any decoding."""

FORGED = (
    "resume token not signed by this frontend process (forged, altered, or issued before "
    "it restarted)"
)
"""The refusal of a token whose signature does not verify."""

_VERSION = 1


@dataclass(frozen=True, slots=True)
class ResumeClaims:
    """What a token says: its frontend, session id, uid at issue and nonce."""

    frontend_id: str
    sid: int
    uid: str | None
    nonce: str


class ResumeRefused(Exception):
    """A resume that cannot be honoured; ``reason`` says why, ``frontend_id`` names the
    frontend holding the session when it is another one."""

    def __init__(self, reason: str, frontend_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.frontend_id = frontend_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ResumeTokens:
    """Issues and opens the resume tokens of frontend ``frontend_id``."""

    def __init__(self, frontend_id: str, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a resume secret needs at least 16 bytes")
        self.frontend_id = frontend_id
        self._key = hashlib.sha256(b"pomelo-twisted resume token\0" + secret).digest()

    @classmethod
    def with_random_key(cls, frontend_id: str, random: Random) -> ResumeTokens:
        """Tokens signed with a key drawn from ``random`` (use ``SystemRandom``)."""
        return cls(frontend_id, random.getrandbits(256).to_bytes(32, "big"))

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, sid: int, uid: str | None, nonce: str) -> str:
        """A token for session ``sid`` bound to ``uid``, valid while ``nonce`` is current."""
        body = json.dumps([_VERSION, self.frontend_id, sid, uid, nonce], separators=(",", ":"))
        payload = _b64(body.encode())
        return f"{payload}.{self._sign(payload)}"

    def open(self, token: object) -> ResumeClaims:
        """The claims of ``token``; :class:`ResumeRefused` naming what is wrong (malformed,
        another frontend's, or not signed here: :data:`FORGED`)."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise ResumeRefused("malformed resume token")
        payload, dot, signature = token.partition(".")
        try:
            fields = json.loads(_unb64(payload)) if dot else None
        except ValueError:
            fields = None
        if (
            not isinstance(fields, list)
            or len(fields) != 5
            or fields[0] != _VERSION
            or not isinstance(fields[1], str)
            or not isinstance(fields[2], int)
            or not (fields[3] is None or isinstance(fields[3], str))
            or not isinstance(fields[4], str)
        ):
            raise ResumeRefused("malformed resume token")
        _, frontend_id, sid, uid, nonce = fields
        if frontend_id != self.frontend_id:
            # Only the frontend that holds the session can resume it: say which.
            raise ResumeRefused(
                f"the session is held by frontend {frontend_id!r}, not {self.frontend_id!r}",
                frontend_id,
            )
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise ResumeRefused(FORGED)
        return ResumeClaims(frontend_id, sid, uid, nonce)
