"""The handshake negotiators of a frontend, in the order they run.

Each reads a client's handshake and decides one thing about its connection
(:mod:`pomelo_twisted.agent.negotiation`). The order matters: the serializer first, then
what a client dialect implies, then per-route body codecs, then a session resume, which
may refuse the client.

Application settings: ``serializers`` (the body serializers a client may ask for with
``sys.serializer``; default ``["json", "msgpack"]``; ``[]`` for the listener's only);
``protobuf`` (default true: pomelo-protobuf for the clients that ask, when the game has
``config/serverProtos.json`` or ``config/clientProtos.json``; false turns it off);
``protobuf_max_depth`` (how deep protobuf messages may nest in a body; default 64).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..agent.negotiation import SerializerNegotiator
from ..errors import ConfigError
from ..interfaces import IHandshakeNegotiator
from ..protobuf import MAX_DEPTH, load_protos
from ..protobuf.negotiator import ProtobufNegotiator

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
    base_dir = app.base_dir
    if base_dir is not None and app.get("protobuf", True):
        protos = load_protos(base_dir, app.get("protobuf_max_depth", MAX_DEPTH))
        if protos is not None:
            negotiators.append(ProtobufNegotiator(protos))
    return negotiators
