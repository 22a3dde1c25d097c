"""PbRpcTransport over an in-memory network (iosim) on a Clock: auth, batches, deadlines,
failures."""

from __future__ import annotations

import random
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
    ITCPTransport,
)
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import HandlerError, RpcError, RpcTimeout
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.interfaces import INetworkRpcTransport, IRpcTransport
from pomelo_twisted.rpc import RemoteDispatcher, pack_plain, unpack_plain
from pomelo_twisted.rpc.payload import pack_array
from pomelo_twisted.rpc.pb import MAX_BATCH, PbRpcTransport, RpcAvatar
from pomelo_twisted.rpc.pbauth import AvatarRealm, ClusterSecretChecker, login
from pomelo_twisted.rpc.pbconnection import (
    NoDelayBroker,
    ObservedEndpoint,
    PersistentLogin,
    _LoginFactory,
    no_delay,
)
from pomelo_twisted.rpc.pbping import Pinger
from pomelo_twisted.testing.network import MemoryEndpoint, MemoryNetwork

from .helpers import ChatRemote

SECRET = b"the-cluster-secret"
CHAT = ServerInfo(id="chat-1", type="chat", host="127.0.0.1", port=4250)
CONNECTOR = ServerInfo(id="connector-1", type="connector", host="127.0.0.1", port=4150)


