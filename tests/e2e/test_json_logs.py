"""``pomelo-twisted start --log-format json`` on a real cluster: every line of every log
is JSON, and one forwarded request can be followed from connector to chat by its rid."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks

from pomelo_twisted.client import PomeloClient, connect

from .cluster import ENTRY, ClusterCase, ClusterProcess
from .test_cluster import CHAT_ECHO

JSON_START = ("--log-format", "json", "--log-level", "info,pomelo_twisted.access=debug")


def json_lines(cluster: ClusterProcess, name: str) -> list[dict[str, Any]]:
    """Every line of a log, each parsed as JSON (a line that is not fails the test)."""
    lines = []
    for number, line in enumerate(cluster.log(name).splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{name} log, line {number} is not JSON: {line!r}") from None
    return lines


class JsonLogTests(ClusterCase):
    """The example game's cluster logging JSON lines."""

    @inlineCallbacks
    def test_every_line_is_json_and_a_request_is_followed_by_its_rid(self) -> Any:
        """start --log-format json (access log at debug), a forwarded echo request, stop:
        every line of the master's and every server's log parses as JSON and names its
        server; the connector's access line and the chat server's line of the forward
        carry the same rid; nothing above info, no traceback."""
        cluster = yield self.started(start_args=JSON_START)
        port = cluster.client_port("connector-server-1")
        client: PomeloClient = yield connect(reactor, f"tcp:127.0.0.1:{port}", timeout=5.0)
        self.addCleanup(client.close)
        reply = yield client.request(ENTRY, {"uid": "ada", "rid": "room-1"})
        self.assertEqual(reply, {"code": 200, "uid": "ada"})
        echoed = yield client.request(CHAT_ECHO, {"n": 7})
        self.assertEqual(echoed, {"n": 7})
        client.close()
        out, err, code = yield cluster.cli("stop")
        self.assertEqual(code, 0, out + err)
        exit_code = yield cluster.wait_exit()
        self.assertEqual(exit_code, 0)

        logs = {name: json_lines(cluster, name) for name in ["master", *cluster.server_ids()]}
        for name, lines in logs.items():
            self.assertTrue(lines, f"{name} logged nothing")
            loud = [x for x in lines if x["level"] not in ("debug", "info") or "traceback" in x]
            self.assertEqual(loud, [], name)
        for server_id in cluster.server_ids():
            self.assertEqual({x["server"] for x in logs[server_id]}, {server_id})
        self.assertIn("cluster started:", " ".join(x["msg"] for x in logs["master"]))
        self.assertEqual({x["server"] for x in logs["master"]}, {"master-server-1"})

        access = [
            x
            for x in logs["connector-server-1"]
            if x["namespace"] == "pomelo_twisted.access" and x.get("route") == CHAT_ECHO
        ]
        self.assertEqual(len(access), 1, logs["connector-server-1"])
        rid = access[0]["rid"]
        self.assertEqual((access[0]["sid"], access[0]["uid"]), (access[0]["sid"], "ada"))
        served = [
            x
            for chat in ("chat-server-1", "chat-server-2")
            for x in logs[chat]
            if x.get("rid") == rid
        ]
        self.assertEqual(len(served), 1, [logs["chat-server-1"], logs["chat-server-2"]])
        self.assertEqual(served[0]["route"], CHAT_ECHO)
        self.assertIn("forwarded chat.chatHandler.echo from connector-server-1", served[0]["msg"])
