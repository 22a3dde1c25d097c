"""The client side of the cluster's Perspective Broker connections: one login stack.

Every PB client of a cluster (a server to each peer, a server to the master, the
admin CLI to the master) connects with a :class:`LoginBroker` (a
:class:`NoDelayBroker`) and logs in with the cluster secret through
:meth:`ClusterLogin.log_in` (:func:`~pomelo_twisted.rpc.pbauth.login` within a
timeout). Two ways to hold it:

- :class:`PersistentLogin` keeps one connection up: a ``ClientService`` connects,
  retrying with jittered exponential backoff on the injected clock; each new
  connection logs in before it counts as up. The owner sees three states and two
  callbacks: ``connecting`` (before the first attempt has ended); ``up`` (logged in:
  ``avatar`` is the remote perspective, ``on_up(avatar)`` ran); ``down`` (an attempt
  failed or the connection was lost, ``on_down(reason)`` ran; the service keeps
  retrying, ``reconnect_now()`` skips the wait). With ``ping=(interval, timeout)``
  a logged-in connection pings its peer (:class:`~.pbping.Pinger`): ``answering``
  turns False after ``timeout`` seconds without a pong and True at the next one,
  each change told to ``on_answering``.
- :class:`OneShotLogin` connects and logs in once, within a timeout (the admin CLI).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from OpenSSL import SSL
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import error
from twisted.internet.defer import Deferred, TimeoutError, fail, succeed
from twisted.internet.interfaces import (
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb
from zope.interface import implementer

from .pbauth import login
from .pbbroker import NoDelayBroker, no_delay
from .pbping import Pinger

__all__ = [
    "ClusterLogin",
    "LoginBroker",
    "NoDelayBroker",
    "OneShotLogin",
    "PersistentLogin",
    "no_delay",
]

log = Logger()


class LoginBroker(NoDelayBroker):
    """A client broker that tells its factory's owner when it is ready (PB's dialect is
    agreed: it can log in) and when it is gone, and can be waited for until closed."""

    factory: _LoginFactory  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__(isClient=True)
        self.lost = False
        self._gone: list[Deferred[None]] = []

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        """Tell the owner, then fire every ``when_gone`` waiter."""
        super().connectionLost(reason)
        self.lost = True
        self.factory.owner.broker_lost(self, reason)
        waiters, self._gone = self._gone, []
        for waiter in waiters:
            waiter.callback(None)

    def when_gone(self) -> Deferred[None]:
        """Fires once the connection is closed."""
        if self.lost:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._gone.append(d)
        return d

    def close(self) -> Deferred[None]:
        """Close the connection; fires once it is closed."""
        if not self.lost and self.transport is not None:
            self.transport.loseConnection()
        return self.when_gone()

    def abort(self) -> Deferred[None]:
        """Drop the connection now; fires once it is closed."""
        transport: Any = self.transport
        if not self.lost and transport is not None:
            transport.abortConnection()
        return self.when_gone()


class LoginOwner(Protocol):
    """Who a :class:`_LoginFactory` reports its brokers to."""

    def broker_ready(self, broker: LoginBroker) -> None:
        """``broker`` is connected and can log in."""

    def broker_lost(self, broker: LoginBroker, reason: Failure) -> None:
        """``broker``'s connection is gone."""


class _LoginFactory(Factory):
    """Builds client brokers; ``Broker.connectionReady`` calls ``clientConnectionMade``."""

    noisy = False  # one factory per peer: "Starting factory" on every retry is noise
    #: A remote method of this side's mind that raises is answered with its message
    #: only (PB's server factories have this attribute; a client broker needs it too).
    unsafeTracebacks = False  # noqa: N815 (PB reads this name)

    def __init__(self, owner: LoginOwner) -> None:
        self.owner = owner

    def buildProtocol(self, addr: Any) -> LoginBroker:  # type: ignore[override]
        broker = LoginBroker()
        broker.factory = self
        return broker

    def clientConnectionMade(self, broker: LoginBroker) -> None:
        self.owner.broker_ready(broker)


class ClusterLogin:
    """Who logs in where: ``name`` with the cluster ``secret`` (and ``mind``, the object
    the server may call back) at ``endpoint``, timed on ``clock``. The base of
    :class:`OneShotLogin` and :class:`PersistentLogin`."""

    def __init__(
        self,
        endpoint: IStreamClientEndpoint,
        name: str,
        secret: bytes,
        *,
        clock: IReactorTime,
        mind: pb.Referenceable | None = None,
    ) -> None:
        self._endpoint = endpoint
        self.name = name
        self._secret = secret
        self._clock = clock
        self._mind = mind

    def log_in(self, broker: LoginBroker, timeout: float) -> Deferred[pb.RemoteReference]:
        """Log in on a ready ``broker`` (:func:`~pomelo_twisted.rpc.pbauth.login`): a
        Deferred of the avatar, failing with ``TimeoutError`` after ``timeout`` seconds."""
        return login(broker, self.name, self._secret, self._mind).addTimeout(timeout, self._clock)


