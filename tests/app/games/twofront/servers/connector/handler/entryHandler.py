"""connector.entryHandler.*: entry, echo (delayMs) and hang."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from pomelo_twisted.errors import HandlerError


class EntryHandler:
    def __init__(self, app):
        self.app = app

    async def entry(self, session, msg):
        uid = msg.get("uid")
        if not uid:
            raise HandlerError(500, "uid required")
        await session.bind(uid)
        session.on_closed(self._leave)
        return {"code": 200, "uid": uid}

    def _leave(self, session, reason):
        for server in self.app.servers_of("chat"):
            d = self.app.rpc.chat.chatRemote.leave.to(server.id)(session.uid, session.frontend_id)
            d.addErrback(lambda _: None)

    def echo(self, session, msg):
        delay = msg.get("delayMs")
        if delay:
            return deferLater(self.app.clock, delay / 1000.0, lambda: msg)
        return msg

    def hang(self, session, msg):
        return Deferred()