class PbCase(SynchronousTestCase):
    """connector-1 and chat-1, each a PbRpcTransport, on one MemoryNetwork and Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.network = MemoryNetwork()
        self.remote = ChatRemote("chat-1")
        dispatcher = RemoteDispatcher()
        dispatcher.add("chatRemote", self.remote)
        self.chat = self.transport("chat-1")
        self.chat.register("chat-1", dispatcher)
        self.serve(self.chat, CHAT)
        self.connector = self.transport("connector-1")

    def transport(self, name: str, secret: bytes = SECRET) -> PbRpcTransport:
        return PbRpcTransport(
            self.clock,
            name,
            secret,
            rng=random.Random(7),
            connect=lambda info: self.network.endpoint(info.rpc_client_endpoint),
        )

    def serve(self, transport: PbRpcTransport, info: ServerInfo) -> None:
        self.network.listen(info.rpc_client_endpoint, transport.server_factory())

    def join(self) -> None:
        """connector-1 connects to chat-1 and logs in."""
        self.connector.add_peer(CHAT)
        self.flush()

    def flush(self) -> None:
        """Run the ends of reactor turns (batches leave then) and move every byte, until
        neither has anything left to do now."""
        for _ in range(100):
            self.network.flush()
            due = [c for c in self.clock.getDelayedCalls() if c.getTime() <= self.clock.seconds()]
            if not due:
                return
            self.clock.advance(0)
        raise AssertionError("the network does not settle")

    def call(self, method: str, *args: Any, timeout: float = 10.0) -> Deferred[Any]:
        d = self.connector.call("chat-1", "chatRemote", method, args, timeout)
        self.flush()
        return d


class InterfaceTests(PbCase):
    """Declared interfaces."""

    def test_provides_the_network_transport_interface(self) -> None:
        """PbRpcTransport provides INetworkRpcTransport (and so IRpcTransport)."""
        self.assertTrue(verifyObject(INetworkRpcTransport, self.connector))
        self.assertTrue(verifyObject(IRpcTransport, self.connector))

    def test_cred_pieces_provide_their_interfaces(self) -> None:
        """The secret checker, the realm and the observed endpoint provide cred/endpoint APIs."""
        self.assertTrue(verifyObject(ICredentialsChecker, ClusterSecretChecker(SECRET)))
        self.assertTrue(verifyObject(IRealm, AvatarRealm(lambda name, mind: pb.Avatar())))
        endpoint = ObservedEndpoint(self.network.endpoint("x"), lambda failure: None)
        self.assertTrue(verifyObject(IStreamClientEndpoint, endpoint))
        self.assertTrue(verifyObject(IStreamClientEndpoint, MemoryEndpoint(self.network, "x")))
        server_endpoint = self.network.server_endpoint("x")
        self.assertTrue(verifyObject(IStreamServerEndpoint, server_endpoint))
        port = self.successResultOf(server_endpoint.listen(self.chat.server_factory()))
        self.assertTrue(verifyObject(IListeningPort, port))
        self.assertIn("x", self.network.listeners)
        self.successResultOf(port.stopListening())
        self.assertNotIn("x", self.network.listeners)

    def test_empty_secret_refused(self) -> None:
        """A checker cannot be built with an empty secret."""
        self.assertRaises(ValueError, ClusterSecretChecker, b"")


class CallTests(PbCase):
    """Calls between two logged-in servers."""

    def setUp(self) -> None:
        super().setUp()
        self.join()

    def test_peer_is_up_after_login(self) -> None:
        """Once connected and logged in the peer's state is up."""
        self.assertEqual(self.connector.peers(), {"chat-1": "up"})

    def test_round_trip(self) -> None:
        """A declared remote's result comes back as plain data (tuples as lists)."""
        self.assertEqual(self.successResultOf(self.call("echo", 1, "two", (3,))), [1, "two", [3]])
        self.assertEqual(self.remote.received, [])
        self.assertEqual(self.successResultOf(self.call("record", "x")), "chat-1")
        self.assertEqual(self.remote.received, [("record", ("x",))])

    def test_handler_error_keeps_its_code(self) -> None:
        """A HandlerError raised by the remote is raised on the caller with its code."""
        failure = self.failureResultOf(self.call("refuse", 403, "no"), HandlerError)
        self.assertEqual((failure.value.code, failure.value.msg), (403, "no"))

    def test_remote_exception_is_an_rpc_error(self) -> None:
        """Any other remote exception is an RpcError naming it (and is logged there)."""
        failure = self.failureResultOf(self.call("boom", "bad"), RpcError)
        self.assertIn("ValueError: bad", str(failure.value))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_undeclared_method_refused(self) -> None:
        """A method the remote does not declare is refused; nothing runs."""
        failure = self.failureResultOf(self.call("__init__"), RpcError)
        self.assertIn("unknown remote method chatRemote.__init__", str(failure.value))
        d = self.connector.call("chat-1", "os", "system", ("true",), 10.0)
        self.flush()
        failure = self.failureResultOf(d, RpcError)
        self.assertIn("unknown remote service 'os'", str(failure.value))

    def test_async_results(self) -> None:
        """A Deferred or a coroutine result arrives when it fires."""
        d = self.call("doubled")
        self.assertNoResult(d)
        self.remote.pending[0].callback(21)
        self.flush()
        self.assertEqual(self.successResultOf(d), 42)

    def test_non_plain_arguments_refused_by_the_caller(self) -> None:
        """Arguments msgpack cannot carry fail at once, before anything is sent."""
        failure = self.failureResultOf(
            self.connector.call("chat-1", "chatRemote", "echo", (object(),), 10.0), RpcError
        )
        self.assertIn("not plain data", str(failure.value))

    def test_unknown_server_fails_at_once(self) -> None:
        """A call to a server id that is neither served nor a peer fails at once."""
        failure = self.failureResultOf(
            self.connector.call("chat-9", "chatRemote", "echo", (), 10.0), RpcError
        )
        self.assertIn("unknown server", str(failure.value))
        self.assertEqual(self.connector.unknown_calls, 1)

    def test_deadline(self) -> None:
        """No answer within the timeout: RpcTimeout at the deadline; the late answer is dropped."""
        d = self.call("later", timeout=2.0)
        self.clock.advance(1.999)
        self.assertNoResult(d)
        self.clock.advance(0.001)
        self.failureResultOf(d, RpcTimeout)
        self.remote.pending[0].callback("late")
        self.flush()
        counters = self.connector.counters("chat-1")
        self.assertEqual((counters.timeouts, counters.late), (1, 1))

    def test_calls_to_self_stay_in_process(self) -> None:
        """A transport calls the servers it serves itself without the network."""
        d = self.chat.call("chat-1", "chatRemote", "echo", ("x",), 10.0)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(d), ["x"])