class OneShotLogin(ClusterLogin):
    """One connection to ``endpoint``, logged in as ``name``; no reconnection.

    :meth:`login` connects, logs in and gives the avatar, all within a timeout; when
    anything fails, the connection (if one was made) is dropped before the failure is
    given. ``broker`` is the connection once made (None while nothing answered).
    """

    broker: LoginBroker | None = None
    _ready: Deferred[LoginBroker]

    def login(self, timeout: float) -> Deferred[pb.RemoteReference]:
        """Connect and log in within ``timeout`` seconds: a Deferred of the avatar.

        Fails with ``TimeoutError`` when time is up (whatever stage it stopped at),
        with the endpoint's error when nothing answers, or the login's refusal.
        """
        self._ready = Deferred()
        d: Deferred[Any] = self._endpoint.connect(_LoginFactory(self))
        d.addCallback(self._connected)
        d.addCallback(self.log_in, timeout)
        d.addTimeout(timeout, self._clock, onTimeoutCancel=_timed_out)
        return d.addErrback(self._failed)

    def _connected(self, broker: LoginBroker) -> Deferred[LoginBroker]:
        self.broker = broker
        return self._ready

    def broker_ready(self, broker: LoginBroker) -> None:
        """PB's dialect is agreed: log in."""
        if not self._ready.called:
            self._ready.callback(broker)

    def broker_lost(self, broker: LoginBroker, reason: Failure) -> None:
        """Gone before it was ready: the login fails with ``reason``."""
        if not self._ready.called:
            self._ready.errback(reason)

    def _failed(self, failure: Failure) -> Deferred[Any]:
        broker = self.broker
        if broker is None:
            return fail(failure)
        return broker.abort().addCallback(lambda _: failure)


def _timed_out(result: object, timeout: float) -> Failure:
    # Whatever the cancellation failed with (ConnectingCancelledError while connecting,
    # CancelledError while logging in), running out of time is a TimeoutError.
    return Failure(TimeoutError(timeout, "connecting and logging in"))


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


