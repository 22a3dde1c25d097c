"""LocalRpcTransport: in-process calls one clock turn apart, plain data only."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.deadlines import DeadlineScheduler
from pomelo_twisted.errors import ConfigError, HandlerError, RpcError, RpcTimeout
from pomelo_twisted.interfaces import IRpcTransport
from pomelo_twisted.rpc import LocalRpcTransport, RemoteDispatcher, copy_plain
from pomelo_twisted.rpc.payload import chunks, pack_array, pack_plain, unpack_plain

from .helpers import ChatRemote


class TransportCase(SynchronousTestCase):
    """A transport serving chat-1 (a ChatRemote as 'chatRemote') on a Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = LocalRpcTransport(self.clock)
        self.remote = ChatRemote("chat-1")
        self.dispatcher = RemoteDispatcher()
        self.dispatcher.add("chatRemote", self.remote)
        self.transport.register("chat-1", self.dispatcher)

    def call(self, method: str, *args: object, timeout: float = 10.0) -> Deferred[Any]:
        return self.transport.call("chat-1", "chatRemote", method, args, timeout)


class InterfaceTests(TransportCase):
    """Membership and the interface."""

    def test_provides_irpctransport(self) -> None:
        """LocalRpcTransport provides IRpcTransport."""
        self.assertTrue(verifyObject(IRpcTransport, LocalRpcTransport(Clock())))

    def test_register_twice(self) -> None:
        """A server id is registered once; a dispatcher must be callable."""
        self.assertRaises(ConfigError, self.transport.register, "chat-1", self.dispatcher)
        self.assertRaises(ConfigError, self.transport.register, "chat-2", object())
        self.assertEqual(self.transport.serving(), ["chat-1"])

    def test_unregister_unknown_is_harmless(self) -> None:
        """Unregistering an id that is not registered does nothing."""
        self.transport.unregister("nope")
        self.assertEqual(self.transport.serving(), ["chat-1"])

    def test_no_peers_to_wait_for(self) -> None:
        """In-process, there are no peers: peers() is empty, when_peers_up fires at once."""
        self.assertEqual(self.transport.peers(), {})
        self.assertEqual(self.successResultOf(self.transport.when_peers_up(5.0)), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DeliveryTests(TransportCase):
    """When and how results arrive."""

    def test_result_only_after_the_next_clock_turn(self) -> None:
        """The remote runs on clock.advance(0), never inside call()."""
        d = self.call("record", "a")
        self.assertNoResult(d)
        self.assertEqual(self.remote.received, [])
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "chat-1")
        self.assertEqual(self.remote.received, [("record", ("a",))])

    def test_no_timer_left_after_a_result(self) -> None:
        """A delivered result cancels the deadline."""
        self.call("record")
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_arguments_are_copied(self) -> None:
        """Mutating an argument after the call does not change what the remote receives."""
        arg = {"items": [1]}
        d = self.call("keep", arg)
        arg["items"].append(2)
        self.clock.advance(0)
        self.assertEqual(self.remote.kept, [{"items": [1]}])
        self.assertIsNot(self.remote.kept[0], arg)
        self.assertEqual(self.successResultOf(d), {"items": [1]})

    def test_results_are_copied(self) -> None:
        """The caller's result is not the object the remote returned and keeps."""
        d = self.call("keep", {"n": 1})
        self.clock.advance(0)
        result = self.successResultOf(d)
        self.remote.kept[0]["n"] = 2
        self.assertEqual(result, {"n": 1})

    def test_tuples_arrive_as_lists(self) -> None:
        """msgpack has no tuple: tuples arrive as lists, bytes stay bytes, int keys stay."""
        d = self.call("keep", {"pair": (1, 2), "raw": b"\x00", 7: None})
        self.clock.advance(0)
        self.assertEqual(self.remote.kept, [{"pair": [1, 2], "raw": b"\x00", 7: None}])
        self.assertEqual(self.successResultOf(d), {"pair": [1, 2], "raw": b"\x00", 7: None})

    def test_deferred_remote(self) -> None:
        """A remote returning a Deferred answers when it fires."""
        d = self.call("later")
        self.clock.advance(0)
        self.assertNoResult(d)
        self.remote.pending[0].callback(["ok"])
        self.assertEqual(self.successResultOf(d), ["ok"])

    def test_async_remote(self) -> None:
        """An async def remote answers with its return value."""
        d = self.call("doubled")
        self.clock.advance(0)
        self.remote.pending[0].callback(4)
        self.assertEqual(self.successResultOf(d), 8)

    def test_copy_plain(self) -> None:
        """copy_plain is a deep copy through msgpack and refuses objects with ValueError."""
        value = {"a": [1, {"b": (2,)}]}
        self.assertEqual(copy_plain(value), {"a": [1, {"b": [2]}]})
        self.assertRaises(ValueError, copy_plain, {1, 2})
        self.assertRaises(ValueError, copy_plain, 2**64)

    def test_pack_plain_is_clean_after_a_refusal(self) -> None:
        """A value refused half-way leaves nothing behind for the next one (reused packer)."""
        self.assertRaises(ValueError, pack_plain, [1, "two", {"x": object()}])
        self.assertEqual(unpack_plain(pack_plain([3])), [3])

    def test_chunks(self) -> None:
        """chunks keeps the order, stays under the limit, and gives a big item its own run."""
        items = [b"a" * 4, b"b" * 4, b"c" * 9, b"d", b"e" * 3]
        self.assertEqual(chunks(items, 8), [[b"aaaa", b"bbbb"], [b"c" * 9], [b"d", b"eee"]])
        self.assertEqual(chunks([], 8), [])

    def test_pack_array(self) -> None:
        """pack_array joins packed items under one array header, for any count."""
        for n in (0, 1, 15, 16, 65535, 65536):
            items = [pack_plain([i, "x"]) for i in range(n)]
            self.assertEqual(unpack_plain(pack_array(items)), [[i, "x"] for i in range(n)])


