"""Faults on a real cluster, the short ones (``bench/faults.py`` and ``bench/soak.py`` run
the long ones under load), and the helpers of those scripts."""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import LoopingCall, deferLater
from twisted.trial.unittest import SynchronousTestCase

from bench.cluster import level_lines, rss_kb
from bench.faults import rooms_on
from bench.soak import merge_reports, slope_per_minute, summarize_series
from pomelo_twisted.client import PomeloClient, connect
from pomelo_twisted.rpc import default_route

from .cluster import ENTRY, ClusterCase, ClusterProcess
from .test_cluster import CHAT_ECHO, CHATS, room_on

ABOVE_INFO = re.compile(r"#(warn|error|critical)\]")
STOP_SECONDS = 6.0


class ScriptHelperTests(SynchronousTestCase):
    """What the fault and soak scripts compute from their samples and logs."""

    def test_slope_per_minute(self) -> None:
        """The least-squares slope of (seconds, KiB) is in KiB/min; flat or short is 0/None."""
        self.assertAlmostEqual(slope_per_minute([(0, 100), (60, 160), (120, 220)]) or 0, 60.0)
        self.assertEqual(slope_per_minute([(0, 5), (10, 5), (20, 5)]), 0.0)
        self.assertIsNone(slope_per_minute([(0, 5)]))
        self.assertIsNone(slope_per_minute([(3, 5), (3, 6)]))

    def test_summarize_series(self) -> None:
        """Per server: first, warmed-up, last and highest RSS, the slopes, how many pids."""
        samples = [(0.0, "a", 1, 100), (30.0, "a", 1, 400), (60.0, "a", 2, 200), (0.0, "b", 3, 7)]
        summary = summarize_series(samples)
        self.assertEqual(
            {k: summary["a"][k] for k in ("samples", "pids", "start_kb", "end_kb", "max_kb")},
            {"samples": 3, "pids": 2, "start_kb": 100, "end_kb": 200, "max_kb": 400},
        )
        self.assertAlmostEqual(summary["a"]["slope_kb_min"], 100.0)
        self.assertAlmostEqual(summary["a"]["slope_2nd_half_kb_min"], -400.0)
        self.assertIsNone(summary["b"]["slope_kb_min"])
        warm = summarize_series(samples, warmup=30.0)["a"]
        self.assertEqual(warm["warm_kb"], 400)
        self.assertAlmostEqual(warm["slope_warm_kb_min"], -400.0)

    def test_merge_reports(self) -> None:
        """The bots' reports add up: requests, errors by route and code, scenario checks."""
        one = {
            "requests": 10,
            "errors": 2,
            "routes": {"r": {"errors": {"503": 2}}},
            "errors_by_kind": {"503": 2},
            "counters": {"chat_gaps": 1},
            "bots": {"started": 5},
            "latency_ms": {"p99": 3.0},
        }
        two = {"requests": 5, "errors": 1, "routes": {"r": {"errors": {"503": 1}}}, "bots": {}}
        merged = merge_reports([one, two, {}])
        self.assertEqual((merged["requests"], merged["errors"]), (15, 3))
        self.assertEqual(merged["errors_by_route"], {"r": {"503": 3}})
        self.assertEqual(merged["counters"], {"chat_gaps": 1})
        self.assertEqual(merged["bots"], {"started": 5})

    def test_level_lines(self) -> None:
        """Tracebacks and warn/error/critical lines are found; info and debug are not."""
        log = "\n".join(
            [
                "2026-01-01T00:00:00+0000 [a#info] fine",
                "2026-01-01T00:00:00+0000 [a#debug] fine",
                "2026-01-01T00:00:00+0000 [a#warn] bad",
                "2026-01-01T00:00:00+0000 [a#error] bad",
                "2026-01-01T00:00:00+0000 [a#critical] bad",
                "\tTraceback (most recent call last):",
            ]
        )
        tracebacks, above = level_lines(log)
        self.assertEqual(len(tracebacks), 1)
        self.assertEqual([line.split()[-1] for line in above], ["bad"] * 3)

    def test_level_lines_of_json_logs(self) -> None:
        """The same in JSON lines (``--log-format json``)."""
        log = "\n".join(
            [
                '{"level":"info","msg":"fine"}',
                '{"level":"debug","msg":"fine"}',
                '{"level":"warn","msg":"bad"}',
                '{"level":"error","msg":"bad","traceback":"Traceback (most recent call last):"}',
            ]
        )
        tracebacks, above = level_lines(log)
        self.assertEqual((len(tracebacks), len(above)), (1, 2))

    def test_rooms_on_follows_the_example_routing(self) -> None:
        """The rooms the fault script picks for a chat server are routed to that server."""
        for server in ("chat-server-1", "chat-server-2"):
            rooms = rooms_on(server, ["chat-server-2", "chat-server-1"], 5, "x-")
            self.assertEqual(len(set(rooms)), 5)
            self.assertEqual({room_route(room) for room in rooms}, {server})

    def test_rss_of_this_process(self) -> None:
        """RSS is read from /proc (KiB) and is None for a pid that does not exist."""
        if not os.path.exists("/proc/self/status"):
            self.skipTest("no /proc")
        self.assertGreater(rss_kb(os.getpid()) or 0, 1000)
        self.assertIsNone(rss_kb(2**22 + 12345))


def room_route(rid: str) -> str:
    """Where the example game routes room ``rid``."""
    return default_route(rid, CHATS)


