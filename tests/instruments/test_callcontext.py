"""The call context crosses every RPC hop, and the hooks see each request and call."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.callcontext import (
    MAX_ITEMS,
    MAX_VALUE,
    CallContext,
    checked_context,
    current_context,
    within_context,
)
from pomelo_twisted.errors import RpcError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.instruments import (
    HandlerHookChain,
    Instruments,
    ObservedHandler,
    RequestHookChain,
    RpcHookChain,
)
from pomelo_twisted.interfaces import (
    CallEnd,
    IConnectionHandler,
    IHandlerHooks,
    IHookedTransport,
    IRequestHooks,
    IRpcHooks,
    RequestEnd,
)
from pomelo_twisted.rpc import LocalRpcTransport, RemoteDispatcher, pack_plain, unpack_plain
from pomelo_twisted.rpc.payload import ERROR, OK, pack_array
from pomelo_twisted.rpc.pb import RpcAvatar

from ..rpc.test_pb import CHAT, PbCase

AGENT: Any = None  # the handlers under test never look at the agent


class Seer:
    """A remote that reports the call context it runs within, and calls onwards."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.gate: Deferred[None] | None = None

    def context(self) -> CallContext | None:
        """The current call context."""
        return current_context()

    def onwards(self, target: str) -> Any:
        """Call ``target``'s ``context``: the context goes on with the call."""
        return self.transport.call(target, "seer", "context", (), 5.0)

    async def later(self) -> CallContext | None:
        """The context after an await."""
        self.gate = Deferred()
        await self.gate
        return current_context()

    def fails(self) -> None:
        """Raise."""
        raise ValueError("no")


def serve(transport: Any, server_id: str, seer: Seer) -> None:
    dispatcher = RemoteDispatcher()
    dispatcher.add("seer", seer)
    transport.register(server_id, dispatcher)


