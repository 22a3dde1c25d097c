"""Reconnect and session resume: a dropped client gets its session back.

A client that asks for it in its handshake (``sys.resume``) gets a signed, single-use
token in the reply. When its connection drops, its session is *parked* for a window
instead of closed: same sid, uid, settings and channel memberships, and pushes to it go
to a bounded buffer. A client that reconnects within the window presents the token and
the number of pushes it received; it gets its session back and every push it missed,
exactly once and in order. Backends see no leave and no join.

- :mod:`.tokens`: the tokens (HMAC-SHA256, naming the frontend, the sid and the uid);
- :mod:`.pushlog`: the per-session buffer of numbered push packages;
- :mod:`.parked`: the agent stand-in of a parked session and the registry of
  resumable sessions (the window, on the injected clock);
- :mod:`.handler`: the per-connection handler wrapper (parks, resumes, replays);
- :mod:`.negotiator`: :class:`ResumeNegotiator`, the handshake side, and its settings.
"""

from .negotiator import ResumeNegotiator, ResumeSettings, resume_settings
from .parked import ParkedAgent, ResumableSessions, ResumeState
from .pushlog import PushLog
from .tokens import RESUME_END_ROUTE, RESUME_ROUTE, ResumeClaims, ResumeRefused, ResumeTokens

__all__ = [
    "RESUME_END_ROUTE",
    "RESUME_ROUTE",
    "ParkedAgent",
    "PushLog",
    "ResumableSessions",
    "ResumeClaims",
    "ResumeNegotiator",
    "ResumeRefused",
    "ResumeSettings",
    "ResumeState",
    "ResumeTokens",
    "resume_settings",
]
