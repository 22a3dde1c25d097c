"""The example chat scenario with uids and rooms prefixed by ``$POMELO_BOT_PREFIX``.

Two bot processes (one per connector) then never share a uid or a room, so each
checks its own rooms completely (``chat_gaps``, ``own_missing``, ``foreign_room``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pomelo_twisted.loading import import_file

_CHAT = import_file(
    Path(__file__).resolve().parent.parent / "example_game" / "bots" / "chat.py",
    "pomelo_bench_chat_",
)


class PrefixedChatBot:
    """The example's ChatBot whose uid and room carry the process's prefix."""

    def __init__(self, bot: Any, context: Any) -> None:
        prefix = os.environ.get("POMELO_BOT_PREFIX", "")
        self.chat = _CHAT.ChatBot(bot, context)
        self.chat.uid = f"{prefix}chat-{context.index}"
        self.chat.rid = f"{prefix}room-{context.index // _CHAT.ROOM_SIZE}"

    async def run(self) -> None:
        """The example's run: enter, join, send until the run ends."""
        await self.chat.run()
