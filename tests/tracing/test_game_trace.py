"""One client request through connector -> chat -> push is one trace (in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.testing import GameConnection, GameHarness
from pomelo_twisted.testing.tracing import memory_tracing, span_tree
from pomelo_twisted.tracing import RequestTracing, RpcTracing, TracingService

EXAMPLE_GAME = Path(__file__).resolve().parents[2] / "example_game"
C1 = "connector-server-1"
SEND = "chat.chatHandler.send"


def named(spans: Any, name: str, kind: str) -> ReadableSpan:
    """The one span of ``name`` and ``kind``."""
    found = [s for s in spans if s.name == name and s.kind.name == kind]
    assert len(found) == 1, (name, kind, [(s.name, s.kind.name) for s in spans])
    return found[0]


class GameTraceTests(SynchronousTestCase):
    """The example game, traced to an in-memory exporter."""

    def setUp(self) -> None:
        self.setup, self.exporter = memory_tracing()
        self.game = GameHarness(EXAMPLE_GAME, tracing=self.setup)
        self.addCleanup(self.game.stop)

    def enter(self, uid: str, rid: str) -> GameConnection:
        player = self.game.connect(C1)
        entry = player.call("connector.entryHandler.entry", {"uid": uid, "rid": rid})
        self.assertEqual(entry["code"], 200)
        self.assertEqual(player.call("chat.chatHandler.join", {"rid": rid})["code"], 200)
        return player

    def test_one_request_is_one_trace_across_servers(self) -> None:
        """send: frontend SERVER > forward CLIENT > forward SERVER > handler > push
        CLIENT > push SERVER, all of one trace, the frontend span its root."""
        alice = self.enter("alice", "r1")
        chats = alice.collect("onChat")
        self.exporter.clear()
        self.assertEqual(alice.call(SEND, {"rid": "r1", "content": "hi"}), {"code": 200})
        self.assertEqual(chats, [{"rid": "r1", "from": "alice", "content": "hi"}])
        spans = self.exporter.get_finished_spans()
        self.assertEqual({s.context.trace_id for s in spans}, {spans[0].context.trace_id})
        self.assertEqual(
            span_tree(spans),
            [
                (0, "SERVER", SEND),
                (1, "CLIENT", "pomelo.sys/forward"),
                (2, "SERVER", "pomelo.sys/forward"),
                (3, "INTERNAL", SEND),
                (4, "CLIENT", "pomelo.sys/push"),
                (5, "SERVER", "pomelo.sys/push"),
            ],
        )
        root = named(spans, SEND, "SERVER")
        self.assertIsNone(root.parent)
        self.assertEqual(
            {k: root.attributes[k] for k in ("pomelo.route", "pomelo.uid", "pomelo.server_id")},
            {"pomelo.route": SEND, "pomelo.uid": "alice", "pomelo.server_id": C1},
        )
        self.assertEqual(root.attributes["pomelo.session_id"], 1)
        self.assertEqual(root.attributes["pomelo.code"], 200)
        self.assertEqual(root.resource.attributes["service.instance.id"], C1)
        self.assertEqual(root.resource.attributes["service.name"], "pomelo")
        self.assertEqual(root.resource.attributes["pomelo.server_type"], "connector")
        handler = named(spans, SEND, "INTERNAL")
        self.assertIn(handler.attributes["pomelo.server_id"], ("chat-server-1", "chat-server-2"))
        self.assertEqual(handler.resource.attributes["pomelo.server_type"], "chat")
        self.assertEqual(handler.attributes["pomelo.uid"], "alice")
        call = named(spans, "pomelo.sys/forward", "CLIENT")
        self.assertEqual(call.attributes["rpc.method"], "forward")
        self.assertEqual(call.attributes["pomelo.peer"], handler.attributes["pomelo.server_id"])
        self.assertTrue(all(s.status.status_code is StatusCode.UNSET for s in spans))

    def test_each_request_is_its_own_trace(self) -> None:
        """Two requests of one client: two traces, neither a child of the other."""
        alice = self.enter("alice", "r1")
        self.exporter.clear()
        alice.call(SEND, {"rid": "r1", "content": "a"})
        alice.call(SEND, {"rid": "r1", "content": "b"})
        spans = self.exporter.get_finished_spans()
        roots = [s for s in spans if s.parent is None]
        self.assertEqual(len(roots), 2)
        self.assertEqual(len({s.context.trace_id for s in spans}), 2)

    def test_an_error_answer_marks_the_spans(self) -> None:
        """A handler's error body: the handler span and the frontend span are ERROR with
        its code; the RPC hop itself succeeded."""
        alice = self.enter("alice", "r1")
        self.exporter.clear()
        self.assertEqual(alice.call(SEND, {"rid": "nowhere", "content": "hi"})["code"], 500)
        spans = self.exporter.get_finished_spans()
        for kind in ("SERVER", "INTERNAL"):
            span = named(spans, SEND, kind)
            self.assertIs(span.status.status_code, StatusCode.ERROR)
            self.assertEqual(span.attributes["pomelo.code"], 500)
        hop = named(spans, "pomelo.sys/forward", "CLIENT")
        self.assertIs(hop.status.status_code, StatusCode.UNSET)

    def test_a_local_route_and_the_calls_it_makes(self) -> None:
        """A request the frontend answers itself (entry: unique login asks the other
        connector to kick the uid): its SERVER span, with the uid it bound, and its RPCs
        below it."""
        player = self.game.connect(C1)
        player.call("connector.entryHandler.entry", {"uid": "bob"})
        spans = self.exporter.get_finished_spans()
        self.assertEqual(
            span_tree(spans),
            [
                (0, "SERVER", "connector.entryHandler.entry"),
                (1, "CLIENT", "pomelo.sys/kick_uid"),
                (2, "SERVER", "pomelo.sys/kick_uid"),
            ],
        )
        root = named(spans, "connector.entryHandler.entry", "SERVER")
        self.assertEqual(root.attributes["pomelo.uid"], "bob")

    def test_each_server_has_its_tracing_service_first(self) -> None:
        """Every server loads a TracingService as its first component (it stops last)."""
        for app in self.game.apps.values():
            self.assertEqual(next(iter(app.components)), "tracing")
            self.assertIsInstance(app.components["tracing"], TracingService)


class UnsampledTraceTests(SynchronousTestCase):
    """A sampler that drops every request."""

    def test_a_dropped_request_records_no_span(self) -> None:
        """With ALWAYS_OFF at the frontend nothing is exported, on any server."""
        setup, exporter = memory_tracing(ALWAYS_OFF)
        game = GameHarness(EXAMPLE_GAME, tracing=setup)
        self.addCleanup(game.stop)
        alice = game.connect(C1)
        alice.call("connector.entryHandler.entry", {"uid": "alice", "rid": "r1"})
        alice.call("chat.chatHandler.join", {"rid": "r1"})
        self.assertEqual(alice.call(SEND, {"rid": "r1", "content": "hi"}), {"code": 200})
        self.assertEqual(exporter.get_finished_spans(), ())


class TracingOffTests(SynchronousTestCase):
    """Without a TracingSetup nothing of tracing is installed."""

    def test_no_hooks_without_tracing(self) -> None:
        """No tracing hook and no tracing component on any server (the example game's
        metrics hooks are there: they are not tracing's)."""
        game = GameHarness(EXAMPLE_GAME)
        self.addCleanup(game.stop)
        for app in game.apps.values():
            hooks = [app.instruments.requests, app.instruments.rpc]
            for hook in hooks:
                chained = getattr(hook, "hooks", [hook])
                self.assertFalse(
                    any(isinstance(h, (RequestTracing, RpcTracing)) for h in chained), app
                )
            self.assertNotIn("tracing", app.components)