class FailureTests(PbCase):
    """Peers that are down, dropped connections and reconnects."""

    def test_down_peer_fails_fast(self) -> None:
        """A peer that refuses connections is down; calls fail at once, not at the deadline."""
        self.network.unlisten(CHAT.rpc_client_endpoint)
        self.join()
        self.assertEqual(self.connector.peer_state("chat-1"), "down")
        failure = self.failureResultOf(self.call("echo"), RpcError)
        self.assertIn("the server is down", str(failure.value))

    def test_not_yet_connected_fails_fast(self) -> None:
        """Before the first connection completes, calls fail at once too."""
        self.connector.add_peer(CHAT)
        d = self.connector.call("chat-1", "chatRemote", "echo", (), 10.0)
        self.failureResultOf(d, RpcError)

    def test_dropped_connection_fails_calls_in_flight_and_reconnects(self) -> None:
        """A lost connection fails its calls in flight; the backoff reconnects it."""
        self.join()
        d = self.call("later")
        self.assertEqual(self.network.drop(CHAT.rpc_client_endpoint), 1)
        self.flush()
        failure = self.failureResultOf(d, RpcError)
        self.assertIn("connection was lost", str(failure.value))
        self.assertEqual(self.connector.peer_state("chat-1"), "down")
        self.failureResultOf(self.call("echo"), RpcError)
        for _ in range(20):
            self.clock.advance(0.5)
            self.flush()
        self.assertEqual(self.connector.peer_state("chat-1"), "up")
        self.assertEqual(self.successResultOf(self.call("echo", 1)), [1])

    def test_backoff_grows_while_down_and_reconnect_skips_it(self) -> None:
        """Attempts back off while the peer is away; reconnect() connects at once."""
        self.network.unlisten(CHAT.rpc_client_endpoint)
        self.join()
        for _ in range(10):
            self.clock.advance(0.5)
            self.flush()
        attempts = self.network.attempts
        self.assertLess(attempts, 12)  # 5 s of 0.1 s * 1.5^n backoff, not 50 tries
        self.serve(self.chat, CHAT)
        self.connector.reconnect("chat-1")
        self.flush()
        self.assertEqual(self.connector.peer_state("chat-1"), "up")

    def test_removed_peer_is_unknown(self) -> None:
        """After remove_peer the connection is closed and calls fail as unknown."""
        self.join()
        self.connector.remove_peer("chat-1")
        self.flush()
        self.assertEqual(self.network.connections(CHAT.rpc_client_endpoint), 0)
        self.assertIn("unknown server", str(self.failureResultOf(self.call("echo")).value))

    def test_when_peers_up(self) -> None:
        """when_peers_up fires once every peer is up, or at the deadline with the laggards."""
        self.join()
        self.assertEqual(self.successResultOf(self.connector.when_peers_up(1.0)), [])
        self.connector.add_peer(ServerInfo(id="chat-2", type="chat", port=4251))
        d = self.connector.when_peers_up(1.0)
        self.flush()
        self.assertNoResult(d)
        self.clock.advance(1.0)
        self.assertEqual(self.successResultOf(d), ["chat-2"])

    def test_when_peers_up_fires_on_the_last_login(self) -> None:
        """A waiter fires with [] when the last peer logs in, before its timeout, and its
        timeout call goes with it."""
        self.network.unlisten(CHAT.rpc_client_endpoint)
        self.join()
        d = self.connector.when_peers_up(30.0)
        self.assertNoResult(d)
        self.serve(self.chat, CHAT)
        self.connector.reconnect("chat-1")
        self.flush()
        self.assertEqual(self.successResultOf(d), [])
        self.assertEqual(self.clock.seconds(), 0)
        self.assertEqual(self.connector._waiters._all, [])
        timeouts = [c for c in self.clock.getDelayedCalls() if c.getTime() >= 30.0]
        self.assertEqual(timeouts, [])

    def test_removing_the_last_laggard_fires_the_waiters(self) -> None:
        """A waiter also fires when the only peer not up is removed."""
        self.join()
        self.connector.add_peer(ServerInfo(id="chat-2", type="chat", port=4251))
        d = self.connector.when_peers_up(30.0)
        self.flush()
        self.assertNoResult(d)
        self.connector.remove_peer("chat-2")
        self.assertEqual(self.successResultOf(d), [])

    def test_a_cancelled_waiter_is_forgotten(self) -> None:
        """Cancelling a waiter fails it with CancelledError and forgets it."""
        self.network.unlisten(CHAT.rpc_client_endpoint)
        self.join()
        d = self.connector.when_peers_up(30.0)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.connector._waiters._all, [])

    def test_stop_closes_every_connection(self) -> None:
        """stop() closes the peer connections; no reconnect follows."""
        self.join()
        self.connector.stop()
        self.flush()
        self.clock.advance(10)
        self.flush()
        self.assertEqual(self.network.connections(CHAT.rpc_client_endpoint), 0)