class PersistentLogin(ClusterLogin):
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
        ping: tuple[float, float] | None = None,
        on_answering: Callable[[bool], object] | None = None,
    ) -> None:
        observed = ObservedEndpoint(endpoint, self._attempt_failed)
        super().__init__(observed, name, secret, clock=clock, mind=mind)
        self._policy = backoffPolicy(initial_delay, max_delay, 1.5, jitter)
        self._login_timeout = login_timeout
        self.description = description or repr(endpoint)
        self.on_up = on_up
        self.on_down = on_down
        self.state = "connecting"
        self.avatar: pb.RemoteReference | None = None
        self.broker: LoginBroker | None = None
        self.last_error = ""
        #: The last failed TLS handshake's error: each distinct one is logged once.
        self.tls_error = ""
        #: The last RPC wire version refusal (:meth:`refuse_link`): each distinct one once.
        self.refused_line = ""
        self.connections = 0
        self._service: ClientService | None = None
        #: ``(interval, timeout)`` of the pings of a logged-in connection; None: none.
        self._ping = ping
        self._pinger: Pinger | None = None
        self.on_answering = on_answering

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

    @property
    def answering(self) -> bool:
        """Whether the peer answers its pings (True when not pinged)."""
        return self._pinger is None or self._pinger.answering

    def stop(self) -> Deferred[None]:
        """Close the connection and stop retrying; fires once closed."""
        self.state = "stopped"
        # Dropping the last reference to the perspective sends PB's decref, which logs
        # us out on the peer at once; calls of this turn still on their way would then
        # be refused ("not logged in"). Keep it until the connection is closed.
        avatar, self.avatar = self.avatar, None
        self._stop_pinging()
        service, self._service = self._service, None
        if service is None:
            return succeed(None)
        stopped: Deferred[None] = service.stopService()
        stopped.addBoth(lambda result: (avatar, result)[1])
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

    def broker_ready(self, broker: LoginBroker) -> None:
        """A new connection is ready: log in on it."""
        if self.state == "stopped":
            _close(broker)
            return
        self.broker = broker
        d = self.log_in(broker, self._login_timeout)
        d.addCallbacks(
            self._logged_in, self._login_failed, callbackArgs=(broker,), errbackArgs=(broker,)
        )

    def _logged_in(self, avatar: pb.RemoteReference, broker: LoginBroker) -> None:
        if broker is not self.broker or broker.disconnected or self.state == "stopped":
            return
        self.avatar = avatar
        self.state = "up"
        self.last_error = self.tls_error = ""
        self.connections += 1
        log.info("{name}: connected to {target}", name=self.name, target=self.description)
        self._start_pinging(broker)
        if self.on_up is not None:
            self.on_up(avatar)

    def _start_pinging(self, broker: LoginBroker) -> None:
        self._stop_pinging()
        if self._ping is None:
            return
        interval, timeout = self._ping

        def send(token: int) -> None:
            if not broker.disconnected:
                broker.sendEncoded([b"ping", token])

        pinger = Pinger(self._clock, send, self._answering_changed, interval, timeout)
        broker.pong_receiver = pinger.pong
        self._pinger = pinger
        pinger.start()

    def _stop_pinging(self) -> None:
        pinger, self._pinger = self._pinger, None
        if pinger is not None:
            pinger.stop()

    def _answering_changed(self, answering: bool) -> None:
        pinger = self._pinger
        if pinger is None:
            return
        if answering:
            self.last_error = ""
            log.info("{name}: {target} answers again", name=self.name, target=self.description)
        else:
            self.last_error = f"not answering pings for {pinger.timeout:g}s"
            log.warn(
                "{name}: {target} is not answering pings for {timeout:g}s: "
                "calls to it fail until it answers",
                name=self.name,
                target=self.description,
                timeout=pinger.timeout,
            )
        if self.on_answering is not None:
            self.on_answering(answering)

    def _login_failed(self, failure: Failure, broker: LoginBroker) -> None:
        if failure.check(TimeoutError):
            self.last_error = f"login timed out after {self._login_timeout:g} seconds"
            log.warn(
                "{name}: {target} did not answer the login: {error}",
                name=self.name,
                target=self.description,
                error=self.last_error,
            )
        elif failure.check(
            error.ConnectionDone, error.ConnectionLost, pb.PBConnectionLost, pb.DeadReferenceError
        ):
            # The peer closed during the login (it is restarting): nothing was refused.
            self.last_error = f"closed during login: {failure.getErrorMessage()}"
            log.info(
                "{name}: {target} closed the connection during login",
                name=self.name,
                target=self.description,
            )
        else:
            self.last_error = f"login refused: {failure.getErrorMessage()}"
            log.error(
                "{name}: {target} refused the login: {error}",
                name=self.name,
                target=self.description,
                error=failure.getErrorMessage(),
            )
        if not broker.disconnected:
            _close(broker)

    def broker_lost(self, broker: LoginBroker, reason: Failure) -> None:
        """The connection is gone (down, unless stopped)."""
        if reason.check(SSL.Error) and self.state != "stopped" and self.avatar is None:
            self._tls_failed(reason.getErrorMessage())
        if broker is not self.broker:
            return
        self.broker = None
        was_up = self.avatar is not None
        self.avatar = None
        self._stop_pinging()
        if self.state == "stopped":
            return
        self.state = "down"
        if was_up:
            self.last_error = f"connection lost: {reason.getErrorMessage()}"
            # A clean close is the peer stopping or restarting: news, not a problem.
            level = log.info if reason.check(error.ConnectionDone) else log.warn
            level(
                "{name}: lost the connection to {target}: {error}",
                name=self.name,
                target=self.description,
                error=reason.getErrorMessage(),
            )
            if self.on_down is not None:
                self.on_down(self.last_error)

    def refuse_link(self, broker: LoginBroker, line: str) -> None:
        """The peer on ``broker`` speaks no RPC wire version this server speaks
        (:mod:`.wireversion`): ``line`` says so, once per distinct line, and the
        connection is closed (it is retried: an upgraded peer is taken at once)."""
        if line != self.refused_line:
            log.error("{line}", line=line)
        self.refused_line = line
        if not broker.disconnected:
            _close(broker)
        self.last_error = line

    def _tls_failed(self, message: str) -> None:
        """A TLS handshake failed (a certificate one side refuses: an operator's mistake):
        said once per distinct error rather than on every reconnection attempt."""
        if message != self.tls_error:
            log.warn(
                "{name}: TLS with {target} failed: {error}",
                name=self.name,
                target=self.description,
                error=message,
            )
        self.tls_error = message
        self.last_error = f"TLS failed: {message}"


def _close(broker: pb.Broker) -> None:
    if broker.transport is not None:
        broker.transport.loseConnection()
