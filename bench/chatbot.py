"""Bot scenarios of the fault and soak scripts, built on the example's chat scenario.

- :class:`PrefixedChatBot`: the example's ChatBot whose uid and room carry
  ``$POMELO_BOT_PREFIX``, so two bot processes never share a uid or a room and each
  checks its own rooms completely (``chat_gaps``, ``own_missing``, ``foreign_room``);
  a connection the server side ended (not the run's own close) counts ``disconnected``.
  ``$POMELO_BOT_ROOMS`` (comma-separated) names the rooms instead: bot ``i`` joins
  ``rooms[(i // 10) % len(rooms)]`` (rooms chosen to live on one chat server).
- :class:`ProbeBot`: enters and joins ``$POMELO_BOT_ROOMS``'s first room, then sends
  every 0.25 s and appends one JSON line per request to ``$POMELO_PROBE_LOG``
  (wall-clock send time, latency, response code or ``timeout``/``closed``): the
  timeline of a fault as one client sees it. ``$POMELO_PROBE_ROUTE`` sends another
  route instead (e.g. ``chat.chatHandler.where``: the answering server is logged too),
  ``$POMELO_PROBE_INTERVAL`` changes the 0.25 s, and ``$POMELO_PROBE_OWN_ROOM=1`` gives
  each probe its own room ``{prefix}room-{index}``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pomelo_twisted.loading import import_file

_CHAT = import_file(
    Path(__file__).resolve().parent.parent / "example_game" / "bots" / "chat.py",
    "pomelo_bench_chat_",
)


def _rooms() -> list[str]:
    return [room for room in os.environ.get("POMELO_BOT_ROOMS", "").split(",") if room]


class PrefixedChatBot:
    """The example's ChatBot whose uid and room carry the process's prefix (or rooms)."""

    def __init__(self, bot: Any, context: Any) -> None:
        prefix = os.environ.get("POMELO_BOT_PREFIX", "")
        rooms = _rooms()
        group = context.index // _CHAT.ROOM_SIZE
        self.chat = _CHAT.ChatBot(bot, context)
        self.chat.uid = f"{prefix}chat-{context.index}"
        self.chat.rid = rooms[group % len(rooms)] if rooms else f"{prefix}room-{group}"
        bot.client.on_close(lambda reason: self._closed(bot, reason))

    @staticmethod
    def _closed(bot: Any, reason: str) -> None:
        if reason != "closed by client":
            bot.count("disconnected")

    async def run(self) -> None:
        """The example's run: enter, join, send until the run ends."""
        await self.chat.run()


class ProbeBot:
    """One client sending to one room every 0.25 s, each answer logged with its latency."""

    def __init__(self, bot: Any, context: Any) -> None:
        self.bot = bot
        self.context = context
        prefix = os.environ.get("POMELO_BOT_PREFIX", "probe-")
        self.uid = f"{prefix}{context.index}"
        if os.environ.get("POMELO_PROBE_OWN_ROOM") == "1":
            self.rid = f"{prefix}room-{context.index}"
        else:
            self.rid = (_rooms() or [f"{prefix}room"])[0]
        self.path = os.environ.get("POMELO_PROBE_LOG", "probe.jsonl")
        self.route = os.environ.get("POMELO_PROBE_ROUTE", _CHAT.SEND)
        self.interval = float(os.environ.get("POMELO_PROBE_INTERVAL", "0.25"))

    async def _timed(self, route: str, msg: dict[str, Any]) -> None:
        sent, began = time.time(), self.context.clock.seconds()
        server = None
        try:
            body = await self.bot.request(route, msg)
        except Exception as exc:  # timeout or closed: logged, the probe goes on
            code: object = type(exc).__name__
        else:
            code = body.get("code", 200) if isinstance(body, dict) else 200
            server = body.get("server") if isinstance(body, dict) else None
        latency = self.context.clock.seconds() - began
        record = {"t": sent, "route": route, "latency": latency, "code": code}
        if server is not None:
            record.update(server=server, rid=self.rid)
        self._log(record)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")

    async def run(self) -> None:
        """Enter and join, then send until the run ends."""
        await self._timed(_CHAT.ENTRY, {"uid": self.uid, "rid": self.rid})
        await self._timed(_CHAT.JOIN, {"rid": self.rid})
        seq = 0
        while self.bot.running:
            seq += 1
            await self._timed(self.route, {"rid": self.rid, "content": str(seq)})
            await self.bot.think(self.interval)
