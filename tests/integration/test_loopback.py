"""The acceptors, the agent and the Python client over real loopback sockets.

Every test starts an :class:`AcceptorService` with the echo handler on an ephemeral
127.0.0.1 port and, on cleanup, stops it and waits until every server-side connection
is gone, so the reactor is clean for trial (and for pytest with pytest-twisted).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import random
import shutil
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from pomelo_twisted.acceptors import (
    AcceptorService,
    AgentPool,
    PomeloTCPProtocol,
    PomeloWebSocketProtocol,
)
from pomelo_twisted.agent import AgentConfig, CloseReason
from pomelo_twisted.client import ClientError, PomeloClient, connect
from pomelo_twisted.testing import EchoHandler, echo_dictionary

ECHO = "connector.entryHandler.echo"
PUSH = "connector.entryHandler.push"
LOOPBACK = "tcp:0:interface=127.0.0.1"
UNORDERED = AgentConfig(ordered=False)
"""Answers may overtake each other (the in-flight tests check that they do)."""
TIMEOUT = 5.0


class LoopbackServer:
    """An echo AcceptorService on loopback that knows when its connections are all gone."""

    def __init__(
        self, endpoint: str = LOOPBACK, kind: Any = "hybrid", config: AgentConfig | None = None
    ) -> None:
        self.handler = EchoHandler(reactor)
        self.agents = AgentPool(self.handler, reactor, dictionary=echo_dictionary(), config=config)
        self.service = AcceptorService(reactor, endpoint, self.agents, kind=kind)
        self.port = 0
        self._open = 0
        self._idle: list[Deferred[None]] = []
        build = self.service.factory.buildProtocol

        def build_tracked(addr: Any) -> Any:
            # Count every server-side connection until its connectionLost has run.
            proto = build(addr)
            if proto is None:  # refused (a connection cap): Twisted closes it
                return None
            lost = proto.connectionLost

            def connection_lost(reason: Failure = connectionDone) -> None:
                try:
                    lost(reason)
                finally:
                    self._connection_gone()

            proto.connectionLost = connection_lost
            self._open += 1
            return proto

        self.service.factory.buildProtocol = build_tracked  # type: ignore[method-assign]

    @inlineCallbacks
    def start(self) -> Any:
        self.service.startService()
        port = yield self.service.listening
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        self.port = address.port
        return self

    def _connection_gone(self) -> None:
        self._open -= 1
        if self._open == 0:
            waiters, self._idle = self._idle, []
            for d in waiters:
                d.callback(None)

    def all_gone(self) -> Deferred[None]:
        """Fires once no server-side connection is left."""
        if self._open == 0:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idle.append(d)
        return d

    @inlineCallbacks
    def stop(self) -> Any:
        """Stop the service, then wait (bounded) for every server-side connection to be gone."""
        yield self.service.stopService()
        yield self.all_gone().addTimeout(TIMEOUT, reactor)


class RawPomeloProtocol(Protocol):
    """A hand-written Pomelo peer: records the packages it receives and when it is gone."""

    def __init__(self) -> None:
        self.buffer = b""
        self.packages: list[tuple[int, bytes]] = []
        self.handshake_reply: Deferred[bytes] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        body = json.dumps({"sys": {"type": "raw", "version": "0.0.1"}, "user": {}}).encode()
        self.transport.write(package(1, body))

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            length = int.from_bytes(self.buffer[1:4], "big")
            if len(self.buffer) < 4 + length:
                break
            kind, body = self.buffer[0], self.buffer[4 : 4 + length]
            self.buffer = self.buffer[4 + length :]
            self.packages.append((kind, body))
            if kind == 1 and not self.handshake_reply.called:
                self.handshake_reply.callback(body)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


def package(kind: int, body: bytes = b"") -> bytes:
    """A Pomelo package: type, 24-bit big-endian length, body."""
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def write_self_signed(directory: str) -> tuple[str, str, bytes]:
    """A self-signed cert for localhost / 127.0.0.1; returns key path, cert path, cert PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_path = os.path.join(directory, "key.pem")
    cert_path = os.path.join(directory, "cert.pem")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert_pem)
    return key_path, cert_path, cert_pem


