"""chat.chatRemote.*: called by connectors when a client goes."""

from __future__ import annotations

from typing import Any


class ChatRemote:
    """Remote methods of the chat backend."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def leave(self, uid: str, frontend_id: str) -> int:
        """Remove ``uid`` from every channel; returns how many it left."""
        return int(self.app.channel_service.leave_all(uid, frontend_id))
