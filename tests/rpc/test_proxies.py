"""app.rpc.<type>.<remote>.<method>: routed, targeted and broadcast calls."""

from __future__ import annotations

import copy
import zlib
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError, RpcError, RpcTimeout
from pomelo_twisted.rpc import MethodProxy, RemoteProxy, TypeProxy

from .helpers import Cluster


class Session:
    """Session-like and not plain data: fine as a route parameter, never sent."""

    def __init__(self, uid: str) -> None:
        self.id = 1
        self.uid = uid


class RoutedCallTests(SynchronousTestCase):
    """method(route_param, *args)."""

    def setUp(self) -> None:
        self.cluster = Cluster()

    def test_reaches_the_routed_server_without_the_route_param(self) -> None:
        """leave('u1', 'x') reaches the server crc32('u1') picks, with args ('x',) only."""
        self.assertEqual(zlib.crc32(b"u1") % 2, 0)  # index 0 of [chat-1, chat-2]
        d = self.cluster.rpc.chat.chatRemote.record("u1", "x")
        self.cluster.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "chat-1")
        self.assertEqual(self.cluster.remotes["chat-1"].received, [("record", ("x",))])
        self.assertEqual(self.cluster.remotes["chat-2"].received, [])

    def test_other_uid_other_server(self) -> None:
        """u4 (crc32 odd) goes to chat-2."""
        d = self.cluster.rpc.chat.chatRemote.record("u4")
        self.cluster.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "chat-2")
        self.assertEqual(self.cluster.remotes["chat-2"].received, [("record", ())])

    def test_session_route_param(self) -> None:
        """A session routes by its uid and, not being sent, need not be plain data."""
        d = self.cluster.rpc.chat.chatRemote.echo(Session("u4"), "u4", 3)
        self.cluster.clock.advance(0)
        self.assertEqual(self.successResultOf(d), ["u4", 3])

    def test_router_override(self) -> None:
        """The router's override for the type decides the server."""
        self.cluster.router.set("chat", lambda param, servers: "chat-2")
        d = self.cluster.rpc.chat.chatRemote.record("u1")
        self.cluster.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "chat-2")

    def test_unknown_type(self) -> None:
        """A server type with no server: an already failed Deferred naming it."""
        d = self.cluster.rpc.area.areaRemote.enter("u1")
        self.assertIn("no server of type 'area'", str(self.failureResultOf(d, RpcError).value))

    def test_failing_route_function(self) -> None:
        """An exception of a route function fails the Deferred; call() never raises."""
        self.cluster.router.set("chat", lambda param, servers: str(1 // 0))
        self.failureResultOf(self.cluster.rpc.chat.chatRemote.record("u1"), ZeroDivisionError)

    def test_names_are_checked_by_the_callee(self) -> None:
        """An undeclared remote or method is refused by the callee's table, not locally."""
        d = self.cluster.rpc.chat.chatRemote.nope("u1")
        self.assertNoResult(d)
        self.cluster.clock.advance(0)
        self.assertIn("chatRemote.nope", str(self.failureResultOf(d, RpcError).value))

    def test_handler_error_passes_through(self) -> None:
        """A remote HandlerError reaches the caller with its code."""
        d = self.cluster.rpc.chat.chatRemote.refuse("u1", 500, "full")
        self.cluster.clock.advance(0)
        self.assertEqual(self.failureResultOf(d, HandlerError).value.code, 500)


class TimeoutTests(SynchronousTestCase):
    """The default deadline and the per-call override."""

    def setUp(self) -> None:
        self.cluster = Cluster(default_timeout=10.0)

    def test_default_timeout(self) -> None:
        """Without timeout=, the proxies' default applies."""
        d = self.cluster.rpc.chat.chatRemote.later("u1")
        self.cluster.clock.advance(9)
        self.assertNoResult(d)
        self.cluster.clock.advance(1)
        self.failureResultOf(d, RpcTimeout)

    def test_per_call_timeout(self) -> None:
        """timeout= overrides the default for one call, for all three kinds of call."""
        method = self.cluster.rpc.chat.chatRemote.later
        routed = method("u1", timeout=2)
        targeted = method.to("chat-2")(timeout=2)
        everywhere = method.to_all(timeout=2)
        self.cluster.clock.advance(2)
        self.failureResultOf(routed, RpcTimeout)
        self.failureResultOf(targeted, RpcTimeout)
        results = self.successResultOf(everywhere)
        self.assertEqual(sorted(results), ["chat-1", "chat-2"])
        for value in results.values():
            self.assertIsInstance(value, RpcTimeout)


class TargetedCallTests(SynchronousTestCase):
    """method.to(server_id)(*args) and method.to_all(*args)."""

    def setUp(self) -> None:
        self.cluster = Cluster()

    def test_to_passes_exactly_the_args(self) -> None:
        """to(id)(*args) calls that server with exactly args (no route parameter)."""
        d = self.cluster.rpc.chat.chatRemote.record.to("chat-2")("a", 1)
        self.cluster.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "chat-2")
        self.assertEqual(self.cluster.remotes["chat-2"].received, [("record", ("a", 1))])

    def test_to_a_server_of_another_type(self) -> None:
        """to(id) with an id that is not a server of the type fails, naming both."""
        d = self.cluster.rpc.chat.chatRemote.record.to("connector-1")()
        message = str(self.failureResultOf(d, RpcError).value)
        self.assertIn("'connector-1'", message)
        self.assertIn("'chat'", message)

    def test_to_an_unknown_type(self) -> None:
        """to(id) on a type with no server fails naming the type."""
        d = self.cluster.rpc.area.areaRemote.enter.to("area-1")()
        self.assertIn("no server of type 'area'", str(self.failureResultOf(d, RpcError).value))

    def test_to_all(self) -> None:
        """to_all(*args) calls every server of the type: a dict id -> result."""
        d = self.cluster.rpc.chat.chatRemote.record.to_all("hello")
        self.assertNoResult(d)
        self.cluster.clock.advance(0)
        self.assertEqual(self.successResultOf(d), {"chat-1": "chat-1", "chat-2": "chat-2"})
        for server_id in ["chat-1", "chat-2"]:
            self.assertEqual(self.cluster.remotes[server_id].received, [("record", ("hello",))])
        self.assertEqual(self.cluster.remotes["connector-1"].received, [])

    def test_to_all_includes_failures_as_exceptions(self) -> None:
        """A failed server's entry is its exception instance; the others still answer."""
        self.cluster.transport.unregister("chat-2")
        d = self.cluster.rpc.chat.chatRemote.record.to_all()
        self.cluster.clock.advance(0)
        results = self.successResultOf(d)
        self.assertEqual(results["chat-1"], "chat-1")
        self.assertIsInstance(results["chat-2"], RpcError)
        self.assertIn("'chat-2'", str(results["chat-2"]))

    def test_to_all_unknown_type(self) -> None:
        """to_all on a type with no server fails naming the type."""
        d = self.cluster.rpc.area.areaRemote.enter.to_all()
        self.assertIn("no server of type 'area'", str(self.failureResultOf(d, RpcError).value))


class AttributeTests(SynchronousTestCase):
    """How the proxies are built by attribute access."""

    def setUp(self) -> None:
        self.cluster = Cluster()

    def test_levels(self) -> None:
        """Type, remote and method proxies, built once and reused."""
        rpc = self.cluster.rpc
        self.assertIsInstance(rpc.chat, TypeProxy)
        self.assertIsInstance(rpc.chat.chatRemote, RemoteProxy)
        self.assertIsInstance(rpc.chat.chatRemote.leave, MethodProxy)
        self.assertIs(rpc.chat.chatRemote.leave, rpc.chat.chatRemote.leave)
        self.assertEqual(repr(rpc.chat.chatRemote.leave), "<rpc proxy chat.chatRemote.leave>")

    def test_private_names_raise_attribute_error(self) -> None:
        """Names starting with _ raise AttributeError at every level (no dunder surprises)."""
        rpc: Any = self.cluster.rpc
        for obj in [rpc, rpc.chat, rpc.chat.chatRemote]:
            for name in ["_private", "__len__", "__deepcopy__", "__wrapped__"]:
                self.assertRaises(AttributeError, getattr, obj, name)
            self.assertFalse(hasattr(obj, "__iter__"))

    def test_copy_and_introspection_are_harmless(self) -> None:
        """copy.copy and callable() work without building a call."""
        proxy = self.cluster.rpc.chat.chatRemote
        self.assertIsInstance(copy.copy(proxy), RemoteProxy)
        self.assertTrue(callable(proxy.leave))
        self.assertEqual(self.cluster.clock.getDelayedCalls(), [])

    def test_calls_return_deferreds(self) -> None:
        """Every kind of call returns a Deferred."""
        method = self.cluster.rpc.chat.chatRemote.record
        for d in [method("u1"), method.to("chat-1")(), method.to_all()]:
            self.assertIsInstance(d, Deferred)
        self.cluster.clock.advance(0)
