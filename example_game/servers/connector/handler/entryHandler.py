"""connector.entryHandler.*: entry, echo, kick and fail (the frontend routes).

With ``config/redis.json`` (global channels on), every player who enters joins the global
channel ``world`` (see ``chat.chatHandler.announce``) and leaves it when the session closes.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from twisted.internet.task import deferLater

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.globalchannels import RedisError

__handler__ = "EntryHandler"

MAX_DELAY_MS = 10_000
WORLD = "world"


class EntryRequest(msgspec.Struct):
    """Log in as ``uid``; ``rid`` names the chat room this session will use."""

    uid: str | int | None = None
    rid: str | None = None


class EntryResponse(msgspec.Struct):
    """The uid the session is bound to."""

    uid: str
    code: int = 200


class EntryHandler:
    """Routes of the connector; ``session`` is the client's frontend session."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def entry(self, session: Any, msg: EntryRequest) -> EntryResponse:
        """Bind the session to ``msg.uid``; leaving the chat rooms on disconnect.

        An optional ``msg.rid`` names the chat room this session will use: the
        chat server of that room serves all its chat requests (see ``app.py``).
        """
        if msg.uid is None or msg.uid == "":
            raise HandlerError(500, "uid required")
        uid = str(msg.uid)
        rid = msg.rid
        if rid is not None:
            if not rid:
                raise HandlerError(500, "rid must be a non-empty string")
            if session.get("rid") not in (None, rid):
                raise HandlerError(500, f"session already in room {session.get('rid')}")
            session.set("rid", rid)
        if session.uid is not None and session.uid != uid:
            raise HandlerError(500, f"session already bound to {session.uid}")
        if session.uid is None:
            await session.bind(uid)
            session.on_closed(self._leave_rooms)
            world = self.app.components.get("global_channels")
            if world is not None:
                with contextlib.suppress(RedisError):  # counted and logged; the login stands
                    await world.add(WORLD, uid, session.frontend_id)
        return EntryResponse(uid=uid)

    def _leave_rooms(self, session: Any, reason: str) -> None:
        for server in self.app.servers_of("chat"):
            d = self.app.rpc.chat.chatRemote.leave.to(server.id)(session.uid, session.frontend_id)
            d.addErrback(lambda _failure: None)
        world = self.app.components.get("global_channels")
        if world is not None:  # Redis down: the frontend's members go when it leaves
            world.leave(WORLD, session.uid, session.frontend_id).addErrback(lambda _f: None)

    def echo(self, session: Any, msg: Any) -> Any:
        """Answer the body unchanged, after ``delayMs`` (≤ 10000) when given."""
        delay = msg.get("delayMs") if isinstance(msg, dict) else None
        if isinstance(delay, (int, float)) and not isinstance(delay, bool) and delay > 0:
            return deferLater(self.app.clock, min(delay, MAX_DELAY_MS) / 1000.0, lambda: msg)
        return msg

    def kick(self, session: Any, msg: Any) -> dict[str, Any]:
        """Answer, then kick this session with ``msg["reason"]`` on the next turn."""
        reason = msg.get("reason") if isinstance(msg, dict) else None
        self.app.clock.callLater(0, session.kick, reason if isinstance(reason, str) else "kick")
        return {"code": 200, "kicking": True}

    def fail(self, session: Any, msg: Any) -> None:
        """Fail on purpose: the server-side failure path."""
        raise RuntimeError("deliberate handler failure")
