"""chat.chatHandler.*: join, send, echo, and BackendSession bind/push probes."""

from __future__ import annotations

from pomelo_twisted.errors import HandlerError


class ChatHandler:
    def __init__(self, app):
        self.app = app

    def join(self, session, msg):
        channel = self.app.channel_service.get(msg["rid"], create=True)
        channel.add(session.uid, session.frontend_id)
        return {"code": 200, "members": channel.members()}

    async def send(self, session, msg):
        channel = self.app.channel_service.get(msg["rid"])
        if channel is None:
            raise HandlerError(500, "no such room")
        await channel.push("onChat", {"from": session.uid, "content": msg["content"]})
        return {"code": 200}

    def echo(self, session, msg):
        return msg

    async def login(self, session, msg):
        await session.bind(msg["uid"])
        return {"code": 200, "uid": session.uid}

    async def remember(self, session, msg):
        session.set(msg["key"], msg["value"])
        await session.sync(msg["key"])
        return {"code": 200}

    def whoami(self, session, msg):
        return {"uid": session.uid, "settings": session.settings, "server": self.app.server_id}