class FailureTests(TransportCase):
    """Every way a call fails, and what the caller sees."""

    def test_unknown_server_fails_fast(self) -> None:
        """A server never registered: an already failed Deferred naming it."""
        d = self.transport.call("nope", "chatRemote", "record", (), 10)
        error = self.failureResultOf(d, RpcError).value
        self.assertIn("server 'nope' is not available", str(error))
        self.assertEqual(self.transport.unknown_calls, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_unregistered_server_fails_fast(self) -> None:
        """A server unregistered: an already failed Deferred, counted as a failure."""
        self.transport.unregister("chat-1")
        error = self.failureResultOf(self.call("record"), RpcError).value
        self.assertIn("server 'chat-1' is not available", str(error))
        self.assertEqual(self.transport.counters("chat-1").snapshot()["failures"], 1)

    def test_unregistered_before_delivery(self) -> None:
        """A call not yet delivered when its server goes away fails on the next turn."""
        d = self.call("record")
        self.transport.unregister("chat-1")
        self.clock.advance(0)
        self.failureResultOf(d, RpcError)
        self.assertEqual(self.remote.received, [])

    def test_arguments_not_plain_data(self) -> None:
        """An object argument: an already failed Deferred naming server, remote and method."""
        for bad in [object(), {1, 2}, 2**70, {"nested": [ChatRemote()]}]:
            d = self.call("keep", bad)
            message = str(self.failureResultOf(d, RpcError).value)
            self.assertIn("arguments are not plain data", message)
            self.assertIn("chatRemote.keep", message)
            self.assertIn("'chat-1'", message)
        self.assertEqual(self.remote.kept, [])

    def test_result_not_plain_data(self) -> None:
        """A result msgpack cannot carry fails the call with RpcError."""
        d = self.call("unsendable")
        self.clock.advance(0)
        self.assertIn("result is not plain data", str(self.failureResultOf(d, RpcError).value))

    def test_bad_timeout(self) -> None:
        """A deadline that is not a positive number is refused at once."""
        for timeout in [0, -1, float("nan")]:
            self.failureResultOf(self.call("record", timeout=timeout), RpcError)

    def test_undeclared_service(self) -> None:
        """An undeclared service is refused by the callee: RpcError naming it."""
        d = self.transport.call("chat-1", "nope", "record", (), 10)
        self.clock.advance(0)
        message = str(self.failureResultOf(d, RpcError).value)
        self.assertIn("'nope'", message)
        self.assertIn("'chat-1'", message)

    def test_undeclared_method(self) -> None:
        """An undeclared method is refused: RpcError naming service.method."""
        d = self.call("nope")
        self.clock.advance(0)
        self.assertIn("chatRemote.nope", str(self.failureResultOf(d, RpcError).value))

    def test_private_method_is_not_callable(self) -> None:
        """_secret exists on the remote object but is not declared: refused."""
        d = self.call("_secret")
        self.clock.advance(0)
        self.assertIn("chatRemote._secret", str(self.failureResultOf(d, RpcError).value))

    def test_remote_exception(self) -> None:
        """A remote exception becomes RpcError with the remote's message (and is logged)."""
        d = self.call("boom", "the disk is full")
        self.clock.advance(0)
        error = self.failureResultOf(d, RpcError).value
        self.assertNotIsInstance(error, RpcTimeout)
        self.assertIn("ValueError: the disk is full", str(error))
        self.assertIn("chatRemote.boom", str(error))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_remote_handler_error_keeps_code_and_msg(self) -> None:
        """A remote HandlerError is raised again as HandlerError with the same code and msg."""
        d = self.call("refuse", 404, "no such room")
        self.clock.advance(0)
        error = self.failureResultOf(d, HandlerError).value
        self.assertEqual((error.code, error.msg), (404, "no such room"))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_deadline(self) -> None:
        """No result within timeout: RpcTimeout at exactly timeout seconds, naming all."""
        d = self.call("later", timeout=5)
        self.clock.advance(0)
        self.clock.advance(4)
        self.assertNoResult(d)
        self.clock.advance(1)
        message = str(self.failureResultOf(d, RpcTimeout).value)
        for part in ["'chat-1'", "chatRemote.later", "5 seconds"]:
            self.assertIn(part, message)

    def test_late_result_is_dropped(self) -> None:
        """A result after the deadline changes nothing and is counted as late."""
        d = self.call("later", timeout=5)
        self.clock.advance(5)
        self.failureResultOf(d, RpcTimeout)
        self.remote.pending[0].callback("too late")
        self.assertEqual(self.transport.counters("chat-1").late, 1)

    def test_late_failure_is_dropped(self) -> None:
        """A failure after the deadline is dropped (a bug is still logged)."""
        d = self.call("later", timeout=1)
        self.clock.advance(1)
        self.failureResultOf(d, RpcTimeout)
        self.remote.pending[0].errback(ValueError("after the deadline"))
        self.assertEqual(self.transport.counters("chat-1").late, 1)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_cancel(self) -> None:
        """Cancelling before delivery: CancelledError, no timers left, the remote never runs."""
        d = self.call("record")
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(0)
        self.assertEqual(self.remote.received, [])


class TurnTests(TransportCase):
    """The calls of one turn share one delivery; deadlines share one timer."""

    def test_one_hop_and_one_timer_for_many_calls(self) -> None:
        """Ten calls in one turn leave two delayed calls on the clock, not twenty."""
        calls = [self.call("echo", i) for i in range(10)]
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)
        self.clock.advance(0)
        self.assertEqual([self.successResultOf(d) for d in calls], [[i] for i in range(10)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_call_made_during_delivery_is_not_run_inside_it(self) -> None:
        """A remote calling out during delivery does not run the callee inside its call."""
        inner: list[Deferred[Any]] = []
        seen: list[list[Any]] = []

        def relay() -> str:
            inner.append(self.call("record", "inner"))
            seen.append(list(self.remote.received))
            return "outer"

        self.dispatcher.add_function("relay", "go", relay)
        d = self.transport.call("chat-1", "relay", "go", (), 10)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), "outer")
        self.assertEqual(seen, [[]])
        self.assertEqual(self.successResultOf(inner[0]), "chat-1")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancelling_one_call_of_a_turn(self) -> None:
        """A call cancelled before delivery never runs; the others of its turn do."""
        first, second, third = (self.call("record", n) for n in (1, 2, 3))
        second.cancel()
        self.failureResultOf(second, CancelledError)
        self.clock.advance(0)
        self.assertEqual(self.remote.received, [("record", (1,)), ("record", (3,))])
        self.successResultOf(first)
        self.successResultOf(third)

    def test_cancelled_during_the_delivery_of_its_turn(self) -> None:
        """A call cancelled by an earlier call of the same turn is skipped, not delivered."""
        victim: list[Deferred[Any]] = []
        self.dispatcher.add_function("killer", "go", lambda: victim[0].cancel())
        self.transport.call("chat-1", "killer", "go", (), 10)
        victim.append(self.call("record", "victim"))
        self.clock.advance(0)
        self.failureResultOf(victim[0], CancelledError)
        self.assertEqual(self.remote.received, [])

    def test_a_timeout_cancelling_another_call_due_with_it(self) -> None:
        """A call cancelled by the errback of a call timing out with it is not timed out."""
        first, second = self.call("later", timeout=1.0), self.call("later", timeout=1.0)
        first.addErrback(lambda _: second.cancel())
        self.clock.advance(0)
        self.clock.advance(1)
        self.failureResultOf(second, CancelledError)
        self.assertEqual(self.transport.counters("chat-1").timeouts, 1)

    def test_deadlines_of_different_timeouts(self) -> None:
        """Calls with different timeouts in one turn each expire at their own deadline."""
        slow, fast, mid = (self.call("later", timeout=t) for t in (5.0, 1.0, 3.0))
        self.clock.advance(0)
        self.clock.advance(1)
        self.failureResultOf(fast, RpcTimeout)
        self.assertNoResult(mid)
        self.clock.advance(2)
        self.failureResultOf(mid, RpcTimeout)
        self.assertNoResult(slow)
        self.remote.pending[0].callback("in time")
        self.assertEqual(self.successResultOf(slow), "in time")
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SharedDeadlinesTests(SynchronousTestCase):
    """The calls' deadlines are kept by the DeadlineScheduler the transport is given."""

    def test_deadlines_on_a_shared_scheduler(self) -> None:
        """Calls of a transport and other waiters share one scheduler, so one timer."""
        clock = Clock()
        deadlines = DeadlineScheduler(clock)
        transport = LocalRpcTransport(clock, deadlines)
        remote = ChatRemote("chat-1")
        dispatcher = RemoteDispatcher()
        dispatcher.add("chatRemote", remote)
        transport.register("chat-1", dispatcher)
        expired: list[int] = []

        class Waiter:
            def deadline_passed(self, kind: int, now: float) -> None:
                expired.append(kind)

        deadlines.add(2.0, Waiter(), 7)
        d = transport.call("chat-1", "chatRemote", "later", (), 1.0)
        clock.advance(0)
        self.assertEqual((len(deadlines), len(clock.getDelayedCalls())), (2, 1))
        clock.advance(1)
        self.failureResultOf(d, RpcTimeout)
        clock.advance(1)
        self.assertEqual((expired, len(deadlines)), ([7], 0))
        self.assertEqual(clock.getDelayedCalls(), [])


class CounterTests(TransportCase):
    """Per-server counters for metrics."""

    def test_counters(self) -> None:
        """calls, failures, timeouts and late are counted per server."""
        calls = [
            self.call("record"),
            self.call("boom", "x"),
            self.call("later", timeout=1),
            self.call("keep", object()),
        ]
        self.clock.advance(0)
        self.clock.advance(1)
        self.remote.pending[0].callback(None)
        self.successResultOf(calls[0])
        self.failureResultOf(calls[1], RpcError)
        self.failureResultOf(calls[2], RpcTimeout)
        self.failureResultOf(calls[3], RpcError)
        self.flushLoggedErrors(ValueError)
        self.assertEqual(
            self.transport.snapshot(),
            {"chat-1": {"calls": 4, "failures": 2, "timeouts": 1, "late": 1, "expired": 0}},
        )

    def test_counters_of_an_unknown_server(self) -> None:
        """An id never registered has zero counters."""
        self.assertEqual(self.transport.counters("nope").snapshot()["calls"], 0)
