"""The handshake negotiators of a frontend, in the order they run.

Each reads a client's handshake and decides one thing about its connection
(:mod:`pomelo_twisted.agent.negotiation`). The order matters: the serializer first, then
what a client dialect implies, then per-route body codecs, then a session resume, which
may refuse the client.

Application settings: ``serializers`` (the body serializers a client may ask for with
``sys.serializer``; default ``["json", "msgpack"]``; ``[]`` for the listener's only);
``dialects`` (the client dialects served their way, :mod:`pomelo_twisted.dialects`;
default ``["pitaya", "pypomelo"]``; the connector setting ``compress_bodies`` turns on
compressed bodies for pitaya's clients); ``protobuf`` (default true: pomelo-protobuf for
the clients that ask, when the game has ``config/serverProtos.json`` or
``config/clientProtos.json``; false turns it off); ``protobuf_max_depth`` (how deep
protobuf messages may nest in a body; default 64); ``resume`` and the ``resume_*``
settings (:mod:`pomelo_twisted.resume.negotiator`).
"""

from __future__ import annotations

from random import SystemRandom
from typing import TYPE_CHECKING

from ..agent.config import AgentConfig
from ..agent.negotiation import SerializerNegotiator
from ..dialects import PitayaNegotiator, PypomeloNegotiator
from ..errors import ConfigError
from ..interfaces import IHandshakeNegotiator
from ..protobuf import MAX_DEPTH, load_protos
from ..protobuf.negotiator import ProtobufNegotiator
from ..resume import ResumeNegotiator, resume_settings

if TYPE_CHECKING:
    from .application import Application

__all__ = ["DEFAULT_DIALECTS", "DEFAULT_SERIALIZERS", "connector_config", "negotiators_of"]

DEFAULT_SERIALIZERS = ("json", "msgpack")
DEFAULT_DIALECTS = ("pitaya", "pypomelo")


def connector_config(app: Application) -> AgentConfig:
    """The limits and settings of ``app``'s client connections: its ``connector`` settings
    with ``connector_overrides`` over them (ConfigError naming the server and setting)."""
    try:
        return AgentConfig.from_mapping(
            {**app.get("connector", {}), **app.get("connector_overrides", {})}
        )
    except ValueError as exc:
        raise ConfigError(f"{app.server_id}: {exc}") from None


def negotiators_of(
    app: Application, config: AgentConfig | None = None
) -> list[IHandshakeNegotiator]:
    """The negotiators of ``app``'s client connections, from its settings (``config``: the
    connector's, read from them when not given)."""
    if config is None:
        config = connector_config(app)
    negotiators: list[IHandshakeNegotiator] = []
    allowed = app.get("serializers", DEFAULT_SERIALIZERS)
    if not isinstance(allowed, (list, tuple)) or not all(isinstance(n, str) for n in allowed):
        raise ConfigError(f"{app.server_id}: 'serializers' must be a list of names")
    if allowed:
        try:
            negotiators.append(SerializerNegotiator(allowed))
        except ValueError as exc:
            raise ConfigError(f"{app.server_id}: serializers: {exc}") from None
    negotiators.extend(_dialects_of(app, config))
    base_dir = app.base_dir
    if base_dir is not None and app.get("protobuf", True):
        protos = load_protos(base_dir, app.get("protobuf_max_depth", MAX_DEPTH))
        if protos is not None:
            negotiators.append(ProtobufNegotiator(protos))
    resume = resume_settings(app.server_id, app.get)
    if resume.enabled and app.session_service is not None:
        # Tokens and nonces must be unguessable: the system's random source.
        negotiators.append(
            ResumeNegotiator.for_sessions(app.session_service, app.clock, SystemRandom(), resume)
        )
    return negotiators


def _dialects_of(app: Application, config: AgentConfig) -> list[IHandshakeNegotiator]:
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
        dialects.append(PitayaNegotiator(config.compress_bodies))
    if "pypomelo" in names:
        dialects.append(PypomeloNegotiator())
    return dialects
