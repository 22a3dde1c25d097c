"""The callee side of :mod:`pomelo_twisted.rpc.pb`: what a logged-in peer may do.

:class:`RpcAvatar` runs the calls of a peer's batches and sends their answers back,
one message per reactor turn; :class:`_AnswerSink` is the mind a caller gives at
login, where the answers arrive when they come as PB messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.spread import banana, pb

from ..compat import RawReferenceable
from .payload import chunks, pack_array
from .pbconnection import NoDelayBroker
from .remotes import CallRunner

if TYPE_CHECKING:
    from .pb import PbRpcTransport

__all__ = ["MAX_BATCH", "RpcAvatar"]

log = Logger()

MAX_BATCH = banana.SIZE_LIMIT - 8
"""The most bytes one ``calls`` or ``answers`` message carries (banana refuses a string
over ``SIZE_LIMIT``; 8 bytes are left for the array header). One call's item or one
answer above it is refused on its own."""


class RpcAvatar(pb.Avatar):
    """What a peer that logged in may do on this server's RPC port: ``calls``.

    ``mind`` is the peer's answer sink (a remote reference): the answers to the calls
    of its batches (run by a :class:`~pomelo_twisted.rpc.remotes.CallRunner`) are
    queued, and sent to it as one ``answers`` message per reactor turn.
    """

    def __init__(self, transport: PbRpcTransport, peer: str, mind: Any = None) -> None:
        self.transport = transport
        self.peer = peer
        self.mind: Any = mind if callable(getattr(mind, "callRemote", None)) else None
        self._runner = CallRunner(transport.dispatcher, self._queue, peer, MAX_BATCH)
        self._answers: list[bytes] = []
        self._flush: IDelayedCall | None = None
        broker = getattr(mind, "broker", None)
        self._broker = broker if isinstance(broker, NoDelayBroker) else None
        if self._broker is not None:  # logged in: its batch messages are calls for us
            self._broker.batch_receiver = self.perspective_calls

    def logout(self) -> None:
        """The peer's connection is gone: answers still to come have nowhere to go."""
        if self._broker is not None:
            self._broker.batch_receiver = None
            self._broker = None
        self.mind = None
        self._answers = []
        if self._flush is not None and self._flush.active():
            self._flush.cancel()
        self._flush = None

    def perspective_calls(self, batch: object) -> None:
        """Run each ``[id, target, service, method, args]`` of ``batch``; answer each."""
        if type(batch) is not bytes:
            kind = type(batch).__name__
            log.warn("refused rpcs from {peer}: {kind}, not bytes", peer=self.peer, kind=kind)
        elif self.mind is None:
            log.warn("refused rpcs from {peer}: it gave no answer sink", peer=self.peer)
        else:
            self._runner.run(batch)

    def _queue(self, item: bytes) -> None:
        if self.mind is None:  # logged out: the caller failed these calls already
            return
        self._answers.append(item)
        if self._flush is None:
            self._flush = self.transport._reactor.callLater(0, self._send_answers)

    def _send_answers(self) -> None:
        self._flush = None
        answers, self._answers = self._answers, []
        mind = self.mind
        if mind is None or not answers:
            return
        broker = self._broker
        for chunk in chunks(answers, MAX_BATCH):
            if broker is not None:
                if broker.disconnected:
                    return  # the connection is going: the caller fails these calls itself
                broker.send_batch(pack_array(chunk))
                continue
            try:
                mind.callRemote("answers", pack_array(chunk), pbanswer=False)
            except pb.DeadReferenceError:
                return  # the connection is going: the caller fails these calls itself


class _AnswerSink(RawReferenceable):
    """The mind this server gives a peer at login: the peer sends ``answers`` here."""

    def __init__(self, transport: PbRpcTransport, peer_id: str) -> None:
        self.transport = transport
        self.peer_id = peer_id

    def raw_message_received(self, broker: pb.Broker, name: str, args: Any, kw: Any) -> None:
        """Only ``answers(batch)``, with the broker it came on."""
        if name != "answers":
            raise pb.NoSuchMethod(f"No such method: remote_{name!r}")
        if kw or len(args) != 1:
            log.warn("refused answers from {peer}: bad arguments", peer=self.peer_id)
            return
        self.transport._answered(self.peer_id, broker, args[0])
