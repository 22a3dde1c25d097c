"""PbRpcTransport: server-to-server calls over Perspective Broker, for a real cluster.

Each server listens for RPC on its ``port`` (an endpoint string, loopback by
default) and keeps one persistent, reconnecting, authenticated connection to
every peer (:class:`~pomelo_twisted.rpc.pbconnection.PersistentLogin`). Calls
and answers travel in batches (:mod:`~pomelo_twisted.rpc.payload`), and what
crosses is narrow on purpose:

- the calls made to a peer during one reactor turn leave at the end of the turn
  as ONE batch (a :class:`~pomelo_twisted.rpc.batcher.TurnBatcher`): msgpack
  ``bytes`` of a list of ``[id, target, service, method, args, budget]`` (``budget``:
  the call's timeout, cut to the deadline of the request it serves), the strings
  naming a *declared* remote (the ``RemoteDispatcher`` refuses anything else);
- the answers ready during one turn go back as ONE batch: msgpack ``bytes`` of
  ``[id, OK, result]``, ``[id, HANDLER_ERROR, code, msg]`` (re-raised as such, so
  a forwarded request keeps the backend's code) or ``[id, ERROR, message]`` (an
  ``RpcError``). Each call is answered on its own: a slow or failing call holds
  back or fails no other.

A batch crosses as a bare Banana message ``[b"batch", bytes]``
(:meth:`~pomelo_twisted.rpc.pbconnection.NoDelayBroker.send_batch`), which a
broker accepts only after its login through the portal (the caller gives an
answer sink as its PB mind; the callee's :class:`~pomelo_twisted.rpc.pbavatar.RpcAvatar`
receives its batches): jelly and PB's message dispatch are skipped, and Banana's
per-message cost is paid once per batch. A batch stays under banana's 640 KiB limit
on a string (a bigger one is split); a single call or answer above it fails on its
own, at once.

Calls to a peer that is down fail at once, calls in flight (queued or sent)
fail when their connection is lost, and every call has a deadline
(``RpcTimeout``; a later answer is dropped and counted), all kept by one timer
(a :class:`~pomelo_twisted.deadlines.DeadlineScheduler`). Calls to a server id
registered in this process go in-process. PB connections set ``TCP_NODELAY``.

A logged-in peer is pinged every ``ping_interval`` seconds (default 1,
:mod:`~pomelo_twisted.rpc.pbping`); one that has not answered for ``ping_timeout``
seconds (default 3: stopped, hung, not reading) is ``down``: its calls in flight fail
then, new ones at once (a forwarded request is answered 503), until it answers again.

Each peer has a circuit breaker (:mod:`~pomelo_twisted.rpc.breaker`): after
``failures`` consecutive calls that could not be sent, timed out or lost their
connection, calls to it fail fast (``CircuitOpen``) for ``cool_down`` seconds, then one
probe call decides. A call that is not sent fails with ``PeerUnavailable``.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.spread import pb
from zope.interface import implementer

from ..budget import DEADLINE
from ..callcontext import CALL_CONTEXT
from ..deadlines import DeadlineScheduler
from ..errors import CircuitOpen, PeerUnavailable, RpcError
from ..gameconfig import ServerInfo
from ..instruments import ended, start_call
from ..interfaces import IHookedTransport, INetworkRpcTransport, IRpcHooks, IServerReactor
from ..tlsconfig import ClusterTLS
from .batcher import TurnBatcher
from .breaker import BreakerBoard, BreakerSettings
from .calls import call_label, expired
from .local import LocalRpcTransport, entry_point
from .logagg import RepeatedWarning
from .metrics import RpcCounters
from .payload import MAX_BATCH, pack_plain, unpack_plain
from .pbauth import ADMIN, make_portal
from .pbavatar import RpcAvatar
from .pbconnection import LoginBroker, NoDelayBroker, PersistentLogin
from .pbguard import GuardedServerFactory, PortLimits
from .pbhold import CallHolds
from .pbpeer import Channel, PbCall, Peer, not_sent
from .pbping import PING_INTERVAL, PING_TIMEOUT
from .pbwaiters import PeerWaiters
from .remotes import ServeRemote
from .wireversion import CONTEXT_VERSION, WIRE_VERSIONS, agree_wire_version, served_to_peers

__all__ = ["MAX_BATCH", "PbRpcTransport", "RpcAvatar"]

log = Logger()

#: Refused or malformed rpcs: one line per interval and kind, with a count.
_refusals = RepeatedWarning(log)


def _state(connection: PersistentLogin) -> str:
    """A connection's state, ``down`` while it is up but its peer does not answer."""
    state = connection.state
    return "down" if state == "up" and not connection.answering else state


