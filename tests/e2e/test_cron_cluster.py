"""End to end: crons, the cron verbs and reload in a real cluster of the example game.

A copy of the example game gets a cron firing every second on its chat servers
(``chatCron.report``, which logs the rooms of the server); the test waits for its log
lines on both chat servers, lists, adds and removes crons with ``pomelo-twisted cron``,
then rewrites the cron handler on disk and ``pomelo-twisted reload``s one chat server.
"""

from __future__ import annotations

import json
import re
from typing import Any

from twisted.internet.defer import inlineCallbacks

from .cluster import ClusterCase, ClusterProcess

EVERY_SECOND = {"id": "report", "time": "* * * * * *", "action": "chatCron.report"}


def count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))


class CronClusterTests(ClusterCase):
    """Crons and reload on the chat servers of a real cluster."""

    @inlineCallbacks
    def test_cron_every_second_cron_verbs_and_reload(self) -> Any:
        """An every-second cron runs on both chat servers; cron verbs and reload answer."""
        cluster = ClusterProcess()
        self.addCleanup(cluster.stop)
        crons = cluster.game / "config" / "crons.json"
        crons.write_text(json.dumps({"development": {"chat": [EVERY_SECOND]}}), encoding="utf-8")
        cluster.start()
        yield cluster.wait_started()
        for chat in ("chat-server-1", "chat-server-2"):
            # two runs: the cron fires again after its first time
            yield cluster.wait_for_log(
                rf"{chat}: 0 rooms, 0 members[\s\S]*?{chat}: 0 rooms", name=chat
            )

        out, err, code = yield cluster.cli("cron", "list", "chat-server-1")
        self.assertEqual(code, 0, err)
        row = [line for line in out.splitlines() if line.startswith("report")]
        self.assertEqual(len(row), 1, out)
        self.assertIn("chatCron.report", row[0])

        out, err, code = yield cluster.cli(
            "cron", "add", "chat-server-2", "id=late", "time=0 0 3 * * *", "action=chatCron.report"
        )
        self.assertEqual(code, 0, err)
        self.assertIn("added cron late on chat-server-2: 0 0 3 * * * -> chatCron.report", out)
        self.assertIn("T03:00:00+00:00", out)
        out, err, code = yield cluster.cli("cron", "add", "chat-server-2", "id=bad", "time=x")
        self.assertEqual(code, 1)
        self.assertIn("cron not added", err)
        out, err, code = yield cluster.cli("cron", "remove", "chat-server-2", "report")
        self.assertEqual(code, 0, err)
        self.assertIn("removed cron report on chat-server-2", out)
        self.assertIn("1 crons now", out)

        handler = cluster.game / "servers" / "chat" / "cron" / "chatCron.py"
        source = handler.read_text(encoding="utf-8")
        handler.write_text(
            source.replace('"{server}: {rooms} rooms', '"{server} v2: {rooms} rooms')
        )
        out, err, code = yield cluster.cli("reload", "chat-server-1")
        self.assertEqual(code, 0, err)
        self.assertIn("reloaded chat-server-1 (generation 1)", out)
        self.assertIn("crons: chatCron", out)
        yield cluster.wait_for_log(r"chat-server-1 v2: 0 rooms", name="chat-server-1")

        handler.write_text("class (:\n", encoding="utf-8")
        out, err, code = yield cluster.cli("reload", "chat-server-1")
        self.assertEqual(code, 1)
        self.assertIn("reload refused, old code kept", err)
        self.assertIn("chatCron.py, line 1", err)
        ran = count(r"chat-server-1 v2: 0 rooms", cluster.log("chat-server-1"))
        yield cluster.wait_for_log(
            rf"(?:chat-server-1 v2: 0 rooms[\s\S]*?){{{ran + 1}}}", name="chat-server-1"
        )
        self.assertEqual(cluster.tracebacks(), {})
