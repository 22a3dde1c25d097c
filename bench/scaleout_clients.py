"""Scripted clients of bench/scaleout.py: a reactor in a thread, members that count pushes.

The bench script is synchronous (subprocesses, ``time.sleep``); :func:`run` runs one
coroutine on a reactor started once in a daemon thread and returns its result.
:class:`Member` is one client that entered the game (uid, room) and records every push
it receives (by route) and its kick reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import deferLater
from twisted.internet.threads import blockingCallFromThread

from pomelo_twisted.client import PomeloClient, connect

__all__ = ["ENTRY", "Member", "enter", "pause", "run"]

ENTRY = "connector.entryHandler.entry"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
ANNOUNCE = "chat.chatHandler.announce"
WHERE = "chat.chatHandler.where"

_T = TypeVar("_T")
_thread: threading.Thread | None = None


def _reactor_thread() -> None:
    global _thread
    if _thread is None:
        _thread = threading.Thread(
            target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
        )
        _thread.start()
        time.sleep(0.05)


def run(make: Callable[[], Awaitable[_T]], timeout: float = 120.0) -> _T:
    """Run ``make()`` on the reactor thread; its result (its exception is raised)."""
    _reactor_thread()

    def start() -> Deferred[_T]:
        d: Deferred[_T] = ensureDeferred(make())  # type: ignore[arg-type]
        return d.addTimeout(timeout, reactor)

    result: _T = blockingCallFromThread(reactor, start)
    return result


def stop() -> None:
    """Stop the reactor thread (at the end of a run)."""
    if _thread is not None:
        reactor.callFromThread(reactor.stop)
        _thread.join(5.0)


def pause(seconds: float) -> Deferred[None]:
    """Wait ``seconds`` on the reactor."""
    return deferLater(reactor, seconds, lambda: None)


def now() -> float:
    return float(reactor.seconds())


class Member:
    """One client of a connector: its uid and room, the pushes it got, its kick."""

    def __init__(self, target: str, uid: str, rid: str | None) -> None:
        self.target = target
        self.uid = uid
        self.rid = rid
        self.client: PomeloClient | None = None
        self.pushes: dict[str, list[Any]] = {}
        self.kicked: str | None = None
        self.kicked_at: float | None = None

    async def connect(self) -> PomeloClient:
        client: PomeloClient = await connect(reactor, self.target, timeout=5.0)
        self.client = client
        for route in ("onChat", "onAnnounce"):
            client.on(route, self._recorder(route))
        client.on_kick(self._kick)
        return client

    def _recorder(self, route: str) -> Callable[[Any], None]:
        def record(body: Any) -> None:
            self.pushes.setdefault(route, []).append(body)

        return record

    def _kick(self, reason: str) -> None:
        self.kicked, self.kicked_at = reason, now()

    async def request(self, route: str, msg: Any, within: float = 10.0) -> Any:
        """The answer of one request (the client's own deadline: ``within`` seconds)."""
        assert self.client is not None
        return await self.client.request(route, msg, timeout=within)

    async def enter(self) -> Any:
        body: dict[str, Any] = {"uid": self.uid}
        if self.rid is not None:
            body["rid"] = self.rid
        return await self.request(ENTRY, body)

    async def close(self) -> None:
        if self.client is not None and self.client.connected:
            await self.client.close()


async def enter(target: str, uid: str, rid: str | None = None, join: bool = False) -> Member:
    """A connected member that entered (and joined its room when ``join``)."""
    member = Member(target, uid, rid)
    await member.connect()
    reply = await member.enter()
    if reply != {"code": 200, "uid": uid}:
        raise RuntimeError(f"{uid} could not enter on {target}: {reply}")
    if join:
        joined = await member.request(JOIN, {"rid": rid})
        if joined.get("code") != 200:
            raise RuntimeError(f"{uid} could not join {rid}: {joined}")
    return member
