"""A guarded PB port: what a connection may do before it has logged in.

Every PB port of a cluster (each server's RPC port, the master's port) is served by a
:class:`GuardedServerFactory`. Its brokers (:class:`GuardedBroker`) let an unknown
peer cost almost nothing:

- a **login deadline**: a connection that has not logged in ``login_deadline``
  seconds after it was accepted (default 10) is dropped;
- a **size limit before login**: a peer that sends more than ``pre_login_bytes``
  before it has logged in (default 64 KiB: the login takes under 1 KiB) is dropped at
  once, so an unfinished 600 KiB string is refused at the cap, not buffered; after the
  login Banana's own limits apply (640 KiB a string, :data:`~.pbconnection.MAX_DEPTH`
  levels of lists);
- garbage, a list nested too deep or a message jelly refuses (class or module atoms,
  unregistered instances) is refused by :class:`~.pbconnection.NoDelayBroker`:
  the connection is dropped, nothing is instantiated.

Each drop is counted (:class:`PortCounters`) and logged at most once per interval
with a count (:class:`~.logagg.RepeatedWarning`), never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

from .logagg import RepeatedWarning
from .pbauth import LoginPortal
from .pbbroker import NoDelayBroker, peer_address

__all__ = ["GuardedBroker", "GuardedServerFactory", "PortCounters", "PortLimits"]

log = Logger()


@dataclass(frozen=True)
class PortLimits:
    """What a PB port allows a connection before it has logged in."""

    #: Seconds from accept to login; later, the connection is dropped.
    login_deadline: float = 10.0
    #: Bytes a connection may send before it has logged in.
    pre_login_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        if not self.login_deadline > 0:
            raise ValueError(f"login_deadline must be positive, not {self.login_deadline!r}")
        if self.pre_login_bytes < 1024:
            raise ValueError(f"pre_login_bytes must be 1024 or more, not {self.pre_login_bytes}")


class PortCounters:
    """What a guarded PB port refused (metrics)."""

    __slots__ = ("logins", "overdue", "oversized", "refused", "tls_failed")

    def __init__(self) -> None:
        #: Connections that logged in.
        self.logins = 0
        #: Connections dropped for not logging in by the deadline.
        self.overdue = 0
        #: Connections dropped for sending too much before login.
        self.oversized = 0
        #: Connections dropped for undecodable or forged input.
        self.refused = 0
        #: Connections whose TLS handshake failed (plaintext, a certificate of another CA).
        self.tls_failed = 0


class GuardedBroker(NoDelayBroker):
    """A broker of a guarded port: a login deadline and a size limit until logged in."""

    #: The port's factory (set by it when it builds the broker).
    port: GuardedServerFactory
    logged_in = False
    _received = 0
    _deadline: IDelayedCall | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        port = self.port
        deadline = port.limits.login_deadline
        self._deadline = port.clock.callLater(deadline, self._overdue, deadline)

    def dataReceived(self, data: bytes) -> None:
        """Before login, count the bytes and drop the connection past the limit."""
        if not self.logged_in and not self.refused:
            self._received += len(data)
            limit = self.port.limits.pre_login_bytes
            if self._received > limit:
                self.port.counters.oversized += 1
                self.refuse(f"more than {limit} bytes before login", forged=False)
                return
        super().dataReceived(data)

    def login_succeeded(self) -> None:
        """The peer logged in: lift the deadline and the size limit."""
        if self.logged_in:
            return
        self.logged_in = True
        self.port.counters.logins += 1
        self._cancel_deadline()

    def _overdue(self, deadline: float) -> None:
        self._deadline = None
        if not self.logged_in:
            self.port.counters.overdue += 1
            self.refuse(f"no login within {deadline:g}s", forged=False)

    def input_refused(self, why: str, forged: bool) -> None:
        """Counted, and one line per interval on the port."""
        port = self.port
        if forged:
            port.counters.refused += 1
        port.refusals.warn(
            "{port}: PB peer {peer} dropped: {why}",
            port=port.name,
            peer=peer_address(self),
            why=why,
        )

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_deadline()
        if not self.logged_in and reason.check(SSL.Error):
            # One line per interval on the port, naming the peer and what TLS said.
            self.port.counters.tls_failed += 1
            self.input_refused(f"TLS handshake failed: {tls_reason(reason.value)}", forged=False)
        super().connectionLost(reason)

    def _cancel_deadline(self) -> None:
        deadline, self._deadline = self._deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()


def tls_reason(error: BaseException | None) -> str:
    """What OpenSSL said, shortly: ``certificate verify failed``, ``wrong version number``.

    An ``SSL.Error`` carries a list of ``(library, function, reason)`` tuples.
    """
    if error is None:
        return "unknown"
    errors = error.args[0] if error.args else None
    if isinstance(errors, list) and errors and isinstance(errors[-1], tuple):
        return str(errors[-1][-1])[:200] or "unknown"
    return str(error)[:200] or type(error).__name__


class GuardedServerFactory(pb.PBServerFactory):
    """A PB port serving ``portal`` with :class:`GuardedBroker`\\ s, timed on ``clock``.

    ``name`` names the port in log lines (``rpc port of chat-1``, ``master port``).
    """

    protocol = GuardedBroker
    noisy = False

    def __init__(
        self,
        portal: LoginPortal,
        clock: IReactorTime,
        limits: PortLimits | None = None,
        name: str = "PB port",
    ) -> None:
        super().__init__(portal)
        portal.on_login = self._logged_in
        self.clock = clock
        self.limits = limits or PortLimits()
        self.name = name
        self.counters = PortCounters()
        self.refusals = RepeatedWarning(log, seconds=clock.seconds)

    def buildProtocol(self, addr: Any) -> pb.Broker:
        """A :class:`GuardedBroker` of this port."""
        broker = super().buildProtocol(addr)
        if isinstance(broker, GuardedBroker):
            broker.port = self
        return broker

    def _logged_in(self, broker: Any) -> None:
        if isinstance(broker, GuardedBroker):
            broker.login_succeeded()