class LoopbackTestCase(TestCase):
    """Starts servers and connects clients that are all cleaned up after the test."""

    @inlineCallbacks
    def serve(
        self, endpoint: str = LOOPBACK, kind: Any = "hybrid", config: AgentConfig | None = None
    ) -> Any:
        server = LoopbackServer(endpoint, kind, config)
        yield server.start()
        self.addCleanup(server.stop)
        return server

    @inlineCallbacks
    def client(self, target: str, **kwargs: Any) -> Any:
        client: PomeloClient = yield connect(reactor, target, timeout=TIMEOUT, **kwargs)
        self.addCleanup(client.close)
        return client

    @inlineCallbacks
    def echo_and_push(self, client: PomeloClient, tag: str) -> Any:
        """One echo (with non-ASCII text) and one push round trip on ``client``."""
        body = {"tag": tag, "text": "héllo 你好 🎮"}
        self.assertEqual((yield client.request(ECHO, body)), body)
        pushed: Deferred[Any] = Deferred()
        client.on("onPush", pushed.callback)
        self.assertEqual((yield client.request(PUSH, {"push": tag})), {"code": 200})
        self.assertEqual((yield pushed), {"push": tag})

    @inlineCallbacks
    def many_in_flight(self, client: PomeloClient, count: int = 200) -> Any:
        """``count`` echoes at once with random delays: each answers its own body."""
        rng = random.Random(count)
        delays = [rng.randint(0, 50) for _ in range(count)]
        # The last one must overtake the first: the first waits 500 ms, far longer than
        # 200 requests take to be read, in however many slices a loaded machine makes.
        delays[0], delays[-1] = 500, 0
        arrived: list[int] = []

        def record(body: Any) -> Any:
            arrived.append(body["i"])
            return body

        requests = [
            client.request(ECHO, {"i": i, "delayMs": delay, "pad": "é" * (i % 17)}).addCallback(
                record
            )
            for i, delay in enumerate(delays)
        ]
        self.assertEqual(client.pending_requests, count)
        replies = yield gatherResults(requests, consumeErrors=True)
        expected = [{"i": i, "delayMs": d, "pad": "é" * (i % 17)} for i, d in enumerate(delays)]
        self.assertEqual(replies, expected)
        self.assertEqual(sorted(arrived), list(range(count)))
        self.assertLess(arrived.index(count - 1), arrived.index(0))
        self.assertEqual(client.pending_requests, 0)


class HybridTests(LoopbackTestCase):
    """Raw TCP and WebSocket clients on one hybrid port."""

    @inlineCallbacks
    def test_tcp_and_websocket_on_one_port(self) -> Any:
        """The hybrid port serves a raw TCP and a WebSocket client at once, echo and push."""
        server = yield self.serve()
        tcp = yield self.client(f"tcp:127.0.0.1:{server.port}", user={"via": "tcp"})
        ws = yield self.client(f"ws://127.0.0.1:{server.port}/", user={"via": "ws"})
        self.assertEqual((tcp.handshake_user, ws.handshake_user), ({"via": "tcp"}, {"via": "ws"}))
        yield gatherResults([self.echo_and_push(tcp, "tcp"), self.echo_and_push(ws, "ws")])
        links = sorted(type(agent.link).__name__ for agent in server.handler.sessions)
        self.assertEqual(links, [PomeloTCPProtocol.__name__, PomeloWebSocketProtocol.__name__])
        self.assertEqual(server.agents.metrics.connections_open, 2)

    @inlineCallbacks
    def test_200_in_flight_tcp(self) -> Any:
        """200 concurrent requests on one TCP connection (unordered) all get their own
        response."""
        server = yield self.serve(config=UNORDERED)
        client = yield self.client(f"tcp:127.0.0.1:{server.port}")
        yield self.many_in_flight(client)

    @inlineCallbacks
    def test_200_in_flight_websocket(self) -> Any:
        """200 concurrent requests on one WebSocket connection (unordered) all get their own
        response."""
        server = yield self.serve(config=UNORDERED)
        client = yield self.client(f"ws://127.0.0.1:{server.port}/")
        yield self.many_in_flight(client)

    @inlineCallbacks
    def test_bad_package_type_kicks_only_that_client(self) -> Any:
        """A bad package type gets a kick then a close; another client is unaffected."""
        server = yield self.serve()
        good = yield self.client(f"tcp:127.0.0.1:{server.port}")
        raw = RawPomeloProtocol()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", server.port), raw)
        yield raw.handshake_reply
        raw.transport.write(package(2) + package(9, b"junk"))
        yield raw.lost
        self.assertEqual(raw.packages[0][0], 1)
        kind, body = raw.packages[-1]
        self.assertEqual(kind, 5)
        self.assertTrue(json.loads(body)["reason"].startswith(CloseReason.PROTOCOL_ERROR))
        self.assertEqual(server.agents.metrics.closed[CloseReason.PROTOCOL_ERROR], 1)
        self.assertTrue(good.connected)
        yield self.echo_and_push(good, "still fine")

    @inlineCallbacks
    def test_stop_closes_clients(self) -> Any:
        """Stopping the service closes every live client connection, TCP and WebSocket."""
        server = yield self.serve()
        tcp = yield self.client(f"tcp:127.0.0.1:{server.port}")
        ws = yield self.client(f"ws://127.0.0.1:{server.port}/")
        # A reply proves the server has the ack: both sessions are connected server-side.
        yield gatherResults([tcp.request(ECHO, {}), ws.request(ECHO, {})])
        self.assertEqual(len(server.handler.sessions), 2)
        closed = gatherResults([tcp.closed, ws.closed])
        yield server.stop()
        tcp_reason, ws_reason = yield closed
        self.assertEqual(tcp_reason, "connection closed")
        self.assertEqual(ws_reason, "websocket closed (code 1000)")
        reasons = [reason for _, reason in server.handler.closes]
        self.assertEqual(reasons, [CloseReason.SERVER_CLOSED] * 2)
        self.assertFalse(tcp.connected or ws.connected)