@implementer(IRpcHooks)
class RecordingRpcHooks:
    """Records each call's start and end; adds ``tag`` to the context."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.events: list[tuple[Any, ...]] = []

    def _started(
        self, kind: str, who: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        self.events.append((kind, who, service, method, context))

        def end(failure: Failure | None) -> None:
            self.events.append((kind + "-end", method, None if failure is None else "failed"))

        return {**(context or {}), self.tag: kind}, end

    def call_started(
        self, server_id: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        return self._started("call", server_id, service, method, context)

    def serve_started(
        self, peer: str, service: str, method: str, context: CallContext | None
    ) -> tuple[CallContext | None, CallEnd | None]:
        return self._started("serve", peer, service, method, context)


class ContextCheckTests(SynchronousTestCase):
    """What a peer may send as a call context."""

    def test_valid_contexts_pass(self) -> None:
        """None and a small map of strings are accepted as they are."""
        self.assertIsNone(checked_context(None))
        self.assertEqual(checked_context({"rid": "r-1"}), {"rid": "r-1"})

    def test_bad_contexts_are_refused_naming_why(self) -> None:
        """A non-map, a non-string item, too many items or a long value: ValueError."""
        for value, why in [
            ([1], "map"),
            ({"a": 1}, "strings"),
            ({str(i): "" for i in range(MAX_ITEMS + 1)}, "items"),
            ({"rid": "x" * (MAX_VALUE + 1)}, "too long"),
        ]:
            with self.assertRaises(ValueError) as raised:
                checked_context(value)
            self.assertIn(why, str(raised.exception))

    def test_within_context_restores_the_outer_one(self) -> None:
        """within_context sets the context for the call only."""
        self.assertEqual(within_context({"rid": "a"}, current_context), {"rid": "a"})
        self.assertIsNone(current_context())


class LocalTransportTests(SynchronousTestCase):
    """The in-process transport carries the context and calls the hooks."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = LocalRpcTransport(self.clock)
        self.seer = Seer()
        self.seer.transport = self.transport
        serve(self.transport, "chat-1", self.seer)
        serve(self.transport, "chat-2", self.seer)

    def test_transport_provides_hooked(self) -> None:
        """LocalRpcTransport declares IHookedTransport."""
        verifyObject(IHookedTransport, self.transport)

    def test_context_crosses_two_hops(self) -> None:
        """A call made within a context runs within it, and so does the call it makes."""
        d = within_context(
            {"rid": "r-7"}, self.transport.call, "chat-1", "seer", "onwards", ("chat-2",), 5.0
        )
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), {"rid": "r-7"})

    def test_no_context_without_one(self) -> None:
        """A call made outside a context runs without one."""
        d = self.transport.call("chat-1", "seer", "context", (), 5.0)
        self.clock.advance(0)
        self.assertIsNone(self.successResultOf(d))

    def test_context_survives_an_await_of_the_remote(self) -> None:
        """A coroutine remote keeps its call's context across its awaits."""
        d = within_context({"rid": "r-8"}, self.transport.call, "chat-1", "seer", "later", (), 5.0)
        self.clock.advance(0)
        assert self.seer.gate is not None
        self.seer.gate.callback(None)
        self.assertEqual(self.successResultOf(d), {"rid": "r-8"})

    def test_hooks_see_both_sides_and_their_ends(self) -> None:
        """call_started then serve_started, each context added to; ends with outcome."""
        hooks = RecordingRpcHooks("tag")
        instruments = Instruments(self.transport)
        instruments.add_rpc_hooks(hooks)
        self.assertIs(self.transport.hooks, hooks)
        d = self.transport.call("chat-1", "seer", "context", (), 5.0)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), {"tag": "serve"})
        failed = self.transport.call("chat-1", "seer", "fails", (), 5.0)
        self.clock.advance(0)
        self.failureResultOf(failed, RpcError)
        self.flushLoggedErrors(ValueError)
        self.assertEqual(
            hooks.events,
            [
                ("call", "chat-1", "seer", "context", None),
                ("serve", "local", "seer", "context", {"tag": "call"}),
                ("serve-end", "context", None),
                ("call-end", "context", None),
                ("call", "chat-1", "seer", "fails", None),
                ("serve", "local", "seer", "fails", {"tag": "call"}),
                ("serve-end", "fails", "failed"),
                ("call-end", "fails", "failed"),
            ],
        )

    def test_two_hooks_chain_contexts_in_order(self) -> None:
        """With two hooks, the second gets the first's context; ends run innermost first."""
        first, second = RecordingRpcHooks("a"), RecordingRpcHooks("b")
        instruments = Instruments(self.transport)
        instruments.add_rpc_hooks(first)
        instruments.add_rpc_hooks(second)
        verifyObject(IRpcHooks, instruments.rpc)
        self.assertIsInstance(instruments.rpc, RpcHookChain)
        d = self.transport.call("chat-1", "seer", "context", (), 5.0)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), {"a": "serve", "b": "serve"})
        self.assertEqual(second.events[0][-1], {"a": "call"})

    def test_a_raising_hook_is_skipped(self) -> None:
        """A hook that raises is logged; the call goes on without it."""

        @implementer(IRpcHooks)
        class Broken:
            def call_started(self, *args: Any) -> Any:
                raise RuntimeError("broken hook")

            def serve_started(self, *args: Any) -> Any:
                raise RuntimeError("broken hook")

        self.transport.hooks = Broken()
        d = self.transport.call("chat-1", "seer", "context", (), 5.0)
        self.clock.advance(0)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)


class PbContextTests(PbCase):
    """The context and the hooks over Perspective Broker (in memory)."""

    def setUp(self) -> None:
        super().setUp()
        self.seer = Seer()
        self.seer.transport = self.chat
        serve(self.chat, "chat-2", self.seer)
        self.connector.add_peer(CHAT)
        self.connector.add_peer(ServerInfo("chat-2", "chat", host=CHAT.host, port=CHAT.port))
        self.flush()

    def test_context_crosses_the_network(self) -> None:
        """A call made within a context carries it to the peer."""
        d = within_context(
            {"rid": "r-9"}, self.connector.call, "chat-2", "seer", "context", (), 5.0
        )
        self.flush()
        self.assertEqual(self.successResultOf(d), {"rid": "r-9"})

    def test_hooks_on_both_transports(self) -> None:
        """The caller's call hook and the callee's serve hook (named by peer) both run."""
        caller, callee = RecordingRpcHooks("c"), RecordingRpcHooks("s")
        verifyObject(IHookedTransport, self.connector)
        self.connector.hooks = caller
        self.chat.hooks = callee
        d = self.connector.call("chat-2", "seer", "context", (), 5.0)
        self.flush()
        self.assertEqual(self.successResultOf(d), {"c": "call", "s": "serve"})
        self.assertEqual(caller.events[-1], ("call-end", "context", None))
        self.assertEqual(
            callee.events[0], ("serve", "connector-1", "seer", "context", {"c": "call"})
        )


