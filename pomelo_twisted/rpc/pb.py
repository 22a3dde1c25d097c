"""PbRpcTransport: server-to-server calls over Perspective Broker, for a real cluster.

Each server listens for RPC on its ``port`` (an endpoint string, loopback by
default) and keeps one persistent, reconnecting, authenticated connection to
every peer (:class:`~pomelo_twisted.rpc.pbconnection.PersistentLogin`). Calls
and answers travel in batches, and what crosses is narrow on purpose:

- the calls made to a peer during one reactor turn leave at the end of the turn
  as ONE one-way PB message ``calls(batch)`` to the peer's avatar: ``batch`` is
  msgpack ``bytes`` of a list of ``[id, target, service, method, args]``, the
  strings naming a *declared* remote (the ``RemoteDispatcher`` refuses anything
  else). A ``batch`` that is not ``bytes`` is refused before it is looked at;
- the answers ready during one turn go back as ONE one-way message
  ``answers(batch)`` to the caller's *answer sink* (the PB "mind" it gave at
  login): msgpack ``bytes`` of ``[id, 0, result]``, ``[id, 1, code, msg]`` for a
  ``HandlerError`` (re-raised as such, so a forwarded request keeps the
  backend's code) or ``[id, 2, message]`` (an ``RpcError``). Each call is
  answered on its own: a slow or failing call holds back or fails no other.

Once logged in, a batch crosses as a bare Banana message ``[b"batch", bytes]``
(:meth:`~pomelo_twisted.rpc.pbconnection.NoDelayBroker.send_batch`), which a
broker accepts only after its login through the portal: jelly and PB's message
dispatch, most of a PB message's cost when it carries one call, are skipped; the
PB ``calls``/``answers`` methods remain for brokers of other kinds. Banana's
per-message cost is so paid once per batch. A batch stays under banana's 640 KiB
limit on a string (a bigger one is split); a single call or answer above it fails
on its own, at once.

Calls to a peer that is down fail at once, calls in flight (queued or sent)
fail when their connection is lost, and every call has a deadline
(``RpcTimeout``; a later answer is dropped and counted), all kept by one timer
(:class:`~pomelo_twisted.rpc.local.Deadlines`). Calls to a server id registered
in this process go in-process. PB connections set ``TCP_NODELAY``.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.spread import pb
from zope.interface import implementer

from ..errors import HandlerError, RpcError, RpcTimeout
from ..gameconfig import ServerInfo
from ..interfaces import INetworkRpcTransport
from .local import Deadlines, Dispatcher, LocalRpcTransport, entry_point
from .metrics import RpcCounters
from .payload import chunks, pack_array, pack_plain, unpack_plain
from .pbauth import make_portal
from .pbavatar import MAX_BATCH, RpcAvatar, _AnswerSink
from .pbconnection import NoDelayBroker, PersistentLogin
from .remotes import ERROR, HANDLER_ERROR, OK

__all__ = ["MAX_BATCH", "PbRpcTransport", "RpcAvatar"]

log = Logger()


class _Peer:
    """One peer server: its address, the connection to it, the calls on that connection."""

    __slots__ = ("channel", "connection", "info")

    def __init__(self, info: ServerInfo, connection: PersistentLogin) -> None:
        self.info = info
        self.connection = connection
        self.channel: _Channel | None = None


class _Channel:
    """The calls made over one logged-in connection to a peer: queued until the end of
    the reactor turn, then sent as one batch; kept by id until answered."""

    __slots__ = (
        "avatar",
        "broker",
        "calls",
        "counters",
        "deadlines",
        "flush",
        "queue",
        "server_id",
    )

    def __init__(
        self, server_id: str, avatar: Any, counters: RpcCounters, deadlines: Deadlines
    ) -> None:
        self.server_id = server_id
        self.avatar = avatar
        self.broker: pb.Broker = avatar.broker
        self.counters = counters
        self.deadlines = deadlines
        self.calls: dict[int, _Call] = {}
        self.queue: list[_Call] = []
        self.flush: IDelayedCall | None = None


class _Call:
    """One call in flight: its caller's Deferred, its batch item until sent, its deadline."""

    __slots__ = (
        "call_id",
        "channel",
        "deadline",
        "deferred",
        "done",
        "item",
        "method",
        "service",
        "timeout",
    )

    def __init__(
        self,
        channel: _Channel,
        call_id: int,
        service: str,
        method: str,
        timeout: float,
        item: bytes,
    ) -> None:
        self.channel = channel
        self.call_id = call_id
        self.service = service
        self.method = method
        self.timeout = timeout
        self.deadline = 0.0
        self.item: bytes | None = item
        self.done = False
        self.deferred: Deferred[Any] = Deferred(self._cancel)

    def __str__(self) -> str:
        return _label(self.channel.server_id, self.service, self.method)

    def _cancel(self, _: Deferred[Any]) -> None:
        self.finish()

    def finish(self) -> bool:
        """Mark answered; False when it was answered (or expired) already."""
        channel = self.channel
        if self.done:
            channel.counters.late += 1
            return False
        self.done = True
        self.item = None
        channel.calls.pop(self.call_id, None)
        channel.deadlines.remove(self)
        return True

    def expire(self) -> None:
        """The deadline passed first."""
        if not self.done and self.finish():
            self.channel.counters.timeouts += 1
            self.deferred.errback(RpcTimeout(f"{self} timed out after {self.timeout:g} seconds"))

    def answered(self, answer: list[Any]) -> None:
        """``answer`` is ``[id, kind, ...]`` from the peer."""
        if not self.finish():
            return
        kind, size = answer[1], len(answer)
        if kind == OK and size == 3:
            self.deferred.callback(answer[2])
        elif kind == HANDLER_ERROR and size == 4 and type(answer[2]) is int:
            self._fail(HandlerError(answer[2], str(answer[3])))
        elif kind == ERROR and size == 3:
            self._fail(RpcError(f"{self} failed: {answer[2]}"))
        else:
            self._fail(RpcError(f"{self}: the peer sent a malformed answer"))

    def lost(self, why: str) -> None:
        """The connection went (or the call could not be sent) before the answer."""
        if self.finish():
            self._fail(RpcError(f"{self}: {why}"))

    def _fail(self, error: Exception) -> None:
        self.channel.counters.failures += 1
        self.deferred.errback(error)


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
        self._connect = connect or (lambda p: clientFromString(reactor, p.rpc_client_endpoint))
        self._server_endpoint = server_endpoint or (lambda s: serverFromString(reactor, s))
        self._delays = (initial_delay, max_delay, login_timeout)
        self._local = LocalRpcTransport(reactor)
        self._dispatchers: dict[str, Dispatcher] = {}
        self._peers: dict[str, _Peer] = {}
        self._counters: dict[str, RpcCounters] = {}
        self._deadlines = Deadlines(reactor)
        self._ids = count(1)
        self._port: IListeningPort | None = None
        #: Calls to a server id that is neither served here nor a known peer.
        self.unknown_calls = 0
        #: ``calls`` messages sent (each a batch of one or more calls).
        self.batches_sent = 0

    def __repr__(self) -> str:
        return f"<PbRpcTransport {self.name}: peers {sorted(self._peers)}>"

    # -- serving ----------------------------------------------------------------------

    def register(self, server_id: str, dispatcher: object) -> None:
        """Serve calls to ``server_id`` (from peers, and in-process)."""
        self._local.register(server_id, dispatcher)
        self._dispatchers[server_id] = entry_point(dispatcher)  # type: ignore[arg-type]

    def unregister(self, server_id: str) -> None:
        """Stop serving ``server_id``."""
        self._local.unregister(server_id)
        self._dispatchers.pop(server_id, None)

    def dispatcher(self, server_id: str) -> Dispatcher | None:
        """The dispatcher serving ``server_id`` here, if any."""
        return self._dispatchers.get(server_id)

    def server_factory(self) -> pb.PBServerFactory:
        """The PB factory of the RPC port: a portal guarded by the cluster secret."""
        portal = make_portal(self._secret, lambda peer, mind: RpcAvatar(self, peer, mind))
        factory = pb.PBServerFactory(portal)
        factory.protocol = NoDelayBroker
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
            mind=_AnswerSink(self, info.id),
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
        """A Deferred of ``service.method(*args)`` on ``server_id``; never raises.

        The call joins the batch to ``server_id`` sent at the end of this reactor turn.
        """
        if server_id in self._dispatchers:
            return self._local.call(server_id, service, method, tuple(args), timeout)
        peer = self._peers.get(server_id)
        if peer is None:
            self.unknown_calls += 1
            return fail(RpcError(f"{_label(server_id, service, method)}: unknown server"))
        counters = self._counters[server_id]
        counters.calls += 1
        avatar = peer.connection.avatar
        if avatar is None or avatar.broker.disconnected:
            counters.failures += 1
            why = peer.connection.last_error or "not connected yet"
            label = _label(server_id, service, method)
            return fail(RpcError(f"{label}: the server is down ({why})"))
        if not timeout > 0:
            counters.failures += 1
            label = _label(server_id, service, method)
            return fail(RpcError(f"{label}: timeout must be positive, not {timeout!r}"))
        call_id = next(self._ids)
        try:
            if type(args) not in (tuple, list):
                args = list(args)
            item = pack_plain([call_id, server_id, service, method, args])
        except ValueError as exc:
            counters.failures += 1
            label = _label(server_id, service, method)
            return fail(RpcError(f"{label}: arguments are not plain data ({exc})"))
        if len(item) > MAX_BATCH:
            counters.failures += 1
            label = _label(server_id, service, method)
            size = f"{len(item)} bytes, at most {MAX_BATCH}"
            return fail(RpcError(f"{label}: the arguments are too large ({size})"))
        channel = peer.channel
        if channel is None or channel.avatar is not avatar:
            channel = self._open(peer, avatar)
        call = _Call(channel, call_id, service, method, timeout, item)
        channel.calls[call_id] = call
        channel.queue.append(call)
        if channel.flush is None:
            channel.flush = self._reactor.callLater(0, self._send, channel)
        self._deadlines.add(call)
        return call.deferred

    def _open(self, peer: _Peer, avatar: pb.RemoteReference) -> _Channel:
        """A channel for the calls over ``avatar``'s connection, failed when it is lost."""
        server_id = peer.info.id
        channel = _Channel(server_id, avatar, self._counters[server_id], self._deadlines)
        peer.channel = channel
        broker = channel.broker
        if isinstance(broker, NoDelayBroker):  # the peer's answers come as batch messages
            broker.batch_receiver = lambda batch: self._answered(server_id, broker, batch)
        broker.notifyOnDisconnect(lambda: self._lost(peer, channel))
        return channel

    def _lost(self, peer: _Peer, channel: _Channel) -> None:
        if peer.channel is channel:
            peer.channel = None
        if channel.flush is not None and channel.flush.active():
            channel.flush.cancel()
        channel.flush = None
        channel.queue = []
        calls, channel.calls = channel.calls, {}
        for call in calls.values():
            call.lost("the connection was lost before the answer")

    def _send(self, channel: _Channel) -> None:
        """End of the turn: the queued calls leave as one batch (or a few, if large)."""
        channel.flush = None
        queue, channel.queue = channel.queue, []
        calls = [call for call in queue if call.item is not None]  # not ended meanwhile
        if not calls:
            return
        items: list[bytes] = []
        for call in calls:
            items.append(call.item)  # type: ignore[arg-type]
            call.item = None
        broker = channel.broker
        for chunk in chunks(items, MAX_BATCH):
            try:
                if isinstance(broker, NoDelayBroker):
                    if broker.disconnected:
                        raise pb.DeadReferenceError("Calling Stale Broker")
                    broker.send_batch(pack_array(chunk))
                else:
                    channel.avatar.callRemote("calls", pack_array(chunk), pbanswer=False)
            except Exception:  # the broker is gone: _lost fails (or failed) the calls
                log.failure("sending a batch of rpcs failed")
                for call in calls:
                    call.lost("the batch could not be sent")
                return
            self.batches_sent += 1

    def _answered(self, peer_id: str, broker: pb.Broker, batch: object) -> None:
        """Answers from ``peer_id`` on ``broker``: each to its call."""
        peer = self._peers.get(peer_id)
        channel = peer.channel if peer is not None else None
        if channel is None or channel.broker is not broker:
            return  # a connection we no longer use: its calls failed already
        try:
            answers = unpack_plain(batch) if type(batch) is bytes else None
        except ValueError:
            answers = None
        if not isinstance(answers, list):
            log.warn("dropped malformed answers from {peer}", peer=peer_id)
            return
        calls = channel.calls
        counters = self._counters[peer_id]
        for answer in answers:
            if type(answer) is not list or len(answer) < 3 or type(answer[0]) is not int:
                log.warn("dropped a malformed answer from {peer}", peer=peer_id)
                continue
            call = calls.pop(answer[0], None)
            if call is None:  # expired or cancelled: a late answer
                counters.late += 1
            else:
                call.answered(answer)


def _label(server_id: str, service: str, method: str) -> str:
    return f"rpc {service}.{method} to server {server_id!r}"


async def _stop_listening(port: IListeningPort) -> None:
    await port.stopListening()  # type: ignore[misc]