class AuthTests(PbCase):
    """Nothing without the cluster secret."""

    def test_wrong_secret_is_refused(self) -> None:
        """A transport with another secret never gets up; its calls fail fast."""
        intruder = self.transport("connector-1", secret=b"not-the-secret")
        intruder.add_peer(CHAT)
        self.flush()
        self.assertEqual(intruder.peer_state("chat-1"), "down")
        d = intruder.call("chat-1", "chatRemote", "record", ("x",), 10.0)
        self.failureResultOf(d, RpcError)
        self.assertEqual(self.remote.received, [])
        self.flushLoggedErrors()

    def unlogged(self) -> tuple[pb.PBClientFactory, pb.Broker]:
        """A PB client connected to chat-1's RPC port that has not logged in."""
        brokers: list[pb.Broker] = []
        factory = pb.PBClientFactory()
        original = factory.clientConnectionMade

        def made(broker: pb.Broker) -> None:
            brokers.append(broker)
            original(broker)

        factory.clientConnectionMade = made  # type: ignore[method-assign]
        self.network.connect(CHAT.rpc_client_endpoint, factory)
        self.flush()
        return factory, brokers[0]

    def test_root_object_offers_only_login(self) -> None:
        """Before login, the root object answers nothing but login: 'call' is refused."""
        factory, broker = self.unlogged()
        root = self.successResultOf(factory.getRootObject())
        d = root.callRemote("call", "chat-1", "chatRemote", "record", pack_plain(["x"]))
        self.flush()
        self.failureResultOf(d)
        self.assertEqual(self.remote.received, [])
        wrong = login(broker, "connector-1", b"guess")
        self.flush()
        self.failureResultOf(wrong)
        self.flushLoggedErrors()

    def test_batch_message_before_login_is_refused(self) -> None:
        """A ``batch`` message on a connection that has not logged in runs nothing and
        gets the connection closed; so does one with the wrong number of arguments."""
        _, broker = self.unlogged()
        batch = pack_array([pack_plain([1, "chat-1", "chatRemote", "record", ["x"]])])
        broker.sendEncoded([b"batch", batch])
        self.flush()
        self.assertEqual(self.remote.received, [])
        self.assertTrue(broker.disconnected)
        self.join()
        server_broker = NoDelayBroker()
        server_broker.makeConnection(StringTransport())
        server_broker.batch_receiver = self.remote.received.append
        server_broker.proto_batch(batch, b"extra")
        self.assertEqual(self.remote.received, [])
        self.assertTrue(server_broker.transport.disconnecting)  # type: ignore[attr-defined]

    def test_logged_in_batches_skip_pb_messages(self) -> None:
        """Once logged in, calls and answers cross as Banana ``batch`` messages, not as
        PB ``calls``/``answers`` remote calls."""
        self.join()
        sent: list[object] = []
        original = NoDelayBroker.sendEncoded

        def recording(broker: NoDelayBroker, obj: object) -> None:
            sent.append(obj[0] if isinstance(obj, list) else obj)
            original(broker, obj)

        self.patch(NoDelayBroker, "sendEncoded", recording)
        d = self.connector.call("chat-1", "chatRemote", "echo", ["hi"], 10.0)
        self.flush()
        self.assertEqual(self.successResultOf(d), ["hi"])
        self.assertEqual(sent, [b"batch", b"batch"])


