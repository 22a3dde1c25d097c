"""PbRpcTransport: server-to-server calls over Perspective Broker, for a real cluster.

Each server listens for RPC on its ``port`` (an endpoint string, loopback by
default) and keeps one persistent, reconnecting, authenticated connection to
every peer (:class:`~pomelo_twisted.rpc.pbconnection.PersistentLogin`). What
crosses is narrow on purpose:

- the only remote method is ``call(target, service, method, payload)``: two
  strings name a *declared* remote (the server's ``RemoteDispatcher`` refuses
  anything else) and ``payload`` is the msgpack ``bytes`` of the argument list.
  Anything that is not ``str``/``bytes`` is refused before it is looked at;
  nothing is jellied but those four values;
- the answer is msgpack ``bytes`` of an envelope: ``[0, result]``,
  ``[1, code, msg]`` for a ``HandlerError`` (re-raised as such on the caller,
  so a forwarded request keeps the backend's code) or ``[2, message]`` for
  any other failure (an ``RpcError`` on the caller).

Calls to a peer that is down fail at once (``RpcError``: no connection), calls
in flight fail when their connection is lost, and every call has a deadline
(``RpcTimeout``; a later answer is dropped and counted). Calls to a server id
registered in this process go through an in-process transport.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable, Sequence
from types import CoroutineType
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, fail, succeed
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb
from zope.interface import implementer

from ..cluster.server_info import ServerInfo
from ..errors import HandlerError, PomeloError, RpcError, RpcTimeout
from ..interfaces import INetworkRpcTransport
from .local import Dispatcher, LocalRpcTransport
from .metrics import RpcCounters
from .payload import pack_plain, unpack_plain
from .pbauth import make_portal
from .pbconnection import PersistentLogin

__all__ = ["PbRpcTransport", "RpcAvatar", "answer_envelope"]

log = Logger()

OK, HANDLER_ERROR, ERROR = 0, 1, 2


def answer_envelope(result: object) -> bytes:
    """The answer bytes of a result (``ValueError`` when it is not plain data)."""
    return pack_plain([OK, result])


def _error_envelope(failure: Failure, where: str) -> bytes:
    exc = failure.value
    if isinstance(exc, HandlerError):
        return pack_plain([HANDLER_ERROR, exc.code, exc.msg])
    if not isinstance(exc, PomeloError):
        log.failure("{where} failed", failure, where=where)
        return pack_plain([ERROR, f"{type(exc).__name__}: {exc}"])
    return pack_plain([ERROR, str(exc)])


class RpcAvatar(pb.Avatar):
    """What a peer that logged in may do on this server's RPC port: ``call``."""

    def __init__(self, transport: PbRpcTransport, peer: str) -> None:
        self.transport = transport
        self.peer = peer

    def perspective_call(
        self, target: object, service: object, method: object, payload: object
    ) -> Deferred[bytes] | bytes:
        """Run ``service.method(*args)`` of server ``target``; the answer envelope."""
        if not (
            type(target) is str
            and type(service) is str
            and type(method) is str
            and type(payload) is bytes
        ):
            kinds = ", ".join(type(v).__name__ for v in (target, service, method, payload))
            log.warn(
                "refused an rpc from {peer} with arguments ({kinds})", peer=self.peer, kinds=kinds
            )
            return pack_plain([ERROR, f"refused: expected (str, str, str, bytes), got ({kinds})"])
        where = f"remote {service}.{method} on server {target} (called by {self.peer})"
        dispatcher = self.transport.dispatcher(target)
        if dispatcher is None:
            return pack_plain([ERROR, f"server {target!r} is not served at this address"])
        try:
            args = unpack_plain(payload)
            if not isinstance(args, list):
                raise ValueError("the arguments are not a list")
        except ValueError as exc:
            return pack_plain([ERROR, f"{where}: bad arguments payload ({exc})"])
        try:
            result = dispatcher(service, method, args)
        except Exception:
            return _error_envelope(Failure(), where)
        if isinstance(result, CoroutineType):
            result = ensureDeferred(result)
        if not isinstance(result, Deferred):
            return self._answer(result, where)
        d: Deferred[bytes] = result.addCallbacks(
            self._answer, _error_envelope, callbackArgs=(where,), errbackArgs=(where,)
        )
        return d

    def _answer(self, result: object, where: str) -> bytes:
        try:
            return answer_envelope(result)
        except ValueError as exc:
            return pack_plain([ERROR, f"{where}: the result is not plain data ({exc})"])


class _Peer:
    """One peer server: its address and the connection to it."""

    __slots__ = ("connection", "info")

    def __init__(self, info: ServerInfo, connection: PersistentLogin) -> None:
        self.info = info
        self.connection = connection


