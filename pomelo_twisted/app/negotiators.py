"""The handshake negotiators of a frontend, in the order they run.

Each reads a client's handshake and decides one thing about its connection
(:mod:`pomelo_twisted.agent.negotiation`). The order matters: the serializer first, then
what a client dialect implies, then per-route body codecs, then a session resume, which
may refuse the client.

Application settings: ``serializers`` (the body serializers a client may ask for with
``sys.serializer``; default ``["json", "msgpack"]``; ``[]`` for the listener's only);
``dialects`` (the client dialects served their way, :mod:`pomelo_twisted.dialects`;
default ``["pitaya", "pypomelo"]``; the connector setting ``compress_bodies`` turns on
compressed bodies for pitaya's clients).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..agent.config import AgentConfig
from ..agent.negotiation import SerializerNegotiator
from ..dialects import PitayaNegotiator, PypomeloNegotiator
from ..errors import ConfigError
from ..interfaces import IHandshakeNegotiator

if TYPE_CHECKING:
    from .application import Application

__all__ = ["DEFAULT_DIALECTS", "DEFAULT_SERIALIZERS", "negotiators_of"]

DEFAULT_SERIALIZERS = ("json", "msgpack")
DEFAULT_DIALECTS = ("pitaya", "pypomelo")


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
    negotiators.extend(_dialects_of(app))
    return negotiators


def _dialects_of(app: Application) -> list[IHandshakeNegotiator]:
    """The client dialect negotiators ``app`` serves (setting ``dialects``)."""
    names = app.get("dialects", DEFAULT_DIALECTS)
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{app.server_id}: 'dialects' must be a list of names")
    unknown = sorted(set(names) - set(DEFAULT_DIALECTS))
    if unknown:
        raise ConfigError(
            f"{app.server_id}: unknown dialect(s) {', '.join(unknown)};"
            f" known: {', '.join(DEFAULT_DIALECTS)}"
        )
    dialects: list[IHandshakeNegotiator] = []
    if "pitaya" in names:
        try:
            connector = AgentConfig.from_mapping(
                {**app.get("connector", {}), **app.get("connector_overrides", {})}
            )
        except ValueError as exc:
            raise ConfigError(f"{app.server_id}: {exc}") from None
        dialects.append(PitayaNegotiator(connector.compress_bodies))
    if "pypomelo" in names:
        dialects.append(PypomeloNegotiator())
    return dialects
