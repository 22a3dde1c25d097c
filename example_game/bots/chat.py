"""Chat rooms: bots enter a room of ``ROOM_SIZE``, join it, send and receive ``onChat``.

``pomelo-twisted bot example_game/bots/chat.py --target tcp:127.0.0.1:3010 --bots 200``

Every bot checks what it receives (messages are ``"<seq> hello from <uid>"``): its own
messages must come back (the sender is a member), and the messages of each other member
must arrive in order with no gap (``chat_gaps``, ``own_missing``, ``foreign_room`` count
what did not; all must be 0).

The game allows one login per uid in the whole cluster, and a bot's uid is
``chat-<index>-<a draw of its seeded random>``: to fill rooms spanning both connectors,
run one runner per connector with a different ``--seed`` (same indices, so the same
rooms; other uids, so nobody is kicked with "another login").
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

ROOM_SIZE = 10
ENTRY = "connector.entryHandler.entry"
JOIN = "chat.chatHandler.join"
SEND = "chat.chatHandler.send"
PUSH = "onChat"


def sequence_of(content: object) -> int | None:
    """The sequence number a bot's message starts with (``"<seq> hello from <uid>"``).

    The content is a string, as a chat client's is: the example game's protos declare
    ``onChat.content`` a string, so protobuf clients in the room get the bots' messages.
    """
    if not isinstance(content, str):
        return None
    head = content.split(" ", 1)[0]
    return int(head) if head.isdigit() and len(head) <= 12 else None


class ChatBot:
    """One member of ``room-<index // ROOM_SIZE>``."""

    def __init__(self, bot: Any, context: Any) -> None:
        self.bot = bot
        self.context = context
        self.uid = f"chat-{context.index}-{context.random.getrandbits(24):06x}"
        self.rid = f"room-{context.index // ROOM_SIZE}"
        self.sent = 0
        self.last_seen: dict[str, int] = {}  # sender uid -> last sequence number received
        self.own: dict[int, Deferred[None]] = {}
        bot.client.on(PUSH, self.received)
        bot.client.on_close(self.closed)

    def received(self, body: Any) -> None:
        """Check one push: room, order and gaps per sender; settle our own messages."""
        if not isinstance(body, dict) or body.get("rid") != self.rid:
            self.bot.count("foreign_room")
            return
        sender, content = body.get("from"), body.get("content")
        seq = sequence_of(content)
        if seq is None or not isinstance(sender, str):
            self.bot.count("malformed_pushes")
            return
        last = self.last_seen.get(sender)
        if isinstance(seq, int) and last is not None and seq != last + 1:
            self.bot.count("chat_gaps", abs(seq - last - 1) or 1)
        if isinstance(seq, int):
            self.last_seen[sender] = seq
        if sender == self.uid and isinstance(seq, int):
            waiting = self.own.pop(seq, None)
            if waiting is not None:
                waiting.callback(None)

    async def run(self) -> None:
        """Enter, join, then send every 0.5–1.5 s until the run ends."""
        bot = self.bot
        await bot.request(ENTRY, {"uid": self.uid, "rid": self.rid})
        await bot.request(JOIN, {"rid": self.rid})
        while bot.running:
            self.sent += 1
            arrived: Deferred[None] = Deferred()
            self.own[self.sent] = arrived
            message = f"{self.sent} hello from {self.uid}"
            await bot.request(SEND, {"rid": self.rid, "content": message})
            if self.sent in self.own:  # not pushed back before the answer: wait (bounded)
                timer = self.context.clock.callLater(5.0, self.missing, self.sent)
                await arrived
                if timer.active():
                    timer.cancel()
            await bot.think(self.context.random.uniform(0.5, 1.5))

    def closed(self, reason: str) -> None:
        """The connection is gone (the run ended): stop waiting, count nothing."""
        waiting, self.own = list(self.own.values()), {}
        for arrived in waiting:
            arrived.callback(None)

    def missing(self, seq: int) -> None:
        """Our own message never came back."""
        waiting = self.own.pop(seq, None)
        if waiting is not None:
            self.bot.count("own_missing")
            waiting.callback(None)