def above_info(cluster: ClusterProcess) -> dict[str, list[str]]:
    """Per log (the master's and every server's): lines with a traceback or above info."""
    found = {}
    for name in ["master", *cluster.server_ids()]:
        tracebacks, above = level_lines(cluster.log(name))
        if tracebacks or above:
            found[name] = tracebacks + above
    return found


class ClusterFaultTests(ClusterCase):
    """Restarts and a hung backend on the example game's real cluster."""

    @inlineCallbacks
    def test_restart_server_by_server_logs_nothing_above_info(self) -> Any:
        """start, ``restart`` of each server in turn (each up again with a new pid), ``stop``:
        no log holds a traceback or a line above info."""
        cluster = yield self.started()
        yield self.restart_each_then_stop(cluster)

    @inlineCallbacks
    def test_restart_server_by_server_in_json_logs_nothing_above_info(self) -> Any:
        """The same with ``--log-format json``: every line of every log is JSON, and none
        is above info or holds a traceback."""
        cluster = yield self.started(start_args=("--log-format", "json"))
        yield self.restart_each_then_stop(cluster)
        for name in ["master", *cluster.server_ids()]:
            for line in cluster.log(name).splitlines():
                self.assertNotIn("traceback", json.loads(line), name)

    @inlineCallbacks
    def restart_each_then_stop(self, cluster: ClusterProcess) -> Any:
        """``restart`` each server in turn (each up again with a new pid), ``stop``: no log
        holds a traceback or a line above info."""
        for server_id in cluster.server_ids():
            up = re.compile(rf"server {server_id} \(\w+\) is up, pid (\d+)")
            before = up.findall(cluster.log())
            out, err, code = yield cluster.cli("restart", server_id)
            self.assertEqual(code, 0, out + err)
            deadline = reactor.seconds() + 30.0
            while len(up.findall(cluster.log())) <= len(before):
                self.assertLess(reactor.seconds(), deadline, f"{server_id} not up again")
                yield deferLater(reactor, 0.1, lambda: None)
            self.assertNotIn(up.findall(cluster.log())[-1], before)
        out, err, code = yield cluster.cli("stop")
        self.assertEqual(code, 0, out + err)
        exit_code = yield cluster.wait_exit()
        self.assertEqual(exit_code, 0)
        self.assertEqual(above_info(cluster), {})

    @inlineCallbacks
    def test_sigstop_of_a_chat_server(self) -> Any:
        """SIGSTOP chat-server-1: requests to its room are answered with an error before
        the client's 10 s deadline (fast once its peers marked it down), the other chat
        server's room keeps answering, and after SIGCONT it answers again within 5 s."""
        cluster = yield self.started()
        rooms = {"hot": room_on("chat-server-1"), "cold": room_on("chat-server-2")}
        clients: dict[str, PomeloClient] = {}
        for name, connector in (("hot", "connector-server-1"), ("cold", "connector-server-2")):
            port = cluster.client_port(connector)
            client = yield connect(reactor, f"tcp:127.0.0.1:{port}", timeout=5.0)
            self.addCleanup(client.close)
            yield client.request(ENTRY, {"uid": f"player-{name}", "rid": rooms[name]})
            clients[name] = client
        results: dict[str, list[tuple[float, float, bool]]] = {"hot": [], "cold": []}
        pending: list[Deferred[Any]] = []

        def tick() -> None:
            for name, client in clients.items():
                sent = reactor.seconds()
                d = client.request(CHAT_ECHO, {"t": sent}, timeout=10.0)

                def answered(body: Any, name: str = name, sent: float = sent) -> None:
                    results[name].append((sent, reactor.seconds(), body == {"t": sent}))

                d.addCallback(answered)
                pending.append(d)

        loop = LoopingCall(tick)
        loop.clock = reactor
        loop.start(0.1)
        yield deferLater(reactor, 0.5, lambda: None)
        pid = int(re.findall(r"started chat-server-1 \(chat\) as pid (\d+)", cluster.log())[-1])
        stopped_at = reactor.seconds()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield deferLater(reactor, STOP_SECONDS, lambda: None)
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed_at = reactor.seconds()
        deadline = resumed_at + 8.0
        while reactor.seconds() < deadline:
            if [r for r in results["hot"] if r[0] > resumed_at + 1.0 and r[2]]:
                break
            yield deferLater(reactor, 0.1, lambda: None)
        loop.stop()
        yield gatherResults(pending)

        self.assertTrue(all(ok for _, _, ok in results["cold"]), "the other room failed")
        during = [r for r in results["hot"] if stopped_at < r[0] < resumed_at]
        errors = [r for r in during if not r[2]]
        self.assertGreater(len(errors), len(during) / 2)
        self.assertLess(max(answered - sent for sent, answered, _ in errors), 6.0)
        late = [answered - sent for sent, answered, ok in errors if sent > stopped_at + 4.5]
        self.assertTrue(late, "no request sent once chat-server-1 was marked down")
        self.assertLess(sorted(late)[len(late) // 2], 0.5)  # failing fast, not waiting
        back = [sent for sent, _, ok in results["hot"] if ok and sent >= resumed_at]
        self.assertTrue(back and back[0] - resumed_at < 5.0, "no answer within 5 s of SIGCONT")
        self.assertTrue(all(ok for sent, _, ok in results["hot"] if sent > back[0] + 1.0))
        self.assertEqual(cluster.tracebacks(), {})
