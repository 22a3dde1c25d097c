"""What a client's handshake decides about its connection.

A listener's :class:`~pomelo_twisted.interfaces.IHandshakeNegotiator`\\ s each read the
client's handshake and change one :class:`ConnectionOffer`: the body serializer, the
route dictionary, the handler the requests go to (a transcoding wrapper), how pushes are
encoded, and the extra ``sys`` fields of the reply. The agent applies the offer when it
sends the reply (:meth:`pomelo_twisted.agent.Agent._accept_handshake`). A stock client
that asks for nothing gets the listener's defaults and costs nothing more.

:class:`SerializerNegotiator` is the first of them: a client may ask for another body
serializer than the listener's default with ``sys.serializer`` in its handshake (our
Python client does for msgpack); stock clients keep JSON on the same port.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from ..interfaces import IAgent, IConnectionHandler, IHandshakeNegotiator, ISerializer
from ..protocol import ServerConnection
from ..serializers import get_serializer

if TYPE_CHECKING:
    from ..protocol import ClientHandshake

__all__ = [
    "ConnectionOffer",
    "PushEncoder",
    "ResponseEncoder",
    "SerializerNegotiator",
    "intern_push_format",
]

PushEncoder = Callable[[str, object], bytes]
"""``encoder(route, msg) -> body bytes`` of a push (e.g. protobuf for routes with a proto)."""

ResponseEncoder = Callable[[ServerConnection, int, object], bytes]
"""``encoder(connection, msg_id, body) -> package bytes`` of an answer (a body, an
``EncodedBody`` or None), sent through ``connection``'s checked send methods (which raise
``LocalProtocolError`` once it is closed): a client dialect's responses (pitaya's flags)."""


class ConnectionOffer:
    """What one connection will be once its handshake is answered (negotiators change it).

    - ``serializer``: the body serializer of requests, responses and pushes;
    - ``use_dict``: announce the route dictionary (the client may send route codes);
    - ``compress_pushes``: with ``use_dict``, pushes travel with route codes too;
    - ``handler``: the connection handler its requests go to (a negotiator may wrap it);
    - ``push_encoder``: when set, encodes push bodies instead of ``serializer``;
    - ``response_encoder``: when set, encodes every answer (:data:`ResponseEncoder`);
    - ``deflate_pushes``: push bodies go zlib-compressed with flag 0x10 when smaller
      (set ``push_variant`` too: the bytes differ);
    - ``push_variant``: anything else that changes a push's bytes (hashable, e.g.
      ``("protobuf", version)``): connections that differ in it never share a broadcast's
      package;
    - ``sys``: extra fields of the reply's ``sys`` object;
    - ``features``: names of what was negotiated, for logs, stats and tests.
    """

    __slots__ = (
        "compress_pushes",
        "deflate_pushes",
        "features",
        "handler",
        "push_encoder",
        "push_variant",
        "response_encoder",
        "serializer",
        "sys",
        "use_dict",
    )

    def __init__(
        self, serializer: ISerializer, handler: IConnectionHandler, use_dict: bool
    ) -> None:
        self.serializer = serializer
        self.handler = handler
        self.use_dict = use_dict
        self.compress_pushes = True
        self.push_encoder: PushEncoder | None = None
        self.push_variant: Hashable = None
        self.response_encoder: ResponseEncoder | None = None
        self.deflate_pushes = False
        self.sys: dict[str, Any] = {}
        self.features: list[str] = []

    def __repr__(self) -> str:
        return (
            f"<ConnectionOffer serializer={self.serializer.name} use_dict={self.use_dict} "
            f"features={self.features}>"
        )


def intern_push_format(formats: dict[Hashable, Hashable], key: Hashable) -> Hashable:
    """The one object standing for push format ``key`` among a listener's agents: agents
    compare push formats by identity (a broadcast encodes once per format)."""
    return formats.setdefault(key, key)


@implementer(IHandshakeNegotiator)
class SerializerNegotiator:
    """``sys.serializer`` in a client's handshake picks the body serializer, among
    ``allowed``; anything else (absent, unknown, not allowed) keeps the default."""

    name = "serializer"

    def __init__(self, allowed: Iterable[str] = ("json", "msgpack")) -> None:
        self._serializers: Mapping[str, ISerializer] = {
            name: get_serializer(name) for name in allowed
        }

    @property
    def allowed(self) -> frozenset[str]:
        """The serializer names a client may ask for."""
        return frozenset(self._serializers)

    def negotiate(self, agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        """Switch ``offer`` to the serializer the client asked for, when allowed."""
        assert isinstance(offer, ConnectionOffer)
        wanted = handshake.sys.get("serializer")
        if not isinstance(wanted, str) or wanted == offer.serializer.name:
            return
        serializer = self._serializers.get(wanted)
        if serializer is not None:
            offer.serializer = serializer
            offer.features.append(f"serializer={wanted}")