class _AnswerSink(pb.Referenceable):
    """The mind this server gives a peer at login: it tells the peer's avatar that the
    answers go back on this connection (as ``batch`` messages)."""


@implementer(INetworkRpcTransport, IHookedTransport)
class PbRpcTransport:
    """Calls to peer servers over PB, and this process's own servers in-process.

    ``reactor`` connects and listens unless ``connect`` (a peer's client endpoint) and
    ``server_endpoint`` (from an endpoint string) are given, and is the clock of the
    batches, deadlines and reconnection backoff. With ``tls`` (this server's
    :class:`~pomelo_twisted.tlsconfig.ClusterTLS`) both speak TLS with mutual
    authentication.
    """

    def __init__(
        self,
        reactor: IServerReactor,
        name: str,
        secret: bytes,
        *,
        rng: random_module.Random | None = None,
        connect: Callable[[ServerInfo], IStreamClientEndpoint] | None = None,
        server_endpoint: Callable[[str], IStreamServerEndpoint] | None = None,
        initial_delay: float = 0.1,
        max_delay: float = 2.0,
        login_timeout: float = 5.0,
        port_limits: PortLimits | None = None,
        wire_versions: tuple[int, int] | None = WIRE_VERSIONS,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        tls: ClusterTLS | None = None,
        breaker: BreakerSettings | None = None,
    ) -> None:
        self._clock = reactor
        self.name = name
        self._secret = secret
        self._rng = rng or random_module.Random()
        if tls is None:
            self._connect = connect or (lambda p: clientFromString(reactor, p.rpc_client_endpoint))
            self._server_endpoint = server_endpoint or (lambda s: serverFromString(reactor, s))
        else:  # mutual TLS: our certificate both ways, the peer's checked against its id
            self._connect = connect or (
                lambda p: clientFromString(reactor, tls.client(p.rpc_client_endpoint, p.id))
            )
            self._server_endpoint = server_endpoint or (lambda s: tls.server(reactor, s))
        self._delays = (initial_delay, max_delay, login_timeout)
        self._port_limits = port_limits or PortLimits()
        if not ping_interval > 0 or not ping_timeout > 0:
            raise ValueError(
                f"ping interval and timeout must be positive: {ping_interval}, {ping_timeout}"
            )
        self._ping = (ping_interval, ping_timeout)
        #: The factory of the RPC port (its counters tell what it refused), once built.
        self.port_factory: GuardedServerFactory | None = None
        self._deadlines = DeadlineScheduler(reactor)
        #: The circuit breaker of each peer (``configure`` it to change the settings).
        self.breakers = BreakerBoard(reactor, breaker)
        self._local = LocalRpcTransport(reactor, self._deadlines)
        self._hooks: IRpcHooks | None = None
        self._serving: dict[str, ServeRemote] = {}
        self._wire_versions = wire_versions  # None: announce none (the previous release)
        self._served = served_to_peers(name, wire_versions)  # _serving + the announcements
        self._peers: dict[str, Peer] = {}
        self._counters: dict[str, RpcCounters] = {}
        self._waiters = PeerWaiters(reactor, self.peers)
        self._ids = count(1)
        self._port: IListeningPort | None = None
        #: Calls to a server id that is neither served here nor a known peer.
        self.unknown_calls = 0
        #: Batches of calls sent (each one message of one or more calls).
        self.batches_sent = 0
        #: Calls held for peers that restart on purpose (:mod:`pomelo_twisted.rpc.pbhold`).
        self.holds = CallHolds(reactor, self.in_flight, self.when_peer_up, self.call)
        self._held = self.holds.peers

    def __repr__(self) -> str:
        return f"<PbRpcTransport {self.name}: peers {sorted(self._peers)}>"

    @property
    def hooks(self) -> IRpcHooks | None:
        """The :class:`~pomelo_twisted.instruments.IRpcHooks` around every call made and
        served (in-process ones too), or None."""
        return self._hooks

    @hooks.setter
    def hooks(self, hooks: IRpcHooks | None) -> None:
        self._hooks = hooks
        self._local.hooks = hooks

    # -- serving ----------------------------------------------------------------------

    def register(self, server_id: str, dispatcher: object) -> None:
        """Serve calls to ``server_id`` (from peers, and in-process)."""
        self._local.register(server_id, dispatcher)
        if callable(dispatcher):  # the local transport refused it otherwise
            self._serving[server_id] = self._served[server_id] = entry_point(dispatcher)

    def unregister(self, server_id: str) -> None:
        """Stop serving ``server_id``."""
        self._local.unregister(server_id)
        self._serving.pop(server_id, None)
        self._served.pop(server_id, None)

    def dispatcher(self, server_id: str) -> ServeRemote | None:
        """What serves ``server_id`` here, if anything."""
        return self._serving.get(server_id)

    def server_factory(self) -> GuardedServerFactory:
        """The PB factory of the RPC port: a portal guarded by the cluster secret (servers
        only: ``admin`` may not log in here), with the port's before-login limits."""
        portal = make_portal(self._secret, self._avatar, lambda name: name != ADMIN)
        factory = GuardedServerFactory(
            portal, self._clock, self._port_limits, name=f"rpc port of {self.name}"
        )
        self.port_factory = factory
        return factory

    def _avatar(self, peer: str, mind: object) -> RpcAvatar:
        """The avatar of a peer logged in with ``mind`` (its answer sink, on its broker)."""
        broker = mind.broker if isinstance(mind, pb.RemoteReference) else None
        if not isinstance(broker, NoDelayBroker):
            broker = None
        return RpcAvatar(peer, self._served.get, self._clock, broker, lambda: self._hooks)

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
            waits.append(maybeDeferred(port.stopListening))
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)

    # -- peers --------------------------------------------------------------------------

    def add_peer(self, info: ServerInfo) -> None:
        """Keep a connection to ``info`` (replacing one to another address)."""
        if info.id in self._serving:
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
            clock=self._clock,
            jitter=lambda: self._rng.random() * initial,
            mind=_AnswerSink(),
            initial_delay=initial,
            max_delay=maximum,
            login_timeout=login_timeout,
            description=f"server {info.id} ({info.host}:{info.port})",
            on_up=lambda _avatar: self._up(info.id),
            ping=self._ping,
        )
        peer = Peer(info, connection, self.breakers.of(info.id))
        connection.on_answering = lambda answering: self._answering(peer, answering)
        self._peers[info.id] = peer
        self._counters.setdefault(info.id, RpcCounters())
        connection.start()

    def remove_peer(self, server_id: str) -> Deferred[None]:
        """Forget a peer: close its connection; calls to it fail as unknown."""
        peer = self._peers.pop(server_id, None)
        self.holds.release(server_id, back=False)
        if peer is None:
            return succeed(None)
        self.breakers.forget(server_id)
        stopped = peer.connection.stop()
        self._waiters.changed()
        self._waiters.peer_is(server_id, False)
        return stopped

    def reconnect(self, server_id: str) -> None:
        """The peer is up again (the master says so): connect now, not after the backoff."""
        peer = self._peers.get(server_id)
        if peer is not None:
            peer.connection.reconnect_now()

    def peer_state(self, server_id: str) -> str | None:
        """``connecting``, ``up`` or ``down`` (a logged-in peer that does not answer its
        pings is ``down``); None for an unknown peer."""
        peer = self._peers.get(server_id)
        return None if peer is None else _state(peer.connection)

    def peers(self) -> dict[str, str]:
        """Each peer's id and state."""
        return {sid: _state(peer.connection) for sid, peer in sorted(self._peers.items())}

    def _answering(self, peer: Peer, answering: bool) -> None:
        """A logged-in peer stopped answering its pings (its calls in flight fail now, new
        ones at once, until it answers again) or answers again."""
        if answering:
            peer.breaker.reset()
            self._waiters.changed()
            return
        channel = peer.channel
        if channel is not None:
            why = peer.connection.last_error
            for call in list(channel.calls.values()):
                call.broken(RpcError(f"{call}: the server is down ({why})"))

    def _up(self, server_id: str) -> None:
        """A peer logged in (again): its breaker closes, waiters may fire."""
        peer = self._peers.get(server_id)
        if peer is not None:
            peer.breaker.reset()
            self._agree_wire_version(peer)
        if self._held:  # a restarting peer's next incarnation: its held calls go now
            self.holds.release(server_id)
        self._waiters.changed()
        self._waiters.peer_is(server_id, True)

    def in_flight(self, server_id: str | None = None) -> int:
        """Calls sent to ``server_id`` (every peer when None) and not answered yet."""
        peers = self._peers.values() if server_id is None else [self._peers.get(server_id)]
        return sum(len(p.channel.calls) for p in peers if p is not None and p.channel)

    def when_peer_up(self, server_id: str, timeout: float) -> Deferred[bool]:
        """Fires True once ``server_id``'s link is up (at once if it is), False after
        ``timeout`` seconds or when the peer is removed first."""
        return self._waiters.when_peer_up(server_id, timeout)

    def when_peers_up(self, timeout: float) -> Deferred[list[str]]:
        """Fires with ``[]`` once every peer is up (when the last one logs in), or after
        ``timeout`` seconds with the ids of those still not up."""
        return self._waiters.when_peers_up(timeout)

    def counters(self, server_id: str) -> RpcCounters:
        """The counters of calls to ``server_id``."""
        if server_id in self._serving:
            return self._local.counters(server_id)
        return self._counters.get(server_id) or RpcCounters()

    # -- calls --------------------------------------------------------------------------

    def call(
        self, server_id: str, service: str, method: str, args: Sequence[Any], timeout: float
    ) -> Deferred[Any]:
        """A Deferred of ``service.method(*args)`` on ``server_id``; never raises.

        The call joins the batch to ``server_id`` sent at the end of this reactor turn.
        """
        if server_id in self._serving:
            return self._local.call(server_id, service, method, tuple(args), timeout)
        if self._held and server_id in self._held:
            return self.holds.call(server_id, service, method, args, timeout)
        peer = self._peers.get(server_id)
        if peer is None:
            self.unknown_calls += 1
            return fail(
                PeerUnavailable(f"{call_label(server_id, service, method)}: unknown server")
            )
        counters = self._counters[server_id]
        counters.calls += 1
        breaker = peer.breaker
        if not breaker.allow():
            label = call_label(server_id, service, method)
            is_open = CircuitOpen(f"{label}: the circuit breaker is open ({breaker.peer})")
            return not_sent(counters, None, is_open)
        connection = peer.connection
        broker = connection.broker
        if (
            connection.avatar is None
            or broker is None
            or broker.disconnected
            or not connection.answering
        ):
            why = connection.last_error or "not connected yet"
            label = call_label(server_id, service, method)
            down = PeerUnavailable(f"{label}: the server is down ({why})")
            return not_sent(counters, breaker.failure, down)
        if not timeout > 0:
            why = f"{call_label(server_id, service, method)}: timeout must be positive"
            return not_sent(counters, breaker.abandoned, RpcError(f"{why}, not {timeout!r}"))
        deadline = DEADLINE.get()
        if deadline is not None:  # made for a call being served: cut to its deadline
            left = deadline - self._clock.seconds()
            if left < timeout:
                if not left > 0:
                    breaker.abandoned()
                    return expired(call_label(server_id, service, method), counters)
                timeout = left
        call_id = next(self._ids)
        context = CALL_CONTEXT.get()
        end = None
        if self._hooks is not None:
            context, end = start_call(self._hooks, server_id, service, method, context)
        try:
            if type(args) not in (tuple, list):
                args = list(args)
            if context is None or peer.wire_version < CONTEXT_VERSION:
                item = pack_plain([call_id, server_id, service, method, args, timeout])
            else:
                item = pack_plain([call_id, server_id, service, method, args, timeout, context])
        except ValueError as exc:
            why = f"{call_label(server_id, service, method)}: arguments are not plain data"
            return ended(not_sent(counters, breaker.abandoned, RpcError(f"{why} ({exc})")), end)
        if len(item) > MAX_BATCH:
            why = f"{call_label(server_id, service, method)}: the arguments are too large"
            size = f"{len(item)} bytes, at most {MAX_BATCH}"
            return ended(not_sent(counters, breaker.abandoned, RpcError(f"{why} ({size})")), end)
        channel = peer.channel
        if channel is None or channel.broker is not broker:
            channel = self._open(peer, broker)
        call = PbCall(server_id, service, method, timeout, channel.counters, self._deadlines)
        call.channel = channel
        call.call_id = call_id
        call.breaker = breaker
        channel.calls[call_id] = call
        call.ticket = channel.batcher.add(item)
        call.end = end  # told the outcome by the call itself: no Deferred callback
        return call.deferred

    def _open(self, peer: Peer, broker: LoginBroker) -> Channel:
        """A channel for the calls over ``broker``, failed when it is lost."""
        server_id = peer.info.id
        channel = Channel(peer, broker, self._counters[server_id])
        channel.batcher = TurnBatcher(
            self._clock, lambda batch: self._send(channel, batch), MAX_BATCH
        )
        peer.channel = channel
        broker.batch_receiver = lambda batch: self._answered(server_id, broker, batch)
        broker.notifyOnDisconnect(lambda: self._lost(peer, channel))
        return channel

    def _agree_wire_version(self, peer: Peer) -> None:
        """Announce this server's RPC wire versions on a new link (:mod:`.wireversion`)."""
        peer.wire_version = 1
        broker = peer.connection.broker
        if self._wire_versions is None or broker is None:
            return
        args = (self.name, self._wire_versions, self._delays[2])
        agree_wire_version(peer, self._open(peer, broker), next(self._ids), self._deadlines, *args)

    def _lost(self, peer: Peer, channel: Channel) -> None:
        if peer.channel is channel:
            peer.channel = None
        channel.batcher.clear()
        calls, channel.calls = channel.calls, {}
        for call in calls.values():
            call.broken(RpcError(f"{call}: the connection was lost before the answer"))

    def _send(self, channel: Channel, batch: bytes) -> None:
        """One batch of the turn's calls to ``channel``'s peer."""
        broker = channel.broker
        if broker.disconnected:
            return  # _lost fails (or failed) the calls
        try:
            broker.send_batch(batch)
        except Exception:
            log.failure("sending a batch of rpcs to {peer} failed", peer=channel.peer.info.id)
            self._lost(channel.peer, channel)
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
            _refusals.warn("dropped malformed answers from {peer}", peer=peer_id)
            return
        calls = channel.calls
        counters = channel.counters
        for answer in answers:
            if type(answer) is not list or len(answer) < 3 or type(answer[0]) is not int:
                _refusals.warn("dropped a malformed answer from {peer}", peer=peer_id)
                continue
            call = calls.pop(answer[0], None)
            if call is None:  # expired or cancelled: a late answer
                counters.late += 1
            else:
                call.answered(answer)
