"""libpitaya, served as a pitaya server serves it.

What libpitaya (``topfreegames/libpitaya``, ``src/tr/uv``) does on the wire, and what
:class:`PitayaNegotiator` answers:

- Its handshake's ``sys`` holds ``platform``, ``libVersion``, ``clientBuildNumber`` and
  ``clientVersion`` (:func:`is_libpitaya`), never ``dictVersion``.
- Routes: it never reads route maps from the handshake; on ``useDict: true`` it asserts
  that it already holds some, and it reads a compressed route code by its high byte
  only. It gets ``useDict`` only when its handshake says it holds a dictionary
  (``sys.dictVersion``), and pushes always carry string routes.
- Bodies: it zlib-compresses a request or notify body when that is smaller and sets
  flag 0x10; it inflates zlib or gzip bodies sent with 0x10. The connection inflates
  them (:func:`~pomelo_twisted.protocol.message.inflate_body`, capped by
  ``max_inflated_body``); with the connector setting ``compress_bodies`` responses and
  pushes go compressed too when smaller (as pitaya's ``dataCompression``).
- Errors: it reports an error only for a response with flag 0x20, whose body it hands
  to the game as it is. Our error bodies (``{"code": N, "msg": ...}``, N != 200, from
  ``errors.error_response``/``responses.failure_response``, local or forwarded) go with
  0x20 in pitaya's shape (:func:`pitaya_error`).
- Heartbeats: it sends one every ``sys.heartbeat`` seconds (read as a whole number)
  and reconnects after 6 intervals without any package from the server. A pitaya server
  closes a client silent for 2 intervals, as ours does; ours answers each of its
  heartbeats, so it hears from the server every interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zope.interface import implementer

from ..agent.negotiation import ConnectionOffer
from ..errors import SerializationError
from ..interfaces import IAgent, IHandshakeNegotiator, ISerializer
from ..protocol import ClientHandshake, ServerConnection
from ..protocol.message import deflate_body
from ..responses import EncodedBody

__all__ = [
    "LIBPITAYA_SYS",
    "PITAYA_CODES",
    "PitayaNegotiator",
    "PitayaResponses",
    "is_libpitaya",
    "pitaya_error",
]

LIBPITAYA_SYS = ("platform", "libVersion", "clientBuildNumber", "clientVersion")
"""The ``sys`` fields of libpitaya's handshake (``tcp__send_handshake``)."""

PITAYA_CODES = {400: "PIT-400", 404: "PIT-404", 500: "PIT-500"}
"""pitaya's own error codes (``pkg/errors``) for ours; any other code N is ``PIT-N``."""


def is_libpitaya(sys: Mapping[str, Any]) -> bool:
    """Whether a handshake's ``sys`` is libpitaya's (``platform`` and ``libVersion``
    strings: pitaya's ``HandshakeClientData``)."""
    return isinstance(sys.get("platform"), str) and isinstance(sys.get("libVersion"), str)


def pitaya_error(body: object) -> dict[str, Any] | None:
    """pitaya's error shape (``code`` like ``PIT-404``, ``msg``, ``metadata``) of one of
    our error bodies, ``{"code": N, "msg": text}`` with N != 200; None for any other body.

    Other fields of the body go to ``metadata`` as strings (pitaya's
    ``map[string]string``); the ``metadata`` object is always there.
    """
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    msg = body.get("msg")
    if type(code) is not int or code == 200 or not isinstance(msg, str):
        return None
    metadata = {
        str(key): value if isinstance(value, str) else str(value)
        for key, value in body.items()
        if key not in ("code", "msg")
    }
    return {"code": PITAYA_CODES.get(code, f"PIT-{code}"), "msg": msg, "metadata": metadata}


class PitayaResponses:
    """The :data:`~pomelo_twisted.agent.negotiation.ResponseEncoder` of a libpitaya
    connection: errors with flag 0x20 in pitaya's shape, bodies compressed with 0x10
    when ``compress`` and smaller."""

    __slots__ = ("compress", "serializer")

    def __init__(self, serializer: ISerializer, compress: bool = False) -> None:
        self.serializer = serializer
        self.compress = compress

    def __repr__(self) -> str:
        return f"<PitayaResponses serializer={self.serializer.name} compress={self.compress}>"

    def __call__(self, connection: ServerConnection, msg_id: int, body: object) -> bytes:
        """The package answering request ``msg_id`` with ``body``."""
        serializer = self.serializer
        if isinstance(body, EncodedBody):  # forwarded: decoded only to see if it is an error
            data = bytes(body)
            try:
                error = pitaya_error(serializer.decode(data))
            except SerializationError:
                error = None
            if error is not None:
                data = serializer.encode(error)
        else:
            obj = {} if body is None else body
            error = pitaya_error(obj)
            data = serializer.encode(obj if error is None else error)
        compressed = deflate_body(data) if self.compress else None
        return connection.send_response_flagged(
            msg_id,
            data if compressed is None else compressed,
            compressed=compressed is not None,
            error=error is not None,
        )


@implementer(IHandshakeNegotiator)
class PitayaNegotiator:
    """Serves a libpitaya handshake (:func:`is_libpitaya`) as a pitaya server does; any
    other client is left as it is. ``compress_bodies``: responses and pushes go
    zlib-compressed with flag 0x10 when smaller."""

    name = "pitaya"

    def __init__(self, compress_bodies: bool = False) -> None:
        self.compress_bodies = compress_bodies

    def negotiate(self, agent: IAgent, handshake: ClientHandshake, offer: object) -> None:
        """Make ``offer`` what libpitaya reads, when the client is libpitaya."""
        assert isinstance(offer, ConnectionOffer)
        if not is_libpitaya(handshake.sys):
            return
        offer.features.append("pitaya")
        if handshake.dict_version is None:  # it holds no route maps: string routes only
            offer.use_dict = False
        offer.compress_pushes = False  # it reads a route code by its high byte only
        offer.response_encoder = PitayaResponses(offer.serializer, self.compress_bodies)
        if self.compress_bodies:
            offer.deflate_pushes = True
            offer.push_variant = ("deflate", offer.push_variant)
            offer.features.append("compress_bodies")
