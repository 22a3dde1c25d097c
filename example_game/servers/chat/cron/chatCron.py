"""chatCron.*: the chat servers' crons (``config/crons.json``; pomelo's ``cron`` folder).

A cron handler is built like a handler, as ``ChatCron(app)``; ``config/crons.json`` names
``chatCron.<method>`` and the server calls that method, without arguments, at each time.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

log = Logger()


class ChatCron:
    """The chat servers' periodic jobs."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def report(self) -> dict[str, int]:
        """Log how many rooms this server holds and how many members they have."""
        channels = self.app.channel_service.channels()
        members = sum(len(channel.members()) for channel in channels)
        log.info(
            "{server}: {rooms} rooms, {members} members",
            server=self.app.server_id,
            rooms=len(channels),
            members=members,
        )
        return {"rooms": len(channels), "members": members}
