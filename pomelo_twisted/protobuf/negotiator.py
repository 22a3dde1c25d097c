"""pomelo-protobuf on a client connection: the handshake exchange and the transcoding.

A client that can use protos says so with ``sys.protoVersion`` in its handshake (pomelo's
and pinus' clients send it always: the version of the protos they cached, or 0). For it,
:class:`ProtobufNegotiator` answers ``sys.useProto: true`` and, when the client's version
is not ours, ``sys.protos`` (``{server, client, version}``, the parsed protos) as pomelo
does; a client that sends no ``protoVersion`` sees no difference and costs nothing more.

The connection's handler is wrapped by :class:`ProtobufHandler`: the protobuf body of a
request or notify whose route has a client proto becomes the connection serializer's
bytes before the game's handler sees it (local or forwarded alike: backends need no
protos), and the answer of a route with a server proto is encoded with it (a value or an
``EncodedBody`` of the serializer's bytes). Pushes on routes with a server proto are
encoded by the connection's ``push_encoder``.

What does not fit:

- a request body that is not a valid message of its client proto is answered 400 naming
  the field (a notify is dropped and logged);
- an answer that does not fit its server proto is logged as an error naming the route and
  field; the client gets ``{"code": 500}`` encoded with the proto when it can carry it,
  else an empty body (what pomelo sends: the client decodes ``{}``). A failed request's
  error body is encoded the same way (its ``code`` and ``msg`` when the proto declares
  them). JSON never goes out on a protobuf route: the client would decode it as protobuf;
- a push that does not fit is logged and sent with an empty body, as pomelo does.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..agent.negotiation import ConnectionOffer, PushEncoder
from ..errors import BadRequest, SerializationError
from ..handlerwrapper import HandlerWrapper
from ..interfaces import IAgent, IConnectionHandler, IHandshakeNegotiator, ISerializer
from ..protocol import ClientHandshake
from ..responses import CODE_INTERNAL, EncodedBody, failure_response
from ..results import is_later, settle
from .codec import ProtobufCodec, ProtobufError
from .protos import Protos

__all__ = ["ProtobufHandler", "ProtobufNegotiator"]

log = Logger()


def _answer_error(codec: ProtobufCodec, route: str, body: object) -> bytes:
    """An error body ``{code, msg}`` on ``route``, encoded as far as its proto allows."""
    if isinstance(body, dict):
        try:
            return codec.encode(route, body)
        except ProtobufError:
            pass
        code = body.get("code", CODE_INTERNAL)
    else:
        code = CODE_INTERNAL
    try:
        return codec.encode(route, {"code": code})
    except ProtobufError:
        return b""


class ProtobufHandler(HandlerWrapper):
    """Wraps a connection handler: protobuf bodies in, protobuf answers out, on the routes
    with a proto; every other route goes through untouched."""

    __slots__ = ("client", "server")

    def __init__(self, inner: IConnectionHandler, protos: Protos) -> None:
        super().__init__(inner)
        self.client = protos.client
        self.server = protos.server

    def _transcode(self, agent: IAgent, route: str, body: bytes) -> bytes:
        try:
            msg = self.client.decode(route, body)
        except ProtobufError as exc:
            raise BadRequest(str(exc)) from None
        serializer: ISerializer = agent.serializer
        try:
            return serializer.encode(msg)
        except SerializationError as exc:  # e.g. a NaN float for JSON
            raise BadRequest(f"route {route!r}: {exc}") from None

    def request(self, agent: IAgent, route: str, body: bytes) -> object:
        """Decode a protobuf request body; encode the answer with the server proto."""
        encodes = route in self.server
        try:
            if route in self.client:
                body = self._transcode(agent, route, body)
            if not encodes:
                return self.inner.request(agent, route, body)
            result = self.inner.request(agent, route, body)
        except Exception:
            if not encodes:
                raise
            return self._failed(Failure(), agent, route)
        if is_later(result):
            d = settle(result)
            return d.addCallbacks(
                self._encode, self._failed, callbackArgs=(agent, route), errbackArgs=(agent, route)
            )
        return self._encode(result, agent, route)

    def notify(self, agent: IAgent, route: str, body: bytes) -> object:
        """Decode a protobuf notify body before the inner handler sees it (one that does
        not decode is dropped, logged at info: the client's fault, not ours)."""
        if route in self.client:
            try:
                body = self._transcode(agent, route, body)
            except BadRequest as exc:
                log.info("{agent}: notify dropped: {error}", agent=agent, error=exc.msg)
                return None
        return self.inner.notify(agent, route, body)

    def _encode(self, result: object, agent: IAgent, route: str) -> EncodedBody:
        if isinstance(result, EncodedBody):  # the serializer's bytes (a forwarded answer)
            try:
                result = agent.serializer.decode(bytes(result))
            except SerializationError as exc:
                log.error(
                    "answer on {route} is not {serializer}: {error}",
                    route=route,
                    serializer=agent.serializer.name,
                    error=str(exc),
                )
                return EncodedBody(_answer_error(self.server, route, None))
        try:
            return EncodedBody(self.server.encode(route, result))
        except ProtobufError as exc:
            log.error("answer does not fit its server proto: {error}", route=route, error=str(exc))
            return EncodedBody(_answer_error(self.server, route, None))

    def _failed(self, failure: Failure, agent: IAgent, route: str) -> EncodedBody:
        return EncodedBody(_answer_error(self.server, route, failure_response(failure, route)))


class _PushEncoder:
    """Pushes of one serializer: protobuf on routes with a server proto."""

    __slots__ = ("codec", "serializer")

    def __init__(self, codec: ProtobufCodec, serializer: ISerializer) -> None:
        self.codec = codec
        self.serializer = serializer

    def __call__(self, route: str, msg: object) -> bytes:
        codec = self.codec
        if route not in codec:
            return self.serializer.encode(msg)
        try:
            return codec.encode(route, msg)
        except ProtobufError as exc:
            log.error("push does not fit its server proto: {error}", route=route, error=str(exc))
            return b""


@implementer(IHandshakeNegotiator)
class ProtobufNegotiator:
    """``sys.protoVersion`` in a client's handshake turns protobuf on for its connection
    (see the module's documentation)."""

    name = "protobuf"

    def __init__(self, protos: Protos) -> None:
        self.protos = protos
        self.variant: Hashable = ("protobuf", protos.version)
        self._encoders: dict[str, PushEncoder] = {}
        self._wrapped: tuple[IConnectionHandler, ProtobufHandler] | None = None

    def _handler(self, inner: IConnectionHandler) -> ProtobufHandler:
        wrapped = self._wrapped
        if wrapped is None or wrapped[0] is not inner:
            wrapped = self._wrapped = (inner, ProtobufHandler(inner, self.protos))
        return wrapped[1]

    def _push_encoder(self, serializer: ISerializer) -> PushEncoder:
        encoder = self._encoders.get(serializer.name)
        if encoder is None:
            encoder = self._encoders[serializer.name] = _PushEncoder(self.protos.server, serializer)
        return encoder

    def negotiate(self, agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        """Protobuf for a client that sent ``sys.protoVersion``; the protos when its
        version is not ours."""
        assert isinstance(offer, ConnectionOffer)
        sys: dict[str, Any] = handshake.sys
        if "protoVersion" not in sys:
            return
        protos = self.protos
        version = sys["protoVersion"]
        if not version or version != protos.version:
            offer.sys["protos"] = protos.handshake
        offer.sys["useProto"] = True
        offer.handler = self._handler(offer.handler)
        offer.push_encoder = self._push_encoder(offer.serializer)
        offer.push_variant = self.variant
        offer.features.append("protobuf")