class _Call:
    """One call in flight: its caller's Deferred and its deadline."""

    __slots__ = ("counters", "deferred", "done", "label", "timeout", "timer")

    def __init__(self, label: str, timeout: float, counters: RpcCounters) -> None:
        self.label = label
        self.timeout = timeout
        self.counters = counters
        self.done = False
        self.timer: IDelayedCall | None = None
        self.deferred: Deferred[Any] = Deferred(self._cancel)

    def _cancel(self, _: Deferred[Any]) -> None:
        self.finish()

    def finish(self) -> bool:
        """Mark answered; False when it was answered (or expired) already."""
        if self.done:
            self.counters.late += 1
            return False
        self.done = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        return True

    def expire(self) -> None:
        self.timer = None
        if self.finish():
            self.counters.timeouts += 1
            self.deferred.errback(
                RpcTimeout(f"{self.label} timed out after {self.timeout:g} seconds")
            )

    def answered(self, data: object) -> None:
        if not self.finish():
            return
        try:
            envelope = unpack_plain(data) if type(data) is bytes else None
        except ValueError:
            envelope = None
        if not isinstance(envelope, list) or not envelope:
            self._fail(RpcError(f"{self.label}: the peer sent a malformed answer"))
        elif envelope[0] == OK and len(envelope) == 2:
            self.deferred.callback(envelope[1])
        elif envelope[0] == HANDLER_ERROR and len(envelope) == 3:
            self._fail(HandlerError(int(envelope[1]), str(envelope[2])))
        else:
            self._fail(RpcError(f"{self.label} failed: {envelope[-1]}"))

    def failed(self, failure: Failure) -> None:
        if not self.finish():
            return
        if failure.check(pb.PBConnectionLost):
            self._fail(RpcError(f"{self.label}: the connection was lost before the answer"))
        else:
            self._fail(RpcError(f"{self.label} failed: {failure.getErrorMessage()}"))

    def _fail(self, error: Exception) -> None:
        self.counters.failures += 1
        self.deferred.errback(error)


def _connect_endpoint(reactor: Any) -> Callable[[ServerInfo], IStreamClientEndpoint]:
    def connect(info: ServerInfo) -> IStreamClientEndpoint:
        return clientFromString(reactor, info.rpc_client_endpoint)

    return connect


