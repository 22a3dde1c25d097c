"""Every use of a private part of a dependency, in one place.

Twisted, its Banana/PB (``twisted.spread``) and autobahn do not promise these names;
we use them for speed (eager socket writes, a PB message that skips jelly, autobahn's
receive step without its per-read debug formatting). Each is wrapped here in a small
named function or class, so a new version of a dependency breaks this module alone.
``tests/test_compat.py`` checks every one of them against the installed versions on
real objects, and ``setup.cfg`` bounds the dependencies to the major versions that
test has passed with.

- Twisted TCP (``twisted.internet.abstract.FileDescriptor``): :func:`tcp_nothing_queued`
  reads ``_tempDataLen``, ``dataBuffer``, ``_writeDisconnected`` and ``TLS``.
- Twisted endpoints: :func:`endpoint_arguments` calls ``endpoints._parse`` (the
  grammar of ``serverFromString``).
- Banana: :func:`banana_encode` calls ``Banana._encode``.
- PB Broker: :func:`add_broker_verb` relies on ``Broker.expressionReceived`` calling
  ``proto_<verb>`` for a message ``[verb, *args]``.
- Banana's decoder: :func:`banana_bound_depth` replaces its ``listStack`` (the lists
  being decoded, which ``Banana.dataReceived`` appends to) with one refusing to nest
  deeper than a bound.
- PB's portal login: :func:`pb_credentials_broker` reads the ``broker`` of the
  credentials object PB's root hands the portal (``_PortalAuthChallenger``).
- autobahn: :func:`autobahn_feed` calls ``WebSocketProtocol._dataReceived``;
  :func:`autobahn_take_buffer` empties its ``data`` buffer; :data:`AUTOBAHN_FRAME_STEP`
  names the method autobahn calls to parse frames once the opening handshake is done
  (``processData``), which a protocol overrides to take the frames over. The WebSocket
  acceptor also relies on autobahn refusing every bad upgrade request through
  ``failHandshake`` (overridden to answer quietly and count it), and on a request head
  fed whole in one :func:`autobahn_feed` call being answered at once (pinned by
  ``tests/acceptors/test_websocket.py``).
- twisted.logger: :func:`file_observer_output` reads a ``FileLogObserver``'s
  ``_outFile`` (where twistd's log observer writes, for ``--log-format json``).
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING, Any

from twisted.spread import pb
from twisted.spread.banana import BananaError

if TYPE_CHECKING:
    from autobahn.websocket.protocol import WebSocketProtocol
    from twisted.spread.banana import Banana

__all__ = [
    "AUTOBAHN_FRAME_STEP",
    "add_broker_verb",
    "autobahn_feed",
    "autobahn_take_buffer",
    "banana_bound_depth",
    "banana_encode",
    "endpoint_arguments",
    "pb_credentials_broker",
    "tcp_nothing_queued",
]


# -- Twisted endpoints ----------------------------------------------------------------


def endpoint_arguments(description: str) -> tuple[list[str], dict[str, str]]:
    """An endpoint string as ``serverFromString`` reads it: its positional arguments (the
    type first) and its keyword arguments, unescaped (``endpoints._parse``)."""
    from twisted.internet.endpoints import _parse

    args, kwargs = _parse(description)
    return [str(a) for a in args], {str(k): str(v) for k, v in kwargs.items()}


# -- Twisted TCP ----------------------------------------------------------------------


def tcp_nothing_queued(transport: Any) -> bool:
    """Whether a plain Twisted TCP transport (``tcp.Connection``) holds no unsent bytes
    and is open for writing: nothing buffered (``dataBuffer``, ``_tempDataLen``),
    connected, not closing, its write side not shut, not switched to TLS."""
    return not (
        transport._tempDataLen
        or transport.dataBuffer
        or not transport.connected
        or transport.disconnecting
        or transport._writeDisconnected
        or transport.TLS
    )


# -- Banana / PB ----------------------------------------------------------------------


def banana_encode(codec: Banana, obj: object) -> bytes:
    """``obj`` encoded as ``codec`` (a Banana, e.g. a PB Broker) writes it, with its
    vocabulary, in one bytes object (``Banana.sendEncoded`` without the write)."""
    stream = BytesIO()
    codec._encode(obj, stream.write)
    return stream.getvalue()


def add_broker_verb(broker_class: type[pb.Broker], verb: str, handler: Callable[..., None]) -> None:
    """Make ``broker_class`` hand a Banana message ``[verb, *args]`` (sent with
    ``broker.sendEncoded([verb.encode(), *args])``) to ``handler(broker, *args)``."""
    setattr(broker_class, "proto_" + verb, handler)


class _DepthBoundStack(list[Any]):
    """Banana's stack of lists being decoded, refusing to grow past ``limit``."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def append(self, item: Any) -> None:
        if len(self) >= self.limit:
            raise BananaError(f"lists nested deeper than {self.limit}")
        super().append(item)


def banana_bound_depth(codec: Banana, depth: int) -> None:
    """Make ``codec`` refuse (``BananaError`` from ``dataReceived``) a message whose lists
    nest deeper than ``depth``, before it holds them: a deep list costs nothing but its
    first ``depth`` levels. Call it before any byte is received."""
    codec.listStack = _DepthBoundStack(depth)


def pb_credentials_broker(credentials: object) -> pb.Broker | None:
    """The broker a PB portal login came in on: PB hands ``Portal.login`` its challenger
    as the credentials, which keeps the broker (None for any other credentials)."""
    broker = getattr(credentials, "broker", None)
    return broker if isinstance(broker, pb.Broker) else None


# -- autobahn -------------------------------------------------------------------------

#: The method autobahn's WebSocketProtocol calls to parse frames from its ``data``
#: buffer once the opening handshake is done (including bytes that came in the same
#: read as the handshake); a protocol overrides it to take the frames over.
AUTOBAHN_FRAME_STEP = "processData"


def autobahn_feed(protocol: WebSocketProtocol, data: bytes) -> None:
    """Feed received bytes to autobahn's protocol machinery: what its Twisted
    ``dataReceived`` does, without formatting a debug line on every read."""
    protocol._dataReceived(data)


def autobahn_take_buffer(protocol: WebSocketProtocol) -> bytes:
    """The bytes autobahn has buffered and not parsed yet, leaving its buffer empty."""
    data: bytes = protocol.data
    protocol.data = b""
    return data


def file_observer_output(observer: object) -> Any:
    """The file a ``twisted.logger.FileLogObserver`` writes to (twistd's log: stdout or
    its ``--logfile``), or None for another kind of observer."""
    from twisted.logger import FileLogObserver

    if isinstance(observer, FileLogObserver):
        return getattr(observer, "_outFile", None)
    return None
