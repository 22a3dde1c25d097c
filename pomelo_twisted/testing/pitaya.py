"""A test client that speaks exactly as libpitaya does (pitaya's C client, behind its
Unity and mobile SDKs), built on the sans-I/O codec.

What it does is what ``topfreegames/libpitaya`` (``src/tr/uv``, v4.6) does:

- its handshake: ``{"sys":{"platform":...,"libVersion":...,"clientBuildNumber":...,
  "clientVersion":...}}`` (plus ``"user"`` when given), and it reads a reply that may
  be zlib- or gzip-compressed;
- requests and notifies with string routes (it holds no route maps), ids least
  significant group first, bodies zlib-compressed with flag 0x10 when that is smaller
  (``compress``, on by default as in libpitaya);
- responses and pushes: a 0x10 body is inflated (zlib or gzip), a response with flag
  0x20 is an error (its body handed over as it is); a push whose route is a code is
  read by the code's high byte only and fails (:class:`PitayaClientError`), as does a
  reply with ``useDict: true`` (libpitaya asserts it holds route maps);
- heartbeats every ``sys.heartbeat`` seconds (a whole number), and it gives up after
  6 intervals without any package from the server.

:class:`PitayaCodec` is the sans-I/O part (bytes in, events out); :class:`PitayaClient`
runs it over a Twisted transport; :func:`connect_pitaya` opens one.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure

from ..interfaces import IServerReactor
from ..protocol.message import FLAG_BODY_COMPRESSED, FLAG_ERROR, inflate_body
from ..protocol.packet import MAX_BODY_LENGTH, PackageDecoder, PackageType, encode_package

__all__ = [
    "LIBPITAYA_SYS",
    "PitayaClient",
    "PitayaClientError",
    "PitayaCodec",
    "PitayaHandshake",
    "PitayaHeartbeat",
    "PitayaKick",
    "PitayaPush",
    "PitayaResponse",
    "connect_pitaya",
]

LIBPITAYA_SYS = {
    "platform": "desktop",
    "libVersion": "4.6.2-",
    "clientBuildNumber": "1",
    "clientVersion": "0.1",
}
"""libpitaya 4.6.2's handshake ``sys`` with its defaults (``pc_lib_init`` without client info)."""

_REQUEST, _NOTIFY, _RESPONSE, _PUSH = 0, 1, 2, 3
_TIMEOUT_INTERVALS = 6  # PC_HEARTBEAT_TIMEOUT_FACTOR + 4 in tcp__heartbeat_timer_cb
_INFLATE_LIMIT = 64 * 1024 * 1024


class PitayaClientError(Exception):
    """The server sent what libpitaya fails on (it would assert or reconnect)."""


@dataclass(frozen=True)
class PitayaHandshake:
    """The server's handshake reply (decoded JSON)."""

    reply: dict[str, Any]


@dataclass(frozen=True)
class PitayaResponse:
    """A response: ``error`` when flag 0x20 was set; ``body`` inflated when it was
    compressed (``compressed``)."""

    id: int
    body: bytes
    error: bool = False
    compressed: bool = False


@dataclass(frozen=True)
class PitayaPush:
    """A push (string route, body inflated when ``compressed``)."""

    route: str
    body: bytes
    compressed: bool = False


@dataclass(frozen=True)
class PitayaHeartbeat:
    """A heartbeat from the server."""


@dataclass(frozen=True)
class PitayaKick:
    """A kick package and its reason."""

    reason: str


PitayaEvent = PitayaHandshake | PitayaResponse | PitayaPush | PitayaHeartbeat | PitayaKick


def _encode_id(msg_id: int) -> bytes:
    """``pc__msg_encode_id``: least significant group first."""
    out = bytearray()
    while True:
        group = msg_id & 0x7F
        msg_id >>= 7
        out.append(group | 0x80 if msg_id else group)
        if not msg_id:
            return bytes(out)


def _looks_compressed(data: bytes) -> bool:
    """libpitaya's ``is_compressed``: a zlib or gzip header."""
    return len(data) > 2 and (
        (data[0] == 0x78 and data[1] in (0x9C, 0x01, 0xDA, 0x5E))
        or (data[0] == 0x1F and data[1] == 0x8B)
    )


