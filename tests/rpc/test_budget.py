"""Deadlines across hops: a call carries its budget, the callee serves within it, cuts its
own calls to it, and does not start a call whose budget is spent."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.budget import budget_of, current_deadline, remaining, within_deadline
from pomelo_twisted.errors import RpcTimeout
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.interfaces import IRpcTransport
from pomelo_twisted.rpc import LocalRpcTransport, RemoteDispatcher, pack_plain, unpack_plain
from pomelo_twisted.rpc.payload import TIMEOUT, pack_array
from pomelo_twisted.rpc.pb import PbRpcTransport, RpcAvatar

from .test_pb import CHAT, SECRET, BatchCase, PbCase


class Relay:
    """A remote that reports the budget it was given and calls onwards within it."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.transport: IRpcTransport | None = None
        self.seen: list[float | None] = []
        self.gate: Deferred[None] | None = None

    def left(self) -> float | None:
        """The seconds left of the call being served."""
        self.seen.append(remaining(self.clock))
        return self.seen[-1]

    def relay(self, target: str, method: str) -> Any:
        """Call ``target``'s ``method`` with a 10 s timeout: cut to this call's budget."""
        assert self.transport is not None
        self.seen.append(remaining(self.clock))
        return self.transport.call(target, "relay", method, (), 10.0)

    async def relay_later(self, target: str, method: str) -> Any:
        """Wait for ``gate``, then call onwards: the deadline survives the await."""
        self.gate = Deferred()
        await self.gate
        return await self.relay(target, method)

    def hold(self) -> Deferred[None]:
        """Answer when ``gate`` fires."""
        self.gate = Deferred()
        return self.gate


def serve_relay(transport: Any, server_id: str, relay: Relay) -> None:
    dispatcher = RemoteDispatcher()
    dispatcher.add("relay", relay)
    transport.register(server_id, dispatcher)
    relay.transport = transport


class HelperTests(SynchronousTestCase):
    """The current deadline and the budget of a call."""

    def test_no_deadline(self) -> None:
        """Outside a served call there is no deadline: a timeout stays as it is."""
        clock = Clock()
        self.assertIsNone(current_deadline())
        self.assertIsNone(remaining(clock))
        self.assertEqual(budget_of(7.0, clock), 7.0)

    def test_within_cuts_and_nests(self) -> None:
        """Within a deadline a timeout is cut to what is left; an inner, later deadline
        does not extend an outer one; the deadline ends with the call."""
        clock = Clock()
        clock.advance(100)

        def inner() -> tuple[float | None, float]:
            return remaining(clock), budget_of(10.0, clock)

        self.assertEqual(within_deadline(103.0, inner), (3.0, 3.0))
        self.assertEqual(within_deadline(103.0, within_deadline, 109.0, inner), (3.0, 3.0))
        self.assertEqual(within_deadline(109.0, within_deadline, 101.0, inner), (1.0, 1.0))
        self.assertEqual(within_deadline(120.0, inner), (20.0, 10.0))
        self.assertIsNone(current_deadline())


class LocalTransportTests(SynchronousTestCase):
    """Hops between servers of one process."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = LocalRpcTransport(self.clock)
        self.relays = {sid: Relay(self.clock) for sid in ("a", "b")}
        for sid, relay in self.relays.items():
            serve_relay(self.transport, sid, relay)

    def test_the_callee_serves_within_the_call_timeout(self) -> None:
        """A remote runs with its call's timeout as its deadline."""
        d = self.transport.call("b", "relay", "left", (), 2.5)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), 2.5)

    def test_onward_calls_are_cut_to_the_deadline(self) -> None:
        """a -> b with 2 s: b's onward call with a 10 s timeout times out at 2 s."""
        d = self.transport.call("a", "relay", "relay", ("b", "hold"), 2.0)
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertIsNotNone(self.relays["b"].gate)
        self.clock.advance(2.0)
        self.failureResultOf(d, RpcTimeout)
        self.assertEqual(self.transport.counters("b").timeouts, 1)

    def test_spent_deadline_does_not_start_the_next_hop(self) -> None:
        """After its awaited step outlives the deadline, a coroutine's onward call fails
        at once (counted expired); the next server never runs it."""
        d = self.transport.call("a", "relay", "relay_later", ("b", "left"), 2.0)
        self.clock.advance(0)
        gate = self.relays["a"].gate
        assert gate is not None
        self.clock.advance(3.0)  # the caller gave up; the remote goes on
        self.failureResultOf(d, RpcTimeout)
        gate.callback(None)
        self.clock.advance(0)
        self.assertEqual(self.relays["b"].seen, [])
        self.assertEqual(self.transport.counters("b").expired, 1)

    def test_deadline_survives_an_await(self) -> None:
        """A coroutine remote keeps its deadline across an await: the onward call gets
        what is left of it."""
        d = self.transport.call("a", "relay", "relay_later", ("b", "left"), 5.0)
        self.clock.advance(0)
        self.clock.advance(1.5)
        gate = self.relays["a"].gate
        assert gate is not None
        gate.callback(None)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), 3.5)


