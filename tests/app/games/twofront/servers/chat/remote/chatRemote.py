"""chat.chatRemote.leave: a client went."""

from __future__ import annotations


class ChatRemote:
    def __init__(self, app):
        self.app = app

    def leave(self, uid, frontend_id):
        return self.app.channel_service.leave_all(uid, frontend_id)