class SingleKindTests(LoopbackTestCase):
    """``kind="tcp"`` and ``kind="ws"`` listeners."""

    @inlineCallbacks
    def test_tcp_kind(self) -> Any:
        """A ``tcp`` listener serves the raw TCP client."""
        server = yield self.serve(kind="tcp")
        client = yield self.client(f"tcp:127.0.0.1:{server.port}")
        yield self.echo_and_push(client, "tcp")

    @inlineCallbacks
    def test_ws_kind_any_path(self) -> Any:
        """A ``ws`` listener accepts the upgrade on any URL path and query."""
        server = yield self.serve(kind="ws")
        client = yield self.client(f"ws://127.0.0.1:{server.port}/any/path?x=1")
        yield self.echo_and_push(client, "ws")


class TLSTests(LoopbackTestCase):
    """Raw TLS and wss:// on one hybrid TLS port, with a self-signed certificate."""

    @inlineCallbacks
    def serve_tls(self) -> Any:
        directory = self.mktemp()
        os.makedirs(directory)
        self.addCleanup(self.remove_temp, directory)
        key_path, cert_path, cert_pem = write_self_signed(os.path.abspath(directory))
        server = yield self.serve(
            f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
        )
        return server, cert_pem

    @staticmethod
    def remove_temp(directory: str) -> None:
        """Remove the (relative) temp dir and its empty parents: pytest runs in the checkout."""
        parent = os.path.dirname(directory)
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.removedirs(os.path.dirname(parent))

    @inlineCallbacks
    def test_tls_and_wss_on_one_port(self) -> Any:
        """Raw TLS and wss:// clients trusting the certificate both work on one TLS port."""
        server, cert_pem = yield self.serve_tls()
        options = optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(cert_pem))
        tls = yield self.client(f"tcp:127.0.0.1:{server.port}", tls_options=options)
        wss = yield self.client(f"wss://127.0.0.1:{server.port}/", tls_options=options)
        yield gatherResults([self.echo_and_push(tls, "tls"), self.echo_and_push(wss, "wss")])
        links = sorted(type(agent.link).__name__ for agent in server.handler.sessions)
        self.assertEqual(links, [PomeloTCPProtocol.__name__, PomeloWebSocketProtocol.__name__])

    @inlineCallbacks
    def test_untrusted_certificate_fails(self) -> Any:
        """A client that does not trust the certificate errbacks (raw TLS and wss), no hang."""
        server, _ = yield self.serve_tls()
        options = optionsForClientTLS("localhost")  # platform trust: not our self-signed cert
        for target in (f"tcp:127.0.0.1:{server.port}", f"wss://127.0.0.1:{server.port}/"):
            d = connect(reactor, target, timeout=TIMEOUT, tls_options=options)
            failure = yield self.assertFailure(d, ClientError)
            self.assertIn("certificate verify failed", str(failure))
        self.assertEqual(server.handler.sessions, [])
