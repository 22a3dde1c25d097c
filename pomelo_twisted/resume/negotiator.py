"""The handshake side of session resume, and its settings.

A client asks for resume with ``sys.resume`` in its handshake: ``{}`` for a new
session, ``{"token": ..., "received": n}`` to resume one (``n``: the pushes it received
in that session). The reply's ``sys.resume`` carries ``token`` (for the next resume)
and ``window`` (seconds), ``resumed`` (whether the session came back) and, when it did
not, ``refused`` (why) and maybe ``frontend`` (the frontend that holds the session): the
connection then has a new session and the client logs in again. Stock clients never
send ``sys.resume`` and get nothing of this.

Application settings (a frontend's): ``resume`` (default true), ``resume_window``
(seconds a dropped session waits, default 60), ``resume_max_pushes`` (default 256) and
``resume_max_bytes`` (default 256 KiB) bound each session's push buffer,
``resume_secret`` (the token key; default: random per process, which suffices since
only this process can resume its sessions).
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from ..agent.agent import Agent
from ..agent.negotiation import ConnectionOffer
from ..errors import ConfigError
from ..interfaces import IAgent, IHandshakeNegotiator
from ..session.service import SessionService
from .handler import ResumableConnection
from .parked import ResumableSessions, push_format_key
from .tokens import ResumeRefused, ResumeTokens

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..protocol import ClientHandshake

__all__ = ["ResumeNegotiator", "ResumeSettings", "resume_settings"]


@dataclass(frozen=True)
class ResumeSettings:
    """How a frontend resumes sessions (see the module docstring for the settings)."""

    enabled: bool = True
    window: float = 60.0
    max_pushes: int = 256
    max_bytes: int = 256 << 10
    secret: str | None = None


def resume_settings(server_id: str, get: Any) -> ResumeSettings:
    """The resume settings of server ``server_id`` from ``get(key, default)``;
    :class:`ConfigError` naming the setting that is wrong."""
    defaults = ResumeSettings()
    enabled = get("resume", defaults.enabled)
    window = get("resume_window", defaults.window)
    max_pushes = get("resume_max_pushes", defaults.max_pushes)
    max_bytes = get("resume_max_bytes", defaults.max_bytes)
    secret = get("resume_secret", defaults.secret)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{server_id}: 'resume' must be true or false")
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
        raise ConfigError(f"{server_id}: 'resume_window' must be a positive number of seconds")
    for name, value in (("resume_max_pushes", max_pushes), ("resume_max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{server_id}: {name!r} must be a positive integer")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
        raise ConfigError(f"{server_id}: 'resume_secret' must be a string of 16+ characters")
    return ResumeSettings(enabled, float(window), max_pushes, max_bytes, secret)


@implementer(IHandshakeNegotiator)
class ResumeNegotiator:
    """``sys.resume`` in a handshake: a token for a new resumable session, or a parked
    session back (the last negotiator: it needs the final push format)."""

    name = "resume"

    def __init__(self, registry: ResumableSessions) -> None:
        self.registry = registry

    @classmethod
    def for_sessions(
        cls,
        sessions: SessionService,
        clock: IReactorTime,
        random: Random,
        settings: ResumeSettings | None = None,
    ) -> ResumeNegotiator:
        """A negotiator for the sessions of ``sessions``' frontend."""
        settings = settings or ResumeSettings()
        frontend = sessions.frontend_id
        if settings.secret is not None:
            tokens = ResumeTokens(frontend, settings.secret.encode())
        else:
            tokens = ResumeTokens.with_random_key(frontend, random)
        registry = ResumableSessions(
            sessions,
            tokens,
            clock,
            random,
            window=settings.window,
            max_pushes=settings.max_pushes,
            max_bytes=settings.max_bytes,
        )
        return cls(registry)

    def negotiate(self, agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        """Wrap the connection's handler when the client asked for resume."""
        assert isinstance(offer, ConnectionOffer)
        wanted = handshake.sys.get("resume")
        if wanted is None or not isinstance(agent, Agent):
            return
        registry = self.registry
        reply: dict[str, Any] = {"resumed": False}
        claimed = None
        received = 0
        if not isinstance(wanted, dict):
            reply["refused"] = "'resume' must be an object"
        elif "token" in wanted:
            received = wanted.get("received", 0)
            try:
                claimed = registry.claim(wanted["token"], received, push_format_key(offer))
            except ResumeRefused as exc:
                reply["refused"] = exc.reason
                if exc.frontend_id is not None:
                    reply["frontend"] = exc.frontend_id
        if claimed is not None:
            assert isinstance(received, int)
            nonce = claimed.nonce
            reply.update(registry.token(claimed), resumed=True, sid=claimed.session.id)
            offer.features.append("resumed")
        else:
            nonce = registry.new_nonce()
            token = registry.tokens.issue(agent.sid, None, nonce)
            reply.update(token=token, window=registry.window)
            offer.features.append("resume")
        offer.handler = ResumableConnection(offer.handler, registry, nonce, claimed, received)
        offer.sys["resume"] = reply