class CalleeContextTests(PbCase):
    """What an RpcAvatar does with a 7-item call."""

    def setUp(self) -> None:
        super().setUp()
        self.seer = Seer()
        serve(self.chat, "chat-2", self.seer)
        self.sent: list[bytes] = []
        self.avatar = RpcAvatar("connector-1", self.chat.dispatcher, self.clock, None)
        self.avatar._broker = self  # type: ignore[assignment]
        self.disconnected = False

    def send_batch(self, batch: bytes) -> None:
        self.sent.append(batch)

    def answers(self) -> dict[int, list[Any]]:
        self.clock.advance(0)
        return {a[0]: a for batch in self.sent for a in unpack_plain(batch)}

    def test_seven_items_run_within_the_context(self) -> None:
        """[id, target, service, method, args, budget, context]: the remote sees it."""
        self.avatar.run_batch(
            pack_array(
                [
                    pack_plain([1, "chat-2", "seer", "context", [], 2, {"rid": "x"}]),
                    pack_plain([2, "chat-2", "seer", "context", [], None, {"rid": "y"}]),
                ]
            )
        )
        answers = self.answers()
        self.assertEqual(answers[1], [1, OK, {"rid": "x"}])
        self.assertEqual(answers[2], [2, OK, {"rid": "y"}])

    def test_a_bad_context_is_refused_with_the_call(self) -> None:
        """A context that is not a map of strings is answered ERROR; the remote never runs."""
        self.avatar.run_batch(
            pack_array([pack_plain([3, "chat-2", "seer", "fails", [], 2, {"rid": 5}])])
        )
        answer = self.answers()[3]
        self.assertEqual(answer[:2], [3, ERROR])
        self.assertIn("strings", answer[2])
        self.assertEqual(self.flushLoggedErrors(ValueError), [])


@implementer(IConnectionHandler)
class Inner:
    """A connection handler answering from a table; records the context it ran within."""

    def __init__(self) -> None:
        self.seen: list[CallContext | None] = []
        self.later: Deferred[Any] | None = None

    def handshake(self, agent: Any, handshake: Any) -> object:
        return None

    def connected(self, agent: Any) -> None:
        pass

    def disconnected(self, agent: Any, reason: str) -> None:
        pass

    def request(self, agent: Any, route: str, body: bytes) -> object:
        self.seen.append(current_context())
        if route == "boom":
            raise ValueError("boom")
        if route == "later":
            self.later = Deferred()
            return self.later
        if route == "coroutine":
            return self._coroutine()
        return {"code": 200}

    async def _coroutine(self) -> Any:
        self.seen.append(current_context())
        return {"code": 201}

    def notify(self, agent: Any, route: str, body: bytes) -> object:
        self.seen.append(current_context())
        return None