class PitayaCodec:
    """libpitaya's side of the wire, sans I/O."""

    def __init__(
        self,
        *,
        compress: bool = True,
        sys: Mapping[str, str] | None = None,
        user: object = None,
    ) -> None:
        self.compress = compress
        """Compress request and notify bodies with zlib when smaller (flag 0x10)."""
        self.sys = dict(LIBPITAYA_SYS if sys is None else sys)
        self.user = user
        self.heartbeat: int | None = None
        """The interval of the handshake reply (whole seconds), once received."""
        self._decoder = PackageDecoder(MAX_BODY_LENGTH)

    # -- what it sends ------------------------------------------------------

    def handshake(self) -> bytes:
        """The handshake package (``tcp__send_handshake``)."""
        body: dict[str, Any] = {"sys": self.sys}
        if self.user is not None:
            body["user"] = self.user
        return encode_package(
            PackageType.HANDSHAKE, json.dumps(body, separators=(",", ":")).encode()
        )

    def ack(self) -> bytes:
        """The handshake ack package."""
        return encode_package(PackageType.HANDSHAKE_ACK)

    def heartbeat_package(self) -> bytes:
        """A heartbeat package."""
        return encode_package(PackageType.HEARTBEAT)

    def request(self, msg_id: int, route: str, body: bytes) -> bytes:
        """A request package (``pc_default_msg_encode``), ``msg_id`` at least 1."""
        return encode_package(PackageType.DATA, self._message(_REQUEST, msg_id, route, body))

    def notify(self, route: str, body: bytes) -> bytes:
        """A notify package."""
        return encode_package(PackageType.DATA, self._message(_NOTIFY, 0, route, body))

    def _message(self, msg_type: int, msg_id: int, route: str, body: bytes) -> bytes:
        compressed = False
        if self.compress and body:  # pc_body_json_encode: only when smaller
            deflated = zlib.compress(body)
            if len(deflated) < len(body):
                body, compressed = deflated, True
        flag = (msg_type << 1) | (FLAG_BODY_COMPRESSED if compressed else 0)
        raw = route.encode("utf-8")
        head = bytes((flag,)) + (_encode_id(msg_id) if msg_type == _REQUEST else b"")
        return head + bytes((len(raw) & 0xFF,)) + raw + body

    # -- what it reads ------------------------------------------------------

    def receive(self, data: bytes) -> list[PitayaEvent]:
        """The events ``data`` completes; raises :class:`PitayaClientError` where
        libpitaya would fail."""
        events: list[PitayaEvent] = []
        for package in self._decoder.feed(data):
            if package.type is PackageType.HANDSHAKE:
                events.append(self._on_handshake(package.body))
            elif package.type is PackageType.HEARTBEAT:
                events.append(PitayaHeartbeat())
            elif package.type is PackageType.DATA:
                events.append(self._on_data(package.body))
            elif package.type is PackageType.KICK:
                reason = json.loads(package.body or b"{}").get("reason", "")
                events.append(PitayaKick(str(reason)))
            else:
                raise PitayaClientError(f"unexpected {package.type.name} package")
        return events

    def _on_handshake(self, body: bytes) -> PitayaHandshake:
        if _looks_compressed(body):
            body = inflate_body(body, _INFLATE_LIMIT)
        reply = json.loads(body)
        if not isinstance(reply, dict) or reply.get("code") != 200:
            raise PitayaClientError(f"handshake failed: {reply!r}")
        sys = reply.get("sys")
        if not isinstance(sys, dict):
            raise PitayaClientError("handshake reply without sys")
        if sys.get("useDict"):
            raise PitayaClientError("useDict in the reply: libpitaya asserts it holds route maps")
        heartbeat = sys.get("heartbeat")
        self.heartbeat = int(heartbeat) if isinstance(heartbeat, (int, float)) else None
        if self.heartbeat is not None and self.heartbeat <= 0:
            self.heartbeat = None
        return PitayaHandshake(reply)

    def _on_data(self, data: bytes) -> PitayaResponse | PitayaPush:
        """``pc_msg_decode_to_raw`` + ``pc_default_msg_decode``."""
        if not data:
            raise PitayaClientError("empty message")
        flag = data[0]
        msg_type = (flag >> 1) & 0x07
        offset = 1
        msg_id = 0
        if msg_type == _RESPONSE:
            shift = 0
            while offset < len(data):
                byte = data[offset]
                offset += 1
                msg_id |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
        elif msg_type != _PUSH:
            raise PitayaClientError(f"a server sent message type {msg_type}")
        route = ""
        if msg_type == _PUSH:
            if flag & 0x01:
                high_byte = data[offset] if offset < len(data) else 0
                raise PitayaClientError(
                    f"push route sent as a code: libpitaya reads only its high byte "
                    f"({high_byte}) and holds no route map"
                )
            length = data[offset]
            route = data[offset + 1 : offset + 1 + length].decode("utf-8")
            offset += 1 + length
        body = data[offset:]
        compressed = bool(flag & FLAG_BODY_COMPRESSED)
        if compressed and body:
            body = inflate_body(body, _INFLATE_LIMIT)
        if msg_type == _PUSH:
            return PitayaPush(route, body, compressed)
        return PitayaResponse(msg_id, body, bool(flag & FLAG_ERROR), compressed)


