"""Hung peer detection: pings, a peer that stops reading is down within 3 s, and back up."""

from __future__ import annotations

import inspect
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.client.core import PomeloClient
from pomelo_twisted.errors import RpcError
from pomelo_twisted.rpc import RpcProxies
from pomelo_twisted.rpc.calls import DEFAULT_RPC_TIMEOUT
from pomelo_twisted.rpc.pbping import Pinger

from .test_pb import CHAT, PbCase


class PingerTests(SynchronousTestCase):
    """The Pinger alone on a Clock."""

    def test_silence_then_answer(self) -> None:
        """Pings leave every interval; silence for the timeout after the last pong is
        told once; the next pong is told once."""
        clock = Clock()
        sent: list[int] = []
        states: list[bool] = []
        pinger = Pinger(clock, sent.append, states.append, interval=1.0, timeout=3.0)
        pinger.start()
        for _ in range(5):
            clock.advance(1)
            pinger.pong(sent[-1])
        self.assertEqual((sent, states), ([1, 2, 3, 4, 5], []))
        clock.advance(2.9)
        self.assertEqual(states, [])
        clock.advance(0.1)
        self.assertEqual(states, [False])
        clock.advance(10)
        self.assertEqual(states, [False])
        pinger.pong(sent[-1])
        self.assertEqual(states, [False, True])
        pinger.pong("not an int")
        pinger.stop()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertRaises(ValueError, Pinger, clock, sent.append, states.append, interval=0)

    def test_own_stall_is_not_the_peers_silence(self) -> None:
        """A deadline that fires late after this process stalled gives the peer another
        timeout (its pong may wait unread); silence after that is still told."""
        clock = Clock()
        sent: list[int] = []
        states: list[bool] = []
        pinger = Pinger(clock, sent.append, states.append, interval=1.0, timeout=3.0)
        pinger.start()
        clock.advance(1)
        pinger.pong(sent[-1])
        clock.advance(20)  # SIGSTOP for 20 s: every overdue call runs at once
        self.assertEqual(states, [])
        pinger.pong(sent[-1])  # the peer's answer, read after the resume
        self.assertEqual(states, [])
        clock.advance(3)
        self.assertEqual(states, [False])
        pinger.stop()


class HungPeerTests(PbCase):
    """connector-1 pings chat-1 over the MemoryNetwork; chat-1 stops reading."""

    def setUp(self) -> None:
        super().setUp()
        self.join()
        [link] = [link for link in self.network.links if link.address == CHAT.rpc_client_endpoint]
        self.server = link.server
        self.held: list[bytes] = []

    def stop_reading(self) -> None:
        """chat-1 stops reading its connection (as a SIGSTOPped process)."""
        self.server.dataReceived = self.held.append

    def resume(self) -> None:
        """chat-1 reads again: everything held arrives."""
        del self.server.dataReceived
        held, self.held = self.held, []
        for data in held:
            self.server.dataReceived(data)
        self.flush()

    def advance(self, seconds: float) -> None:
        """Time passes in steps of 0.1 s, the network moving bytes at each."""
        for _ in range(round(seconds * 10)):
            self.clock.advance(0.1)
            self.flush()

    def test_pings_keep_a_live_peer_up(self) -> None:
        """A peer that answers stays up however long it is idle."""
        self.advance(30)
        self.assertEqual(self.connector.peer_state("chat-1"), "up")

    def test_silent_peer_is_down_within_3s_and_calls_fail_at_once(self) -> None:
        """A peer that stops reading is down within 3 s: calls in flight fail then, new
        calls at once; it is up again at its first pong, and calls succeed."""
        self.stop_reading()
        in_flight = self.connector.call("chat-1", "chatRemote", "echo", ["a"], 10.0)
        with capturedLogs() as events:
            self.advance(2.9)
            self.assertEqual(self.connector.peer_state("chat-1"), "up")
            self.advance(0.1)
        self.assertEqual(self.connector.peer_state("chat-1"), "down")
        failure = self.failureResultOf(in_flight, RpcError)
        self.assertIn("not answering pings for 3s", str(failure.value))
        fast = self.connector.call("chat-1", "chatRemote", "echo", ["b"], 10.0)
        self.assertIn("the server is down", str(self.failureResultOf(fast, RpcError).value))
        warnings = [e for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.resume()
        self.assertEqual(self.connector.peer_state("chat-1"), "up")
        d = self.call("echo", "c")
        self.assertEqual(self.successResultOf(d), ["c"])
        self.assertEqual(self.connector.counters("chat-1").late, 1)  # "a", answered late

    def test_waiters_see_a_hung_peer_as_not_up(self) -> None:
        """when_peers_up names a peer that does not answer."""
        self.stop_reading()
        self.advance(3)
        waiting: list[Any] = []
        self.connector.when_peers_up(1.0).addCallback(waiting.append)
        self.advance(1)
        self.assertEqual(waiting, [["chat-1"]])


class DefaultsTests(SynchronousTestCase):
    """Where the RPC deadline sits."""

    def test_rpc_timeout_below_the_client_request_timeout(self) -> None:
        """The default RPC deadline (5 s, also the proxies' default) is below the bundled
        client's request timeout (10 s): a forwarded request is answered before its
        client gives up."""
        client = inspect.signature(PomeloClient).parameters["request_timeout"].default
        proxies = inspect.signature(RpcProxies).parameters["default_timeout"].default
        self.assertEqual((DEFAULT_RPC_TIMEOUT, proxies, client), (5.0, 5.0, 10.0))
