"""Idempotent remotes: declared on the callee's class, known to the caller, retried once on
another server when the call could not be sent, and nothing else ever retried."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import (
    CircuitOpen,
    ConfigError,
    HandlerError,
    PeerUnavailable,
    RpcError,
    RpcTimeout,
)
from pomelo_twisted.rpc import IdempotentRemotes, RpcProxies, consistent_hash_route, idempotent
from pomelo_twisted.rpc.idempotent import idempotent_methods

from .helpers import Cluster

# default_route: u1 goes to chat-1, u4 to chat-2 (see test_router).
TO_CHAT_2 = "u4"


class MarkedRemote:
    """A remote class whose marks the caller reads."""

    @idempotent
    def record(self, *args: Any) -> None:
        """Marked."""

    @idempotent
    def later(self) -> None:
        """Marked, answers late."""

    @idempotent
    def refuse(self, code: int, msg: str) -> None:
        """Marked, raises HandlerError."""

    @staticmethod
    @idempotent
    def echo(*args: Any) -> None:
        """Marked, a staticmethod."""

    def keep(self, value: Any) -> None:
        """Not marked."""

    @idempotent
    def _private(self) -> None:
        """Never a remote method, marked or not."""


class DeclarationTests(SynchronousTestCase):
    """How the marks are read and declared."""

    def test_marked_methods(self) -> None:
        """idempotent_methods lists the public remote methods carrying the mark."""
        self.assertEqual(idempotent_methods(MarkedRemote), {"record", "later", "refuse", "echo"})

    def test_declare_class(self) -> None:
        """declare_class declares the marked methods under the type and remote name."""
        remotes = IdempotentRemotes()
        remotes.declare_class("chat", "chatRemote", MarkedRemote)
        self.assertTrue(remotes.is_idempotent("chat", "chatRemote", "record"))
        self.assertFalse(remotes.is_idempotent("chat", "chatRemote", "keep"))
        self.assertFalse(remotes.is_idempotent("area", "chatRemote", "record"))

    def test_declare_refuses_bad_names(self) -> None:
        """Empty or private names are refused, naming the culprit."""
        remotes = IdempotentRemotes()
        error = self.assertRaises(ConfigError, remotes.declare, "chat", "_r", "m")
        self.assertIn("'_r'", str(error))
        self.assertRaises(ConfigError, remotes.declare, "chat", "r", "")

    def test_decorator_refuses_non_callables(self) -> None:
        """@idempotent marks methods only."""
        self.assertRaises(TypeError, idempotent, 3)

    def test_declare_game_reads_remote_files(self) -> None:
        """declare_game imports each type's remote files (never instantiating them) and
        declares their marked methods."""
        base = Path(tempfile.mkdtemp(prefix="pomelo-idempotent-"))
        self.addCleanup(shutil.rmtree, base)
        folder = base / "servers" / "room" / "remote"
        folder.mkdir(parents=True)
        (folder / "roomRemote.py").write_text(
            "from pomelo_twisted.rpc import idempotent\n"
            "class RoomRemote:\n"
            "    def __init__(self, app):\n"
            "        raise AssertionError('instantiated')\n"
            "    @idempotent\n"
            "    def members(self, rid):\n"
            "        return []\n"
            "    def join(self, rid, uid):\n"
            "        return None\n"
        )
        remotes = IdempotentRemotes()
        self.assertEqual(remotes.declare_game(base, ["room", "connector"]), 1)
        self.assertTrue(remotes.is_idempotent("room", "roomRemote", "members"))
        self.assertFalse(remotes.is_idempotent("room", "roomRemote", "join"))


class RetryCase(SynchronousTestCase):
    """chat-1 and chat-2 in-process; chatRemote's marked methods declared idempotent."""

    def setUp(self) -> None:
        self.cluster = Cluster()
        self.cluster.router.idempotent.declare_class("chat", "chatRemote", MarkedRemote)

    def received(self, server_id: str) -> list[tuple[str, tuple[Any, ...]]]:
        return self.cluster.remotes[server_id].received

    def settle(self, d: Deferred[Any], seconds: float = 0.0) -> Deferred[Any]:
        self.cluster.clock.advance(0)
        if seconds:
            self.cluster.clock.advance(seconds)
        return d