@implementer(IRequestHooks)
class RecordingRequestHooks:
    """Gives each request a context ``{"rid": "<route>"}`` and records its end."""

    def __init__(self) -> None:
        self.ends: list[tuple[str, object]] = []

    def request_started(
        self, agent: Any, route: str, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        return {"rid": route, "notify": str(notify)}, lambda outcome: self.ends.append(
            (route, outcome)
        )


class ObservedHandlerTests(SynchronousTestCase):
    """The request hooks around a frontend's connection handler."""

    def setUp(self) -> None:
        self.inner = Inner()
        self.hooks = RecordingRequestHooks()
        self.handler = ObservedHandler(self.inner, self.hooks)

    def test_provides_the_interfaces(self) -> None:
        """ObservedHandler is an IConnectionHandler; the chain is an IRequestHooks."""
        verifyObject(IConnectionHandler, self.handler)
        verifyObject(IRequestHooks, RequestHookChain([self.hooks]))

    def test_plain_answer_runs_within_the_context_and_ends(self) -> None:
        """The inner handler runs within the hooks' context; the end sees the body."""
        self.assertEqual(self.handler.request(AGENT, "a.b.c", b""), {"code": 200})
        self.assertEqual(self.inner.seen, [{"rid": "a.b.c", "notify": "False"}])
        self.assertEqual(self.hooks.ends, [("a.b.c", {"code": 200})])
        self.assertIsNone(current_context())

    def test_later_answer_ends_when_it_comes(self) -> None:
        """A Deferred answer: the end runs when it fires, and the body goes on."""
        d = self.handler.request(AGENT, "later", b"")
        self.assertEqual(self.hooks.ends, [])
        assert self.inner.later is not None
        self.inner.later.callback({"code": 200})
        self.assertEqual(self.successResultOf(d), {"code": 200})  # type: ignore[arg-type]
        self.assertEqual(self.hooks.ends, [("later", {"code": 200})])

    def test_a_coroutine_starts_within_the_context(self) -> None:
        """A coroutine answer runs within the request's context."""
        d = self.handler.request(AGENT, "coroutine", b"")
        self.assertEqual(self.successResultOf(d), {"code": 201})  # type: ignore[arg-type]
        self.assertEqual(self.inner.seen[1], {"rid": "coroutine", "notify": "False"})

    def test_a_raise_ends_with_the_failure_and_propagates(self) -> None:
        """An exception of the handler reaches the end as a Failure and is re-raised."""
        with self.assertRaises(ValueError):
            self.handler.request(AGENT, "boom", b"")
        route, outcome = self.hooks.ends[0]
        self.assertEqual(route, "boom")
        self.assertIsInstance(outcome, Failure)

    def test_notify_is_observed_too(self) -> None:
        """A notify runs within the hooks' context (notify "True")."""
        self.handler.notify(AGENT, "n.o.t", b"")
        self.assertEqual(self.inner.seen, [{"rid": "n.o.t", "notify": "True"}])
        self.assertEqual(self.hooks.ends, [("n.o.t", None)])

    def test_two_request_hooks_chain(self) -> None:
        """Instruments chains request hooks; the later sees the earlier's context."""
        instruments = Instruments(object())
        first, second = RecordingRequestHooks(), RecordingRequestHooks()
        instruments.add_request_hooks(first)
        self.assertIs(instruments.requests, first)
        instruments.add_request_hooks(second)
        assert instruments.requests is not None
        handler = ObservedHandler(self.inner, instruments.requests)
        handler.request(AGENT, "x.y.z", b"")
        self.assertEqual(len(first.ends), 1)
        self.assertEqual(len(second.ends), 1)


@implementer(IHandlerHooks)
class RecordingHandlerHooks:
    """Adds ``tag`` to the context of each handler and records its end."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.ends: list[tuple[str, object]] = []

    def handler_started(
        self, route: str, session: object, notify: bool, context: CallContext | None
    ) -> tuple[CallContext | None, RequestEnd | None]:
        return {**(context or {}), self.tag: route}, lambda body: self.ends.append((route, body))


class HandlerHookTests(SynchronousTestCase):
    """Instruments chains the hooks around a backend's handlers."""

    def test_one_then_a_chain(self) -> None:
        """One hook is used as it is; two are chained, contexts passed on, both ended."""
        instruments = Instruments(object())
        first, second = RecordingHandlerHooks("a"), RecordingHandlerHooks("b")
        instruments.add_handler_hooks(first)
        self.assertIs(instruments.handlers, first)
        instruments.add_handler_hooks(second)
        chain = instruments.handlers
        assert isinstance(chain, HandlerHookChain)
        verifyObject(IHandlerHooks, chain)
        context, end = chain.handler_started("c.h.m", None, False, {"rid": "1"})
        self.assertEqual(context, {"rid": "1", "a": "c.h.m", "b": "c.h.m"})
        assert end is not None
        end({"code": 200})
        self.assertEqual(first.ends, [("c.h.m", {"code": 200})])
        self.assertEqual(second.ends, [("c.h.m", {"code": 200})])
