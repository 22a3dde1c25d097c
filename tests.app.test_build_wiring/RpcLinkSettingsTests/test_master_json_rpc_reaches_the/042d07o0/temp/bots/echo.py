"""Login, then an echo loop: the connector's round trip under load.

``pomelo-twisted bot example_game/bots/echo.py --target tcp:127.0.0.1:3010 --bots 100``
"""

from __future__ import annotations

from typing import Any

ENTRY = "connector.entryHandler.entry"
ECHO = "connector.entryHandler.echo"


async def scenario(bot: Any, context: Any) -> None:
    """Enter as ``echo-<index>``, then echo a ~100-byte body until the run ends,
    counting any answer that is not the body sent (``echo_mismatches``)."""
    await bot.request(ENTRY, {"uid": f"echo-{context.index}"})
    sequence = 0
    while bot.running:
        sequence += 1
        body = {"bot": context.index, "seq": sequence, "pad": "x" * 64}
        if await bot.request(ECHO, body) != body:
            bot.count("echo_mismatches")
        await bot.think(context.random.uniform(0.05, 0.15))