class RetryTests(RetryCase):
    """What is retried, where, and what never is."""

    def test_idempotent_call_to_a_down_server_goes_to_another(self) -> None:
        """chat-2 is down: the idempotent call routed to it runs on chat-1, once."""
        self.cluster.transport.unregister("chat-2")
        d = self.settle(self.cluster.rpc.chat.chatRemote.record(TO_CHAT_2, "hi"))
        self.assertEqual(self.successResultOf(d), "chat-1")
        self.assertEqual(self.received("chat-1"), [("record", ("hi",))])
        self.assertEqual(self.cluster.router.idempotent.retries, 1)

    def test_other_calls_are_never_retried(self) -> None:
        """A method not declared idempotent fails with PeerUnavailable; chat-1 never sees it."""
        self.cluster.transport.unregister("chat-2")
        d = self.settle(self.cluster.rpc.chat.chatRemote.keep(TO_CHAT_2, 1))
        self.failureResultOf(d, PeerUnavailable)
        self.assertEqual(self.cluster.remotes["chat-1"].kept, [])
        self.assertEqual(self.cluster.router.idempotent.retries, 0)

    def test_timeouts_are_not_retried(self) -> None:
        """An idempotent call that timed out (it may have run) is not retried."""
        d = self.settle(self.cluster.rpc.chat.chatRemote.later(TO_CHAT_2, timeout=1.0), 1.0)
        self.failureResultOf(d, RpcTimeout)
        self.assertEqual(len(self.cluster.remotes["chat-2"].pending), 1)
        self.assertEqual(self.cluster.remotes["chat-1"].pending, [])
        self.assertEqual(self.cluster.router.idempotent.retries, 0)

    def test_remote_errors_are_not_retried(self) -> None:
        """An idempotent call the remote answered with an error is not retried."""
        d = self.settle(self.cluster.rpc.chat.chatRemote.refuse(TO_CHAT_2, 409, "taken"))
        self.assertEqual(self.failureResultOf(d, HandlerError).value.code, 409)
        self.assertEqual(self.cluster.router.idempotent.retries, 0)

    def test_retried_once_only(self) -> None:
        """Both servers down: one retry, then the second server's PeerUnavailable."""
        self.cluster.transport.unregister("chat-2")
        self.cluster.transport.unregister("chat-1")
        d = self.settle(self.cluster.rpc.chat.chatRemote.record(TO_CHAT_2))
        failure = self.failureResultOf(d, PeerUnavailable)
        self.assertIn("chat-1", str(failure.value))
        self.assertEqual(self.cluster.router.idempotent.retries, 1)

    def test_alone_it_is_not_retried(self) -> None:
        """The only server of the type is down: nowhere else to go, no retry."""
        self.cluster.servers["chat"] = [s for s in self.cluster.servers["chat"] if s.id == "chat-2"]
        self.cluster.transport.unregister("chat-2")
        d = self.settle(self.cluster.rpc.chat.chatRemote.record(TO_CHAT_2))
        self.failureResultOf(d, PeerUnavailable)
        self.assertEqual(self.cluster.router.idempotent.retries, 0)

    def test_a_given_server_is_not_retried(self) -> None:
        """.to(server_id) names its server: never retried elsewhere."""
        self.cluster.transport.unregister("chat-2")
        d = self.settle(self.cluster.rpc.chat.chatRemote.record.to("chat-2")("x"))
        self.failureResultOf(d, PeerUnavailable)
        self.assertEqual(self.received("chat-1"), [])

    def test_next_on_the_ring(self) -> None:
        """With the consistent-hash route the retry goes to the next server on the ring."""
        route = consistent_hash_route()
        self.cluster.router.set("chat", route)
        servers = self.cluster.servers["chat"]
        uid = next(u for u in (f"u{n}" for n in range(100)) if route(u, servers) == "chat-2")
        self.cluster.transport.unregister("chat-2")
        d = self.settle(self.cluster.rpc.chat.chatRemote.record(uid))
        self.assertEqual(self.successResultOf(d), route.fallback(uid, servers, "chat-2"))


class _BreakerOpenTransport:
    """A transport whose calls to ``open_id`` fail with CircuitOpen, others go on."""

    def __init__(self, inner: Any, open_id: str) -> None:
        self.inner = inner
        self.open_id = open_id

    def call(
        self, server_id: str, service: str, method: str, args: Any, timeout: float
    ) -> Deferred[Any]:
        if server_id == self.open_id:
            return fail(CircuitOpen(f"{server_id}: the circuit breaker is open"))
        result: Deferred[Any] = self.inner.call(server_id, service, method, args, timeout)
        return result


class BreakerRetryTests(RetryCase):
    """An open breaker is a call not sent: an idempotent call goes elsewhere."""

    def test_open_breaker_retries_idempotent_only(self) -> None:
        """CircuitOpen on chat-2: the idempotent call runs on chat-1, the other fails."""
        transport = _BreakerOpenTransport(self.cluster.transport, "chat-2")
        rpc = RpcProxies(transport, self.cluster.router, self.cluster.servers_of)  # type: ignore[arg-type]
        marked = self.settle(rpc.chat.chatRemote.record(TO_CHAT_2, 1))
        self.assertEqual(self.successResultOf(marked), "chat-1")
        other = self.settle(rpc.chat.chatRemote.keep(TO_CHAT_2, 1))
        self.assertIsInstance(self.failureResultOf(other, RpcError).value, CircuitOpen)