class PayloadTests(PbCase):
    """Only msgpack bytes cross, and only as ``batch`` messages of a logged-in connection."""

    def test_non_bytes_batch_over_the_wire(self) -> None:
        """A logged-in peer sending a list instead of bytes has nothing run."""
        self.join()
        broker = self.connector._peers["chat-1"].connection.broker
        assert broker is not None
        broker.sendEncoded([b"batch", [[1, b"chat-1", b"chatRemote", b"record", [b"x"]]]])
        self.flush()
        self.assertEqual(self.remote.received, [])

    def test_no_pb_methods(self) -> None:
        """The avatar offers no PB method: neither ``calls`` nor a one-call ``call``."""
        self.join()
        avatar = self.connector._peers["chat-1"].connection.avatar
        assert avatar is not None
        batch = pack_array([pack_plain([1, "chat-1", "chatRemote", "record", ["x"]])])
        refused = [
            avatar.callRemote("calls", batch),
            avatar.callRemote("call", "chat-1", "chatRemote", "record", pack_plain(["x"])),
        ]
        self.flush()
        for d in refused:
            self.failureResultOf(d)
        self.assertEqual(self.remote.received, [])
        self.flushLoggedErrors()


class BatchCase(PbCase):
    """Joined, and counting the ``calls`` and ``answers`` messages that cross."""

    def setUp(self) -> None:
        super().setUp()
        self.batches: list[int] = []  # calls per ``calls`` message
        self.answer_batches: list[int] = []  # answers per ``answers`` message
        calls, answered = RpcAvatar.run_batch, PbRpcTransport._answered

        def counting_calls(avatar: RpcAvatar, batch: object) -> None:
            self.batches.append(len(unpack_plain(batch)) if type(batch) is bytes else -1)
            calls(avatar, batch)

        def counting_answers(
            transport: PbRpcTransport, peer_id: str, broker: pb.Broker, batch: object
        ) -> None:
            try:
                self.answer_batches.append(len(unpack_plain(batch)))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self.answer_batches.append(-1)  # junk: _answered drops it
            answered(transport, peer_id, broker, batch)

        self.patch(RpcAvatar, "run_batch", counting_calls)
        self.patch(PbRpcTransport, "_answered", counting_answers)
        self.join()
        # The login's RPC wire version announcement (tests/rpc/test_wireversion.py).
        self.assertEqual((self.batches, self.answer_batches), ([1], [1]))
        self.batches.clear()
        self.answer_batches.clear()
        self.connector.batches_sent = 0

    def calls(self, *calls: tuple[Any, ...], timeout: float = 10.0) -> list[Deferred[Any]]:
        """Make ``(method, *args)`` calls in one turn (not yet sent)."""
        return [
            self.connector.call("chat-1", "chatRemote", method, args, timeout)
            for method, *args in calls
        ]