@implementer(INetworkRpcTransport)
class PbRpcTransport:
    """Calls to peer servers over PB, and this process's own servers in-process."""

    def __init__(
        self,
        reactor: Any,
        name: str,
        secret: bytes,
        *,
        rng: random_module.Random | None = None,
        connect: Callable[[ServerInfo], IStreamClientEndpoint] | None = None,
        server_endpoint: Callable[[str], IStreamServerEndpoint] | None = None,
        initial_delay: float = 0.1,
        max_delay: float = 2.0,
        login_timeout: float = 5.0,
    ) -> None:
        self._reactor = reactor
        self.name = name
        self._secret = secret
        self._rng = rng or random_module.Random()
        self._connect = connect or _connect_endpoint(reactor)
        self._server_endpoint = server_endpoint or (lambda s: serverFromString(reactor, s))
        self._delays = (initial_delay, max_delay, login_timeout)
        self._local = LocalRpcTransport(reactor)
        self._dispatchers: dict[str, Dispatcher] = {}
        self._peers: dict[str, _Peer] = {}
        self._counters: dict[str, RpcCounters] = {}
        self._port: IListeningPort | None = None
        #: Calls to a server id that is neither served here nor a known peer.
        self.unknown_calls = 0

    def __repr__(self) -> str:
        return f"<PbRpcTransport {self.name}: peers {sorted(self._peers)}>"

    # -- serving ----------------------------------------------------------------------

    def register(self, server_id: str, dispatcher: object) -> None:
        """Serve calls to ``server_id`` (from peers, and in-process)."""
        self._local.register(server_id, dispatcher)
        self._dispatchers[server_id] = dispatcher  # type: ignore[assignment]

    def unregister(self, server_id: str) -> None:
        """Stop serving ``server_id``."""
        self._local.unregister(server_id)
        self._dispatchers.pop(server_id, None)

    def dispatcher(self, server_id: str) -> Dispatcher | None:
        """The dispatcher serving ``server_id`` here, if any."""
        return self._dispatchers.get(server_id)

    def server_factory(self) -> pb.PBServerFactory:
        """The PB factory of the RPC port: a portal guarded by the cluster secret."""
        portal = make_portal(self._secret, lambda peer, _mind: RpcAvatar(self, peer))
        factory = pb.PBServerFactory(portal)
        factory.noisy = False
        return factory

    def listen(self, endpoint: str) -> Deferred[IListeningPort]:
        """Listen for peers on ``endpoint`` (an endpoint string)."""
        d: Deferred[IListeningPort] = self._server_endpoint(endpoint).listen(self.server_factory())

        def listening(port: IListeningPort) -> IListeningPort:
            self._port = port
            return port

        return d.addCallback(listening)

    def stop(self) -> Deferred[None]:
        """Stop listening and close every peer connection."""
        waits: list[Deferred[Any]] = [peer.connection.stop() for peer in self._peers.values()]
        if self._port is not None:
            port, self._port = self._port, None
            waits.append(Deferred.fromCoroutine(_stop_listening(port)))
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    # -- peers --------------------------------------------------------------------------

    def add_peer(self, info: ServerInfo) -> None:  # type: ignore[override]
        """Keep a connection to ``info`` (replacing one to another address)."""
        if info.id in self._dispatchers:
            return
        current = self._peers.get(info.id)
        if current is not None:
            if (current.info.host, current.info.port) == (info.host, info.port):
                current.info = info
                return
            current.connection.stop()
        initial, maximum, login_timeout = self._delays
        connection = PersistentLogin(
            self._connect(info),
            self.name,
            self._secret,
            clock=self._reactor,
            jitter=lambda: self._rng.random() * initial,
            initial_delay=initial,
            max_delay=maximum,
            login_timeout=login_timeout,
            description=f"server {info.id} ({info.host}:{info.port})",
        )
        self._peers[info.id] = _Peer(info, connection)
        self._counters.setdefault(info.id, RpcCounters())
        connection.start()

    def remove_peer(self, server_id: str) -> Deferred[None]:
        """Forget a peer: close its connection; calls to it fail as unknown."""
        peer = self._peers.pop(server_id, None)
        return succeed(None) if peer is None else peer.connection.stop()

    def reconnect(self, server_id: str) -> None:
        """The peer is up again (the master says so): connect now, not after the backoff."""
        peer = self._peers.get(server_id)
        if peer is not None:
            peer.connection.reconnect_now()

    def peer_state(self, server_id: str) -> str | None:
        """``connecting``, ``up`` or ``down``; None for an unknown peer."""
        peer = self._peers.get(server_id)
        return None if peer is None else peer.connection.state

    def peers(self) -> dict[str, str]:
        """Each peer's id and state."""
        return {sid: peer.connection.state for sid, peer in sorted(self._peers.items())}

    def when_peers_up(self, timeout: float, interval: float = 0.05) -> Deferred[list[str]]:
        """Fires once every peer is up, or after ``timeout`` seconds with the ids still not up."""
        deadline = self._reactor.seconds() + timeout
        done: Deferred[list[str]] = Deferred()

        def check() -> None:
            waiting = [
                sid for sid, peer in sorted(self._peers.items()) if peer.connection.state != "up"
            ]
            if not waiting or self._reactor.seconds() >= deadline:
                done.callback(waiting)
            else:
                self._reactor.callLater(interval, check)

        check()
        return done

    def counters(self, server_id: str) -> RpcCounters:
        """The counters of calls to ``server_id``."""
        if server_id in self._dispatchers:
            return self._local.counters(server_id)
        return self._counters.get(server_id) or RpcCounters()

    # -- calls --------------------------------------------------------------------------

    def call(
        self, server_id: str, service: str, method: str, args: Sequence[Any], timeout: float
    ) -> Deferred[Any]:
        """A Deferred of ``service.method(*args)`` on ``server_id``; never raises."""
        if server_id in self._dispatchers:
            return self._local.call(server_id, service, method, tuple(args), timeout)
        label = f"rpc {service}.{method} to server {server_id!r}"
        peer = self._peers.get(server_id)
        if peer is None:
            self.unknown_calls += 1
            return fail(RpcError(f"{label}: unknown server"))
        counters = self._counters[server_id]
        counters.calls += 1
        avatar = peer.connection.avatar
        if avatar is None:
            counters.failures += 1
            why = peer.connection.last_error or "not connected yet"
            return fail(RpcError(f"{label}: the server is down ({why})"))
        if not timeout > 0:
            counters.failures += 1
            return fail(RpcError(f"{label}: timeout must be positive, not {timeout!r}"))
        try:
            payload = pack_plain(list(args))
        except ValueError as exc:
            counters.failures += 1
            return fail(RpcError(f"{label}: arguments are not plain data ({exc})"))
        call = _Call(label, timeout, counters)
        call.timer = self._reactor.callLater(timeout, call.expire)
        try:
            d: Deferred[Any] = avatar.callRemote("call", server_id, service, method, payload)
        except Exception:  # a broker torn down under us
            call.failed(Failure())
            return call.deferred
        d.addCallbacks(call.answered, call.failed)
        return call.deferred


async def _stop_listening(port: IListeningPort) -> None:
    await port.stopListening()  # type: ignore[misc]