class PbBudgetTests(PbCase):
    """Budgets over the PB transport (in memory, on a Clock)."""

    def setUp(self) -> None:
        super().setUp()
        self.relay = Relay(self.clock)
        serve_relay(self.chat, "chat-2", self.relay)
        self.connector.add_peer(CHAT)
        self.connector.add_peer(ServerInfo("chat-2", "chat", host=CHAT.host, port=CHAT.port))
        self.flush()

    def call_relay(self, method: str, *args: Any, timeout: float) -> Deferred[Any]:
        d = self.connector.call("chat-2", "relay", method, args, timeout)
        self.flush()
        return d

    def test_callee_deadline_is_the_budget(self) -> None:
        """The budget crosses as seconds: the remote's deadline is its clock + 3 s."""
        self.assertEqual(self.successResultOf(self.call_relay("left", timeout=3.0)), 3.0)

    def test_caller_deadline_cuts_the_budget(self) -> None:
        """A call made within a 1.5 s deadline carries 1.5 s, not its 10 s timeout."""
        deadline = self.clock.seconds() + 1.5
        d = within_deadline(deadline, self.connector.call, "chat-2", "relay", "left", (), 10.0)
        self.flush()
        self.assertEqual(self.successResultOf(d), 1.5)

    def test_spent_deadline_is_not_sent(self) -> None:
        """A call made after its deadline passed fails at once with RpcTimeout."""
        deadline = self.clock.seconds() - 0.1
        d = within_deadline(deadline, self.connector.call, "chat-2", "relay", "left", (), 10.0)
        self.failureResultOf(d, RpcTimeout)
        self.flush()
        self.assertEqual(self.relay.seen, [])
        counters = self.connector.counters("chat-2")
        self.assertEqual((counters.expired, counters.timeouts), (1, 1))


class CalleeTests(BatchCase):
    """The callee side of a budget: what an RpcAvatar does with each form of call."""

    def setUp(self) -> None:
        super().setUp()
        self.relay = Relay(self.clock)
        serve_relay(self.chat, "chat-2", self.relay)
        self.sent: list[bytes] = []
        self.avatar = RpcAvatar("connector-1", self.chat.dispatcher, self.clock, None)
        self.avatar._broker = self  # type: ignore[assignment]
        self.disconnected = False

    def send_batch(self, batch: bytes) -> None:
        self.sent.append(batch)

    def answers(self) -> dict[int, list[Any]]:
        self.clock.advance(0)
        return {a[0]: a for batch in self.sent for a in unpack_plain(batch)}

    def test_spent_budget_is_answered_timeout_without_running(self) -> None:
        """A call whose budget is 0 or less is answered TIMEOUT; the remote never runs."""
        batch = pack_array(
            [
                pack_plain([1, "chat-2", "relay", "left", [], 0]),
                pack_plain([2, "chat-2", "relay", "left", [], -1.5]),
                pack_plain([3, "chat-2", "relay", "left", [], 2]),
            ]
        )
        self.avatar.run_batch(batch)
        answers = self.answers()
        self.assertEqual([answers[1][1], answers[2][1]], [TIMEOUT, TIMEOUT])
        self.assertEqual(answers[3], [3, 0, 2.0])
        self.assertEqual(self.relay.seen, [2.0])
        self.assertEqual(self.avatar._runner.expired, 2)

    def test_call_without_budget_runs_without_deadline(self) -> None:
        """A call of the older five-item form still runs, with no deadline."""
        self.avatar.run_batch(pack_array([pack_plain([1, "chat-2", "relay", "left", []])]))
        self.assertEqual(self.answers()[1], [1, 0, None])

    def test_budget_must_be_a_number(self) -> None:
        """A budget that is not a number is refused with an error answer."""
        self.avatar.run_batch(pack_array([pack_plain([1, "chat-2", "relay", "left", [], "9"])]))
        answer = self.answers()[1]
        self.assertEqual(answer[1], 2)
        self.assertIn("list[, number]", answer[2])
        self.assertEqual(self.relay.seen, [])

    def test_timeout_answer_is_an_rpc_timeout(self) -> None:
        """The caller turns a TIMEOUT answer into RpcTimeout (counted as a timeout)."""
        d = self.connector.call("chat-1", "chatRemote", "echo", (), 10.0)
        call = next(iter(self.connector._peers["chat-1"].channel.calls.values()))  # type: ignore[union-attr]
        call.answered([call.call_id, TIMEOUT, "spent"])
        self.assertIn("spent", str(self.failureResultOf(d, RpcTimeout).value))
        self.assertEqual(self.connector.counters("chat-1").timeouts, 1)


class RealPbTests(TestCase):
    """A deadline across two real PB hops on loopback."""

    timeout = 30

    @inlineCallbacks
    def test_deadline_travels_two_hops(self) -> Any:
        """connector -> chat-1 (3 s) -> chat-2 (10 s asked): chat-2 serves within what is
        left of the connector's 3 s, never more."""
        relays: dict[str, Relay] = {}
        infos: dict[str, ServerInfo] = {}
        transports: dict[str, PbRpcTransport] = {}
        for sid in ("chat-1", "chat-2"):
            transport = PbRpcTransport(global_reactor, sid, SECRET)
            relays[sid] = Relay(global_reactor)
            serve_relay(transport, sid, relays[sid])
            port = yield transport.listen("tcp:0:interface=127.0.0.1")
            self.addCleanup(transport.stop)
            infos[sid] = ServerInfo(sid, "chat", host="127.0.0.1", port=port.getHost().port)
            transports[sid] = transport
        transports["chat-1"].add_peer(infos["chat-2"])
        connector = PbRpcTransport(global_reactor, "connector-1", SECRET)
        self.addCleanup(connector.stop)
        connector.add_peer(infos["chat-1"])
        self.assertEqual((yield connector.when_peers_up(10.0)), [])
        self.assertEqual((yield transports["chat-1"].when_peers_up(10.0)), [])
        left = yield connector.call("chat-1", "relay", "relay", ("chat-2", "left"), 3.0)
        first = relays["chat-1"].seen[0]
        assert first is not None and left is not None
        self.assertTrue(0 < left <= first <= 3.0, (left, first))
