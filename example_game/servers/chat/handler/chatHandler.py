"""chat.chatHandler.*: join, send, echo, where and announce (backend routes, reached by
forwarding)."""

from __future__ import annotations

from typing import Any

import msgspec

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.typed import pushes

__handler__ = "ChatHandler"

WORLD = "world"


class JoinRequest(msgspec.Struct):
    """Join a chat room."""

    rid: str = ""


class JoinResponse(msgspec.Struct):
    """The room joined and its members (uids)."""

    rid: str
    members: list[str]
    code: int = 200


class SendRequest(msgspec.Struct):
    """A chat message to room ``rid``."""

    rid: str
    content: str


class ChatMessage(msgspec.Struct):
    """The ``onChat`` push every member of the room gets."""

    rid: str
    content: str
    from_: str = msgspec.field(name="from")


class Ok(msgspec.Struct):
    """Done."""

    code: int = 200


class ChatHandler:
    """Routes of the chat backend; ``session`` is a BackendSession."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @staticmethod
    def _uid(session: Any) -> str:
        if session.uid is None:
            raise HandlerError(500, "call connector.entryHandler.entry first")
        return str(session.uid)

    def join(self, session: Any, msg: JoinRequest) -> JoinResponse:
        """Add the session's uid to channel ``rid`` (the room given at entry, if any)."""
        uid = self._uid(session)
        rid = msg.rid
        if not rid:
            raise HandlerError(500, "rid required")
        entered = session.get("rid")
        if entered is not None and entered != rid:
            raise HandlerError(500, f"this session entered room {entered}, not {rid}")
        channel = self.app.channel_service.get(rid, create=True)
        channel.add(uid, session.frontend_id)
        return JoinResponse(rid=rid, members=list(channel.members()))

    @pushes(onChat=ChatMessage)
    async def send(self, session: Any, msg: SendRequest) -> Ok:
        """Push ``onChat`` {rid, from, content} to every member of ``rid``, sender included."""
        uid = self._uid(session)
        rid = msg.rid
        channel = self.app.channel_service.get(rid)
        if channel is None:
            raise HandlerError(500, f"no such room: {rid}")
        await channel.push("onChat", {"rid": rid, "from": uid, "content": msg.content})
        return Ok()

    def echo(self, session: Any, msg: Any) -> Any:
        """Answer the body unchanged (measures forwarding)."""
        return msg

    def where(self, session: Any, msg: Any) -> dict[str, Any]:
        """Name the chat server that serves this session's room (shows the routing)."""
        return {"code": 200, "server": self.app.server_id}

    async def announce(self, session: Any, msg: Any) -> dict[str, Any]:
        """Push ``onAnnounce`` {from, content, server} to the global channel ``world`` (every
        player who entered, on any connector; needs ``config/redis.json``). Answers with
        the frontends that took it and this server's global-channel counters (``stats``:
        pushes, rpcs, rpc_errors, pushed_uids, redis_errors)."""
        uid = self._uid(session)
        world = self.app.components.get("global_channels")
        if world is None:
            raise HandlerError(500, "no global channels here: the game has no config/redis.json")
        content = msg.get("content") if isinstance(msg, dict) else None
        body = {"from": uid, "content": content, "server": self.app.server_id}
        took = await world.push(WORLD, "onAnnounce", body)
        stats = world.stats
        return {
            "code": 200,
            "server": self.app.server_id,
            "frontends": took,
            "stats": {
                "pushes": stats.pushes,
                "rpcs": stats.rpcs,
                "rpc_errors": stats.rpc_errors,
                "pushed_uids": stats.pushed_uids,
                "redis_errors": stats.redis_errors,
            },
        }
