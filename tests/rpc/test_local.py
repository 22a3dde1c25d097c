"""LocalRpcTransport: in-process calls one clock turn apart, plain data only."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import ConfigError, HandlerError, RpcError, RpcTimeout
from pomelo_twisted.interfaces import IRpcTransport
from pomelo_twisted.rpc import LocalRpcTransport, RemoteDispatcher, copy_plain

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
            {"chat-1": {"calls": 4, "failures": 2, "timeouts": 1, "late": 1}},
        )

    def test_counters_of_an_unknown_server(self) -> None:
        """An id never registered has zero counters."""
        self.assertEqual(self.transport.counters("nope").snapshot()["calls"], 0)
