"""The handshake negotiators of a frontend, in the order they run.

Each reads a client's handshake and decides one thing about its connection
(:mod:`pomelo_twisted.agent.negotiation`). The order matters: the serializer first, then
what a client dialect implies, then per-route body codecs, then a session resume, which
may refuse the client.

Application settings: ``serializers`` (the body serializers a client may ask for with
``sys.serializer``; default ``["json", "msgpack"]``; ``[]`` for the listener's only);
``resume`` and the ``resume_*`` settings (:mod:`pomelo_twisted.resume.negotiator`).
"""

from __future__ import annotations

from random import SystemRandom
from typing import TYPE_CHECKING

from ..agent.negotiation import SerializerNegotiator
from ..errors import ConfigError
from ..interfaces import IHandshakeNegotiator
from ..resume import ResumeNegotiator, resume_settings

if TYPE_CHECKING:
    from .application import Application

__all__ = ["DEFAULT_SERIALIZERS", "negotiators_of"]

DEFAULT_SERIALIZERS = ("json", "msgpack")


def negotiators_of(app: Application) -> list[IHandshakeNegotiator]:
    """The negotiators of ``app``'s client connections, from its settings."""
    negotiators: list[IHandshakeNegotiator] = []
    allowed = app.get("serializers", DEFAULT_SERIALIZERS)
    if not isinstance(allowed, (list, tuple)) or not all(isinstance(n, str) for n in allowed):
        raise ConfigError(f"{app.server_id}: 'serializers' must be a list of names")
    if allowed:
        try:
            negotiators.append(SerializerNegotiator(allowed))
        except ValueError as exc:
            raise ConfigError(f"{app.server_id}: serializers: {exc}") from None
    resume = resume_settings(app.server_id, app.get)
    if resume.enabled and app.session_service is not None:
        # Tokens and nonces must be unguessable: the system's random source.
        negotiators.append(
            ResumeNegotiator.for_sessions(app.session_service, app.clock, SystemRandom(), resume)
        )
    return negotiators
