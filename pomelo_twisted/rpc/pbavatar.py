"""The callee side of :mod:`pomelo_twisted.rpc.pb`: what a logged-in peer may do.

:class:`RpcAvatar` runs the calls of a peer's batches and sends their answers back,
one batch per reactor turn (a :class:`~pomelo_twisted.rpc.batcher.TurnBatcher`).
Both travel as Banana ``batch`` messages on the peer's connection
(:class:`~pomelo_twisted.rpc.pbconnection.NoDelayBroker`), which accepts them only
once the peer has logged in through the portal.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.spread import pb

from ..interfaces import IRpcHooks
from .batcher import TurnBatcher
from .logagg import RepeatedWarning
from .payload import MAX_BATCH
from .pbconnection import NoDelayBroker
from .remotes import CallRunner, ServeRemote

__all__ = ["RpcAvatar"]

log = Logger()

#: Refused or malformed rpcs: one line per interval and kind, with a count.
_refusals = RepeatedWarning(log)


class RpcAvatar(pb.Avatar):
    """What a peer that logged in may do on this server's RPC port: send batches of calls.

    ``serving(server_id)`` is what serves a server of this process (None for one not
    served here). ``broker`` is the peer's connection, None when the peer gave no answer
    sink at login: then its calls are refused. The answers to the calls of its batches
    (run by a :class:`~pomelo_twisted.rpc.remotes.CallRunner`) leave on ``broker`` as one
    batch per turn of ``clock``.
    """

    def __init__(
        self,
        peer: str,
        serving: Callable[[str], ServeRemote | None],
        clock: IReactorTime,
        broker: NoDelayBroker | None,
        hooks: Callable[[], IRpcHooks | None] = lambda: None,
    ) -> None:
        self.peer = peer
        self._broker = broker
        self._runner = CallRunner(serving, self._answer, peer, MAX_BATCH, clock, hooks)
        self._answers = TurnBatcher(clock, self._send_answers, MAX_BATCH)
        if broker is not None:  # logged in: its batch messages are calls for us
            broker.batch_receiver = self.run_batch

    def logout(self) -> None:
        """The peer's connection is gone: answers still to come have nowhere to go."""
        if self._broker is not None:
            self._broker.batch_receiver = None
            self._broker = None
        self._answers.clear()

    def run_batch(self, batch: object) -> None:
        """Run each ``[id, target, service, method, args]`` of ``batch``; answer each."""
        if type(batch) is not bytes:
            kind = type(batch).__name__
            _refusals.warn("refused rpcs from {peer}: {kind}, not bytes", peer=self.peer, kind=kind)
        elif self._broker is None:
            _refusals.warn("refused rpcs from {peer}: it gave no answer sink", peer=self.peer)
        else:
            self._runner.run(batch)

    def _answer(self, item: bytes) -> None:
        if self._broker is not None:  # else logged out: the caller failed these calls already
            self._answers.add(item)

    def _send_answers(self, batch: bytes) -> None:
        broker = self._broker
        if broker is not None and not broker.disconnected:
            broker.send_batch(batch)
        # else the connection is going: the caller fails these calls itself
