"""The PB broker of every cluster connection: no Nagle, eager writes, refused input.

:class:`NoDelayBroker` is the broker on both ends of every cluster PB connection (RPC
ports and their clients, the master's port and its clients). Besides PB it speaks
three bare Banana verbs (:func:`~pomelo_twisted.compat.add_broker_verb`): ``batch``
(RPC calls and answers, only once logged in), ``ping`` (answered ``pong`` at once) and
``pong`` (to the connection's :class:`~.pbping.Pinger`). Input Banana or jelly cannot
take drops the connection with one (aggregated) line, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import ITCPTransport
from twisted.logger import Logger
from twisted.spread import pb

from ..compat import add_broker_verb, banana_bound_depth, banana_encode
from ..eagerwrite import Send, socket_send, write_eagerly
from .logagg import RepeatedWarning
from .pbping import answer_ping

__all__ = ["MAX_DEPTH", "NoDelayBroker", "no_delay", "peer_address"]

log = Logger()

#: How deep the lists of one Banana message may nest: PB's own messages (a call, its
#: jellied arguments, RPC batches as bytes) need fewer than 10 levels.
MAX_DEPTH = 64

#: Refused input (garbage, forged jelly): one line per interval, with a count.
_refusals = RepeatedWarning(log)


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

    #: Set once the connection refused its peer's input (and was dropped).
    refused = False
    #: Lists nest at most this deep in a received message (see :data:`MAX_DEPTH`).
    max_depth = MAX_DEPTH

    def connectionMade(self) -> None:
        banana_bound_depth(self, self.max_depth)
        super().connectionMade()
        no_delay(self)
        self._socket_send = socket_send(self.transport)

    def dataReceived(self, data: bytes) -> None:
        """Decode ``data``; input Banana or PB cannot take (garbage, a list nested too
        deep, an unknown type byte, a non-list message) drops the connection with one
        line, not a traceback."""
        if self.refused:
            return
        try:
            super().dataReceived(data)
        except Exception as exc:
            self.refuse(f"undecodable input ({_brief(exc)})")

    def unserialize(self, sexp: Any, perspective: Any = None) -> Any:
        """Unjelly ``sexp``; a message jelly refuses (class or module atoms, unregistered
        instances...) instantiates nothing and drops the connection with one line."""
        try:
            return super().unserialize(sexp, perspective)
        except Exception as exc:
            self.refuse(f"a message that does not unjelly ({_brief(exc)})")
            raise pb.Error("refused: the message does not unjelly") from None

    def refuse(self, why: str, forged: bool = True) -> None:
        """Drop the connection for input it should not have sent (once): one line.
        ``forged``: the input itself was refused (not a limit of the port)."""
        if self.refused:
            return
        self.refused = True
        self.input_refused(why, forged)
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def input_refused(self, why: str, forged: bool) -> None:
        """Tell that the peer's input was refused (a guarded port counts it too)."""
        _refusals.warn("PB peer {peer}: refused {why}; dropped", peer=peer_address(self), why=why)

    def send_batch(self, payload: bytes) -> None:
        """Send ``payload`` as one Banana ``batch`` message: the RPC batches of calls and
        answers skip jelly and PB's message dispatch, most of a PB message's cost when
        it carries one call."""
        self.sendEncoded([b"batch", payload])

    def batch_received(self, *args: object) -> None:
        """A ``batch`` message: to the receiver of a logged-in connection, or refused."""
        receiver = self.batch_receiver
        if receiver is None or len(args) != 1:
            self.refuse("not logged in" if receiver is None else "a batch with bad arguments")
            return
        receiver(args[0])

    def sendEncoded(self, obj: object) -> None:  # noqa: N802 (Banana's name)
        """Banana-encode ``obj`` and write it eagerly (as ``Banana.sendEncoded`` writes it)."""
        write_eagerly(self.transport, self._socket_send, banana_encode(self, obj))

    #: Where a ``pong`` message goes (a :class:`~.pbping.Pinger` of a logged-in peer).
    pong_receiver: Callable[[object], None] | None = None

    def pong_received(self, *args: object) -> None:
        """A ``pong`` message: to the pinger, if any."""
        if self.pong_receiver is not None and len(args) == 1:
            self.pong_receiver(args[0])


add_broker_verb(NoDelayBroker, "batch", NoDelayBroker.batch_received)
add_broker_verb(NoDelayBroker, "ping", answer_ping)
add_broker_verb(NoDelayBroker, "pong", NoDelayBroker.pong_received)


def _brief(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, cut short (a forged message may be long)."""
    text = str(exc)
    if len(text) > 120:
        text = text[:120] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def peer_address(broker: pb.Broker) -> str:
    """The peer's address, for log lines."""
    transport = broker.transport
    address = transport.getPeer() if transport is not None else None
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    return f"{host}:{port}" if host is not None else str(address)