class PitayaClient(Protocol):
    """A :class:`PitayaCodec` over a transport: requests answered by Deferreds, pushes
    collected, heartbeats on ``clock`` as libpitaya sends them."""

    def __init__(self, clock: IReactorTime, codec: PitayaCodec | None = None) -> None:
        self.clock = clock
        self.codec = codec if codec is not None else PitayaCodec()
        self.ready: Deferred[PitayaClient] = Deferred()
        """Fires once the handshake is answered and acknowledged."""
        self.closed: Deferred[None] = Deferred()
        """Fires when the connection is gone."""
        self.reply: dict[str, Any] = {}
        """The server's handshake reply, once received."""
        self.kicks: list[str] = []
        self.pushes: list[tuple[str, Any]] = []
        self.errors: list[PitayaClientError] = []
        self._next_id = 1
        self._pending: dict[int, Deferred[tuple[Any, bool]]] = {}
        self._waiting_pushes: list[tuple[str, Deferred[Any]]] = []
        self._heartbeat: IDelayedCall | None = None
        self._last_heard = 0.0

    def connectionMade(self) -> None:
        self._last_heard = self.clock.seconds()
        self.transport.write(self.codec.handshake())  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self._last_heard = self.clock.seconds()
        try:
            events = self.codec.receive(data)
        except PitayaClientError as exc:
            self.errors.append(exc)
            self.close()
            return
        for event in events:
            self._dispatch(event)

    def _dispatch(self, event: PitayaEvent) -> None:
        if isinstance(event, PitayaHandshake):
            self.reply = event.reply
            self.transport.write(self.codec.ack())  # type: ignore[union-attr]
            if self.codec.heartbeat is not None:
                self._heartbeat = self.clock.callLater(self.codec.heartbeat, self._beat)
            self.ready.callback(self)
        elif isinstance(event, PitayaResponse):
            answer = self._pending.pop(event.id, None)
            if answer is not None:
                answer.callback((json.loads(event.body) if event.body else None, event.error))
        elif isinstance(event, PitayaPush):
            msg = json.loads(event.body) if event.body else None
            for waiting in self._waiting_pushes:
                if waiting[0] == event.route:
                    self._waiting_pushes.remove(waiting)
                    waiting[1].callback(msg)
                    break
            else:
                self.pushes.append((event.route, msg))
        elif isinstance(event, PitayaKick):
            self.kicks.append(event.reason)

    def _beat(self) -> None:
        """``tcp__heartbeat_timer_cb``: give up after 6 silent intervals, else beat."""
        self._heartbeat = None
        interval = self.codec.heartbeat
        assert interval is not None
        if self.clock.seconds() - self._last_heard > interval * _TIMEOUT_INTERVALS:
            self.close()
            return
        self.transport.write(self.codec.heartbeat_package())  # type: ignore[union-attr]
        self._heartbeat = self.clock.callLater(interval, self._beat)

    def request(self, route: str, msg: object) -> Deferred[tuple[Any, bool]]:
        """Send a request; fires with ``(decoded body, error flag)``."""
        msg_id = self._next_id
        self._next_id += 1
        answer: Deferred[tuple[Any, bool]] = Deferred()
        self._pending[msg_id] = answer
        self.transport.write(self.codec.request(msg_id, route, _json(msg)))  # type: ignore[union-attr]
        return answer

    def notify(self, route: str, msg: object) -> None:
        """Send a notify."""
        self.transport.write(self.codec.notify(route, _json(msg)))  # type: ignore[union-attr]

    def next_push(self, route: str) -> Deferred[Any]:
        """Fires with the next push on ``route`` (one already received first)."""
        for index, (seen, msg) in enumerate(self.pushes):
            if seen == route:
                del self.pushes[index]
                done: Deferred[Any] = Deferred()
                done.callback(msg)
                return done
        waiting: Deferred[Any] = Deferred()
        self._waiting_pushes.append((route, waiting))
        return waiting

    def send_raw(self, data: bytes) -> None:
        """Write ``data`` as it is (e.g. a hand-made package)."""
        self.transport.write(data)  # type: ignore[union-attr]

    def close(self) -> None:
        """Close the connection."""
        self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        self._heartbeat = None
        gone = ConnectionError("the pitaya client's connection is gone")
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            answer.errback(gone)
        waiting, self._waiting_pushes = self._waiting_pushes, []
        for _route, push in waiting:
            push.errback(gone)
        if not self.ready.called:
            self.ready.errback(self.errors[0] if self.errors else gone)
        self.closed.callback(None)


def _json(msg: object) -> bytes:
    return json.dumps({} if msg is None else msg, separators=(",", ":")).encode()


def connect_pitaya(
    reactor: IServerReactor, endpoint: str, codec: PitayaCodec | None = None
) -> Deferred[PitayaClient]:
    """Connect to ``endpoint`` (``tcp:HOST:PORT``); fires with the client once its
    handshake is acknowledged."""
    client = PitayaClient(reactor, codec)
    factory = Factory.forProtocol(lambda: client)
    connected = clientFromString(reactor, endpoint).connect(factory)
    connected.addCallback(lambda _protocol: client.ready)
    return connected
