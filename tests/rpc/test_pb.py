"""PbRpcTransport over an in-memory network (iosim) on a Clock: auth, deadlines, failures."""

from __future__ import annotations

import random
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.internet.task import Clock
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.cluster.server_info import ServerInfo
from pomelo_twisted.errors import HandlerError, RpcError, RpcTimeout
from pomelo_twisted.interfaces import INetworkRpcTransport, IRpcTransport
from pomelo_twisted.rpc import RemoteDispatcher, pack_plain, unpack_plain
from pomelo_twisted.rpc.pb import PbRpcTransport, RpcAvatar
from pomelo_twisted.rpc.pbauth import AvatarRealm, ClusterSecretChecker, login
from pomelo_twisted.rpc.pbconnection import ObservedEndpoint
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
        self.network.flush()

    def call(self, method: str, *args: Any, timeout: float = 10.0) -> Deferred[Any]:
        d = self.connector.call("chat-1", "chatRemote", method, args, timeout)
        self.network.flush()
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
        self.network.flush()
        failure = self.failureResultOf(d, RpcError)
        self.assertIn("unknown remote service 'os'", str(failure.value))

    def test_async_results(self) -> None:
        """A Deferred or a coroutine result arrives when it fires."""
        d = self.call("doubled")
        self.assertNoResult(d)
        self.remote.pending[0].callback(21)
        self.network.flush()
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
        self.network.flush()
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
        self.network.flush()
        failure = self.failureResultOf(d, RpcError)
        self.assertIn("connection was lost", str(failure.value))
        self.assertEqual(self.connector.peer_state("chat-1"), "down")
        self.failureResultOf(self.call("echo"), RpcError)
        for _ in range(20):
            self.clock.advance(0.5)
            self.network.flush()
        self.assertEqual(self.connector.peer_state("chat-1"), "up")
        self.assertEqual(self.successResultOf(self.call("echo", 1)), [1])

    def test_backoff_grows_while_down_and_reconnect_skips_it(self) -> None:
        """Attempts back off while the peer is away; reconnect() connects at once."""
        self.network.unlisten(CHAT.rpc_client_endpoint)
        self.join()
        for _ in range(10):
            self.clock.advance(0.5)
            self.network.flush()
        attempts = self.network.attempts
        self.assertLess(attempts, 12)  # 5 s of 0.1 s * 1.5^n backoff, not 50 tries
        self.serve(self.chat, CHAT)
        self.connector.reconnect("chat-1")
        self.network.flush()
        self.assertEqual(self.connector.peer_state("chat-1"), "up")

    def test_removed_peer_is_unknown(self) -> None:
        """After remove_peer the connection is closed and calls fail as unknown."""
        self.join()
        self.connector.remove_peer("chat-1")
        self.network.flush()
        self.assertEqual(self.network.connections(CHAT.rpc_client_endpoint), 0)
        self.assertIn("unknown server", str(self.failureResultOf(self.call("echo")).value))

    def test_when_peers_up(self) -> None:
        """when_peers_up fires once every peer is up, or at the deadline with the laggards."""
        self.join()
        self.assertEqual(self.successResultOf(self.connector.when_peers_up(1.0)), [])
        self.connector.add_peer(ServerInfo(id="chat-2", type="chat", port=4251))
        d = self.connector.when_peers_up(1.0)
        self.network.flush()
        self.assertNoResult(d)
        self.clock.advance(1.0)
        self.assertEqual(self.successResultOf(d), ["chat-2"])

    def test_stop_closes_every_connection(self) -> None:
        """stop() closes the peer connections; no reconnect follows."""
        self.join()
        self.connector.stop()
        self.network.flush()
        self.clock.advance(10)
        self.network.flush()
        self.assertEqual(self.network.connections(CHAT.rpc_client_endpoint), 0)


class AuthTests(PbCase):
    """Nothing without the cluster secret."""

    def test_wrong_secret_is_refused(self) -> None:
        """A transport with another secret never gets up; its calls fail fast."""
        intruder = self.transport("connector-1", secret=b"not-the-secret")
        intruder.add_peer(CHAT)
        self.network.flush()
        self.assertEqual(intruder.peer_state("chat-1"), "down")
        d = intruder.call("chat-1", "chatRemote", "record", ("x",), 10.0)
        self.failureResultOf(d, RpcError)
        self.assertEqual(self.remote.received, [])
        self.flushLoggedErrors()

    def test_root_object_offers_only_login(self) -> None:
        """Before login, the root object answers nothing but login: 'call' is refused."""
        brokers: list[pb.Broker] = []
        factory = pb.PBClientFactory()
        original = factory.clientConnectionMade

        def made(broker: pb.Broker) -> None:
            brokers.append(broker)
            original(broker)

        factory.clientConnectionMade = made  # type: ignore[method-assign]
        self.network.connect(CHAT.rpc_client_endpoint, factory)
        self.network.flush()
        root = self.successResultOf(factory.getRootObject())
        d = root.callRemote("call", "chat-1", "chatRemote", "record", pack_plain(["x"]))
        self.network.flush()
        self.failureResultOf(d)
        self.assertEqual(self.remote.received, [])
        wrong = login(brokers[0], "connector-1", b"guess")
        self.network.flush()
        self.failureResultOf(wrong)
        self.flushLoggedErrors()


class PayloadTests(PbCase):
    """Only str names and msgpack bytes cross."""

    def test_non_bytes_payload_refused(self) -> None:
        """The avatar refuses arguments that are not (str, str, str, bytes); nothing runs."""
        avatar = RpcAvatar(self.chat, "connector-1")
        for args in (
            ("chat-1", "chatRemote", "record", ["x"]),
            ("chat-1", "chatRemote", "record", {"a": 1}),
            ("chat-1", b"chatRemote", "record", pack_plain(["x"])),
        ):
            answer = avatar.perspective_call(*args)
            assert isinstance(answer, bytes)
            kind, message = unpack_plain(answer)
            self.assertEqual(kind, 2)
            self.assertIn("refused", message)
        self.assertEqual(self.remote.received, [])

    def test_non_bytes_payload_over_the_wire(self) -> None:
        """A logged-in peer sending a list instead of bytes gets an error, not a call."""
        self.join()
        avatar = self.connector._peers["chat-1"].connection.avatar
        assert avatar is not None
        d = avatar.callRemote("call", "chat-1", "chatRemote", "record", ["x"])
        self.network.flush()
        kind, message = unpack_plain(self.successResultOf(d))
        self.assertEqual(kind, 2)
        self.assertIn("expected (str, str, str, bytes)", message)
        self.assertEqual(self.remote.received, [])

    def test_bad_msgpack_and_wrong_target(self) -> None:
        """Undecodable payloads and calls for a server not served here are refused."""
        avatar = RpcAvatar(self.chat, "connector-1")
        kind, message = unpack_plain(avatar.perspective_call("chat-1", "a", "b", b"\xc1"))
        self.assertEqual((kind, "bad arguments payload" in message), (2, True))
        kind, message = unpack_plain(avatar.perspective_call("chat-2", "a", "b", pack_plain([])))
        self.assertEqual((kind, "not served at this address" in message), (2, True))
