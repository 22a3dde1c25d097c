"""PersistentLogin: one authenticated Perspective Broker connection that keeps itself up.

A ``ClientService`` connects to the endpoint, retrying with jittered
exponential backoff on the injected clock; each new connection logs in with
the cluster secret (:func:`~pomelo_twisted.rpc.pbauth.login`) before it counts
as up. The owner sees three states and two callbacks:

- ``connecting`` — before the first attempt has ended;
- ``up`` — logged in: ``avatar`` is the remote perspective, ``on_up(avatar)`` ran;
- ``down`` — an attempt failed or the connection was lost (``on_down(reason)``
  ran); the service keeps retrying, ``reconnect_now()`` skips the wait.

Used for the connection from a server to each peer (RPC), from a server to
the master (monitor) and from the admin CLI to the master.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
    ITCPTransport,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb
from zope.interface import implementer

from ..compat import add_broker_verb, banana_encode
from ..eagerwrite import Send, socket_send, write_eagerly
from .pbauth import login

__all__ = ["NoDelayBroker", "PersistentLogin", "no_delay"]

log = Logger()


def no_delay(broker: pb.Broker) -> None:
    """Turn Nagle's algorithm off on ``broker``'s TCP connection: PB messages are small
    and each is one write (RPC batches, answers); holding one back until the previous
    one is acknowledged only adds latency."""
    transport = broker.transport
    if ITCPTransport.providedBy(transport):
        transport.setTcpNoDelay(True)


class NoDelayBroker(pb.Broker):
    """A broker setting ``TCP_NODELAY`` once connected (e.g. an RPC port's brokers),
    whose messages go to the socket at once when nothing is queued (see
    :mod:`pomelo_twisted.eagerwrite`): a batch of calls or answers is one PB message,
    and sending it now rather than on the next loop iteration saves two ``epoll_ctl``
    and a reactor trip per hop."""

    _socket_send: Send | None = None
    batch_receiver: Callable[[object], None] | None = None
    """Where a ``batch`` message goes: set only once the connection is logged in through
    the portal (an RPC avatar's calls on the server side, the answers sink on the client
    side). Without one, a ``batch`` message is refused and the connection dropped."""

    def connectionMade(self) -> None:
        super().connectionMade()
        no_delay(self)
        self._socket_send = socket_send(self.transport)

    def send_batch(self, payload: bytes) -> None:
        """Send ``payload`` as one Banana ``batch`` message: the RPC batches of calls and
        answers skip jelly and PB's message dispatch, most of a PB message's cost when
        it carries one call."""
        self.sendEncoded([b"batch", payload])

    def batch_received(self, *args: object) -> None:
        """A ``batch`` message: to the receiver of a logged-in connection, or refused."""
        receiver = self.batch_receiver
        if receiver is None or len(args) != 1:
            log.warn(
                "refused a batch message ({why}): closing the connection",
                why="not logged in" if receiver is None else "bad arguments",
            )
            if self.transport is not None:
                self.transport.loseConnection()
            return
        receiver(args[0])

    def sendEncoded(self, obj: object) -> None:  # noqa: N802 (Banana's name)
        """Banana-encode ``obj`` and write it eagerly (as ``Banana.sendEncoded`` writes it)."""
        write_eagerly(self.transport, self._socket_send, banana_encode(self, obj))


add_broker_verb(NoDelayBroker, "batch", NoDelayBroker.batch_received)


class _LoginBroker(NoDelayBroker):
    """A client broker telling its factory when it is ready and when it is gone."""

    factory: _LoginFactory  # type: ignore[assignment]

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        super().connectionLost(reason)
        self.factory.owner._lost(self, reason)


class _LoginFactory(Factory):
    """Builds client brokers; ``Broker.connectionReady`` calls ``clientConnectionMade``."""

    noisy = False  # one factory per peer: "Starting factory" on every retry is noise

    def __init__(self, owner: PersistentLogin) -> None:
        self.owner = owner

    def buildProtocol(self, addr: Any) -> _LoginBroker:  # type: ignore[override]
        broker = _LoginBroker(isClient=True)
        broker.factory = self
        return broker

    def clientConnectionMade(self, broker: _LoginBroker) -> None:
        self.owner._ready(broker)


@implementer(IStreamClientEndpoint)
class ObservedEndpoint:
    """An endpoint reporting each failed connection attempt to ``on_failure``."""

    def __init__(self, endpoint: IStreamClientEndpoint, on_failure: Callable[[Failure], None]):
        self._endpoint = endpoint
        self._on_failure = on_failure

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        """Connect through the wrapped endpoint."""
        d: Deferred[Any] = self._endpoint.connect(protocolFactory)

        def failed(failure: Failure) -> Failure:
            self._on_failure(failure)
            return failure

        return d.addErrback(failed)


class PersistentLogin:
    """A reconnecting, logged-in PB connection to ``endpoint`` as ``name``."""

    def __init__(
        self,
        endpoint: IStreamClientEndpoint,
        name: str,
        secret: bytes,
        *,
        clock: IReactorTime,
        jitter: Callable[[], float],
        mind: pb.Referenceable | None = None,
        initial_delay: float = 0.1,
        max_delay: float = 2.0,
        login_timeout: float = 5.0,
        description: str = "",
        on_up: Callable[[pb.RemoteReference], object] | None = None,
        on_down: Callable[[str], object] | None = None,
    ) -> None:
        self._endpoint = ObservedEndpoint(endpoint, self._attempt_failed)
        self.name = name
        self._secret = secret
        self._clock = clock
        self._policy = backoffPolicy(initial_delay, max_delay, 1.5, jitter)
        self._mind = mind
        self._login_timeout = login_timeout
        self.description = description or repr(endpoint)
        self.on_up = on_up
        self.on_down = on_down
        self.state = "connecting"
        self.avatar: pb.RemoteReference | None = None
        self.broker: _LoginBroker | None = None
        self.last_error = ""
        self.connections = 0
        self._service: ClientService | None = None

    def __repr__(self) -> str:
        return f"<PersistentLogin {self.name} -> {self.description} {self.state}>"

    def start(self) -> None:
        """Begin connecting (and keep reconnecting until :meth:`stop`)."""
        if self._service is not None:
            return
        self._service = ClientService(
            self._endpoint, _LoginFactory(self), retryPolicy=self._policy, clock=self._clock
        )
        self._service.startService()

    def stop(self) -> Deferred[None]:
        """Close the connection and stop retrying; fires once closed."""
        self.state = "stopped"
        self.avatar = None
        service, self._service = self._service, None
        if service is None:
            return succeed(None)
        stopped: Deferred[None] = service.stopService()
        return stopped

    def reconnect_now(self) -> None:
        """When not up, abandon the backoff wait and connect at once."""
        if self.state in ("up", "stopped") or self._service is None:
            return
        old, self._service = self._service, None
        old.stopService()
        self.start()

    # -- events ---------------------------------------------------------------------

    def _attempt_failed(self, failure: Failure) -> None:
        if self.state == "stopped":
            return
        error = failure.getErrorMessage()
        if self.state != "down" or error != self.last_error:
            log.debug(
                "{name}: cannot connect to {target}: {error}",
                name=self.name,
                target=self.description,
                error=error,
            )
        self.last_error = error
        self.state = "down"

    def _ready(self, broker: _LoginBroker) -> None:
        if self.state == "stopped":
            _close(broker)
            return
        self.broker = broker
        timer: IDelayedCall = self._clock.callLater(
            self._login_timeout, self._login_timed_out, broker
        )
        d = login(broker, self.name, self._secret, self._mind)
        d.addCallbacks(
            self._logged_in,
            self._login_failed,
            callbackArgs=(broker, timer),
            errbackArgs=(broker, timer),
        )

    def _login_timed_out(self, broker: _LoginBroker) -> None:
        self.last_error = f"login timed out after {self._login_timeout:g} seconds"
        _close(broker)

    def _logged_in(
        self, avatar: pb.RemoteReference, broker: _LoginBroker, timer: IDelayedCall
    ) -> None:
        if timer.active():
            timer.cancel()
        if broker is not self.broker or broker.disconnected or self.state == "stopped":
            return
        self.avatar = avatar
        self.state = "up"
        self.last_error = ""
        self.connections += 1
        log.info("{name}: connected to {target}", name=self.name, target=self.description)
        if self.on_up is not None:
            self.on_up(avatar)

    def _login_failed(self, failure: Failure, broker: _LoginBroker, timer: IDelayedCall) -> None:
        if timer.active():
            timer.cancel()
        self.last_error = f"login refused: {failure.getErrorMessage()}"
        log.error(
            "{name}: {target} refused the login: {error}",
            name=self.name,
            target=self.description,
            error=failure.getErrorMessage(),
        )
        if not broker.disconnected:
            _close(broker)

    def _lost(self, broker: _LoginBroker, reason: Failure) -> None:
        if broker is not self.broker:
            return
        self.broker = None
        was_up = self.avatar is not None
        self.avatar = None
        if self.state == "stopped":
            return
        self.state = "down"
        if was_up:
            self.last_error = f"connection lost: {reason.getErrorMessage()}"
            log.warn(
                "{name}: lost the connection to {target}: {error}",
                name=self.name,
                target=self.description,
                error=reason.getErrorMessage(),
            )
            if self.on_down is not None:
                self.on_down(self.last_error)


def _close(broker: pb.Broker) -> None:
    if broker.transport is not None:
        broker.transport.loseConnection()