class BatchTests(BatchCase):
    """The calls of a turn travel as one PB message; each call keeps its own outcome."""

    def test_calls_of_one_turn_are_one_message_and_so_are_their_answers(self) -> None:
        """Five calls in one turn: one ``calls`` message there, one ``answers`` back."""
        ds = self.calls(*(("echo", n) for n in range(5)))
        self.assertEqual(self.batches, [])  # nothing leaves before the end of the turn
        self.flush()
        self.assertEqual(self.batches, [5])
        self.assertEqual(self.answer_batches, [5])
        self.assertEqual([self.successResultOf(d) for d in ds], [[n] for n in range(5)])
        self.assertEqual(self.connector.batches_sent, 1)

    def test_calls_of_different_turns_are_different_messages(self) -> None:
        """Calls made after a turn ended go in the next batch."""
        first = self.calls(("echo", 1), ("echo", 2))
        self.clock.advance(0)
        second = self.calls(("echo", 3))
        self.flush()
        self.assertEqual(sorted(self.batches), [1, 2])
        self.assertEqual([self.successResultOf(d) for d in first + second], [[1], [2], [3]])

    def test_answers_reach_their_own_callers_in_any_order(self) -> None:
        """Answers of one batch arriving in another order still reach the right caller."""
        ds = self.calls(("later",), ("later",), ("later",), ("echo", "now"))
        self.flush()
        self.assertEqual(self.successResultOf(ds[3]), ["now"])
        for n in (2, 0, 1):
            self.remote.pending[n].callback(f"answer {n}")
        self.flush()
        self.assertEqual(
            [self.successResultOf(d) for d in ds[:3]], [f"answer {n}" for n in range(3)]
        )
        self.assertEqual(self.answer_batches, [1, 3])  # the late three answered in one turn

    def test_a_failing_call_fails_no_other_call_of_its_batch(self) -> None:
        """Errors, a HandlerError, an undeclared method and a bad result stay with their call."""
        echo, boom, refuse, undeclared, unsendable, record = self.calls(
            ("echo", 1),
            ("boom", "bad"),
            ("refuse", 403, "no"),
            ("__init__",),
            ("unsendable",),
            ("record", "x"),
        )
        self.flush()
        self.assertEqual(self.batches, [6])
        self.assertEqual(self.successResultOf(echo), [1])
        self.assertIn("ValueError: bad", str(self.failureResultOf(boom, RpcError).value))
        self.assertEqual(self.failureResultOf(refuse, HandlerError).value.code, 403)
        self.assertIn("unknown remote method", str(self.failureResultOf(undeclared).value))
        self.assertIn("not plain data", str(self.failureResultOf(unsendable, RpcError).value))
        self.assertEqual(self.successResultOf(record), "chat-1")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        counters = self.connector.counters("chat-1")
        self.assertEqual((counters.calls, counters.failures), (6, 4))

    def test_each_call_of_a_batch_has_its_own_deadline(self) -> None:
        """Calls sent together with timeouts 1 and 3: each expires at its own deadline."""
        fast = self.calls(("later",), timeout=1.0)[0]
        slow = self.calls(("later",), timeout=3.0)[0]
        self.flush()
        self.assertEqual(self.batches, [2])
        self.clock.advance(1)
        self.failureResultOf(fast, RpcTimeout)
        self.assertNoResult(slow)
        self.remote.pending[1].callback("in time")
        self.remote.pending[0].callback("too late")
        self.flush()
        self.assertEqual(self.successResultOf(slow), "in time")
        counters = self.connector.counters("chat-1")
        self.assertEqual((counters.timeouts, counters.late), (1, 1))

    def test_a_timeout_cancelling_another_call_of_the_batch(self) -> None:
        """A call cancelled by the errback of a call timing out with it is not timed out."""
        first, second = self.calls(("later",), ("later",), timeout=1.0)
        first.addErrback(lambda _: second.cancel())
        self.flush()
        self.clock.advance(1)
        self.failureResultOf(second, CancelledError)
        self.assertEqual(self.connector.counters("chat-1").timeouts, 1)

    def test_one_deadline_timer_for_many_calls(self) -> None:
        """Fifty calls in flight: one timer on the clock for all their deadlines."""
        ds = self.calls(*(("later",) for _ in range(50)))
        self.flush()
        self.assertEqual(len(self.deadline_timers()), 1)
        for pending in self.remote.pending:
            pending.callback(None)
        self.flush()
        self.assertEqual([self.successResultOf(d) for d in ds], [None] * 50)
        self.assertEqual(self.deadline_timers(), [])

    def deadline_timers(self) -> list[object]:
        """The timers on the clock but the pinger's (a tick and a pong deadline per peer)."""
        return [
            c
            for c in self.clock.getDelayedCalls()
            if not isinstance(getattr(c.func, "__self__", None), Pinger)
        ]

    def test_a_cancelled_call_is_not_sent(self) -> None:
        """A call cancelled before its batch leaves is left out of it."""
        keep, drop = self.calls(("record", "keep"), ("record", "drop"))
        drop.cancel()
        self.failureResultOf(drop, CancelledError)
        self.flush()
        self.assertEqual(self.batches, [1])
        self.assertEqual(self.remote.received, [("record", ("keep",))])
        self.successResultOf(keep)

    def test_large_batches_are_split(self) -> None:
        """Calls adding up to more than one PB string go in several messages."""
        big = "x" * (MAX_BATCH // 3)
        ds = self.calls(*(("echo", big) for _ in range(4)), ("echo", "small"))
        self.flush()
        self.assertEqual(sum(self.batches), 5)
        self.assertGreater(len(self.batches), 1)
        self.assertEqual([self.successResultOf(d) for d in ds], [[big]] * 4 + [["small"]])

    def test_too_large_arguments_and_results(self) -> None:
        """A call or an answer that cannot fit in one PB string fails on its own."""
        too_big = self.connector.call("chat-1", "chatRemote", "echo", ("x" * MAX_BATCH,), 10.0)
        self.assertIn("too large", str(self.failureResultOf(too_big, RpcError).value))
        huge, fine = self.calls(("sized", MAX_BATCH), ("sized", 3))
        self.flush()
        self.assertIn("result is too large", str(self.failureResultOf(huge, RpcError).value))
        self.assertEqual(self.successResultOf(fine), "xxx")


class BatchFailureTests(BatchCase):
    """Connections lost under batches."""

    def test_connection_loss_fails_every_call_of_a_batch(self) -> None:
        """A lost connection fails every call sent and not answered, and those queued."""
        sent = self.calls(("later",), ("later",), ("later",))
        self.flush()
        queued = self.calls(("echo", 1))
        self.network.drop(CHAT.rpc_client_endpoint)
        self.network.flush()
        for d in [*sent, *queued]:
            self.assertIn("connection was lost", str(self.failureResultOf(d, RpcError).value))
        self.assertEqual(self.connector.counters("chat-1").failures, 4)
        self.assertEqual(len(self.connector._deadlines), 0)  # no deadline left to keep
        for pending in self.remote.pending:  # the callee finishing later changes nothing
            pending.callback("gone")
        self.flush()

    def test_a_call_made_while_failing_a_lost_batch_fails_fast(self) -> None:
        """A caller reacting to the loss by calling again is told the server is down."""
        again: list[Deferred[Any]] = []
        d = self.calls(("later",))[0]
        d.addErrback(
            lambda _: again.append(self.connector.call("chat-1", "chatRemote", "echo", (), 1))
        )
        self.flush()
        self.network.drop(CHAT.rpc_client_endpoint)
        self.network.flush()
        self.assertIn("down", str(self.failureResultOf(again[0], RpcError).value))

    def test_removed_peer_fails_its_calls_in_flight(self) -> None:
        """remove_peer closes the connection: calls in flight on it fail."""
        d = self.calls(("later",))[0]
        self.flush()
        self.connector.remove_peer("chat-1")
        self.flush()
        self.assertIn("connection was lost", str(self.failureResultOf(d, RpcError).value))

    def test_answers_on_another_connection_are_dropped(self) -> None:
        """Answers arriving on a broker that is not the call's connection reach nobody."""
        d = self.calls(("later",))[0]
        self.flush()
        stranger = pb.Broker()
        self.connector._answered("chat-1", stranger, pack_array([pack_plain([1, 0, "forged"])]))
        self.assertNoResult(d)
        self.remote.pending[0].callback("real")
        self.flush()
        self.assertEqual(self.successResultOf(d), "real")

    def test_malformed_answers(self) -> None:
        """Undecodable answers are dropped; an answer of an unknown kind fails its call."""
        d = self.calls(("later",))[0]
        self.flush()
        channel = self.connector._peers["chat-1"].channel
        assert channel is not None
        [call_id] = channel.calls
        for junk in (b"\xc1", pack_plain({"a": 1}), ["not bytes"]):
            self.connector._answered("chat-1", channel.broker, junk)
        odd = [pack_plain("x"), pack_plain([[1], 0, "x"]), pack_plain([call_id, 9, "?"])]
        self.connector._answered("chat-1", channel.broker, pack_array(odd))
        self.assertIn("malformed answer", str(self.failureResultOf(d, RpcError).value))


class _RecordingBroker(NoDelayBroker):
    """A caller's connection standing in for the real one, recording the answers sent."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Any] = []
        self.makeConnection(StringTransport())

    def send_batch(self, payload: bytes) -> None:
        self.answers += unpack_plain(payload)


class BatchPayloadTests(PbCase):
    """What the callee accepts in a batch: bytes of a list of well-typed calls."""

    def setUp(self) -> None:
        super().setUp()
        self.broker = _RecordingBroker()
        self.avatar = RpcAvatar("connector-1", self.chat.dispatcher, self.clock, self.broker)

    def answers(self) -> list[Any]:
        self.clock.advance(0)
        return self.broker.answers

    def test_non_bytes_and_malformed_batches_are_refused(self) -> None:
        """A batch that is not bytes, not msgpack or not a list runs nothing, answers nothing."""
        for batch in (["x"], b"\xc1", pack_plain({"a": 1}), pack_plain([[1, "chat-1"]])):
            self.avatar.run_batch(batch)
        self.assertEqual(self.answers(), [])
        self.assertEqual(self.remote.received, [])

    def test_badly_typed_calls_are_answered_with_an_error(self) -> None:
        """A call with names that are not str or args that are not a list gets an error."""
        batch = pack_array(
            [
                pack_plain([1, "chat-1", b"chatRemote", "record", ["x"]]),
                pack_plain([2, "chat-1", "chatRemote", "record", {"a": 1}]),
                pack_plain([3, "chat-2", "chatRemote", "record", []]),
                pack_plain([4, "chat-1", "chatRemote", "record", ["ok"]]),
            ]
        )
        self.avatar.run_batch(batch)
        answers = {answer[0]: answer for answer in self.answers()}
        self.assertIn("expected (str, str, str, list[, number])", answers[1][2])
        self.assertIn("expected (str, str, str, list[, number])", answers[2][2])
        self.assertIn("not served at this address", answers[3][2])
        self.assertEqual(answers[4], [4, 0, "chat-1"])
        self.assertEqual(self.remote.received, [("record", ("ok",))])

    def test_no_answer_sink_no_calls(self) -> None:
        """A peer that logged in without an answer sink cannot have calls run."""
        avatar = RpcAvatar("connector-1", self.chat.dispatcher, self.clock, None)
        avatar.run_batch(pack_array([pack_plain([1, "chat-1", "chatRemote", "record", []])]))
        self.assertEqual(self.remote.received, [])

    def test_answers_after_logout_go_nowhere(self) -> None:
        """Once the peer's connection is gone, answers still to come are dropped."""
        self.avatar.run_batch(pack_array([pack_plain([1, "chat-1", "chatRemote", "later", []])]))
        self.avatar.logout()
        self.remote.pending[0].callback("late")
        self.assertEqual(self.answers(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


@implementer(ITCPTransport)
class _TcpTransport(StringTransport):
    """A TCP transport recording TCP_NODELAY."""

    no_delay = False

    def setTcpNoDelay(self, enabled: bool) -> None:  # noqa: N802
        self.no_delay = enabled


class NoDelayTests(PbCase):
    """Both ends of an RPC connection turn Nagle's algorithm off."""

    def test_server_and_client_brokers_set_tcp_nodelay(self) -> None:
        """The RPC port's brokers and PersistentLogin's brokers set TCP_NODELAY."""
        server = self.chat.server_factory().buildProtocol(None)
        server.makeConnection(_TcpTransport())
        self.assertTrue(server.transport.no_delay)
        login = PersistentLogin(
            self.network.endpoint("x"), "connector-1", SECRET, clock=self.clock, jitter=lambda: 0
        )
        client = _LoginFactory(login).buildProtocol(None)
        client.makeConnection(_TcpTransport())
        self.assertTrue(client.transport.no_delay)

    def test_messages_are_encoded_as_banana_encodes_them(self) -> None:
        """NoDelayBroker's eager sendEncoded writes exactly the bytes Banana's own would."""
        ours, theirs = NoDelayBroker(), pb.Broker()
        for broker in (ours, theirs):
            broker.makeConnection(StringTransport())
            broker.transport.clear()  # type: ignore[attr-defined]
        message = [
            b"message",
            7,
            b"root",
            b"calls",
            0,
            [b"tuple", b"\x00\xff" * 40],
            [b"dictionary"],
        ]
        ours.sendEncoded(message)
        theirs.sendEncoded(message)
        self.assertEqual(ours.transport.value(), theirs.transport.value())  # type: ignore[attr-defined]
        self.assertGreater(len(ours.transport.value()), 80)  # type: ignore[attr-defined]

    def test_other_transports_are_left_alone(self) -> None:
        """A transport that is not TCP (e.g. in memory) is not asked for TCP_NODELAY."""
        broker = pb.Broker()
        broker.makeConnection(StringTransport())
        no_delay(broker)  # no setTcpNoDelay to call: nothing happens
