"""/metrics over a real socket: scraped and parsed; a port taken fails the start."""

from __future__ import annotations

import socket
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter
from twisted.internet import reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.gameconfig import listen_endpoint
from pomelo_twisted.interfaces import IComponent, IServerReactor
from pomelo_twisted.metrics.listener import MetricsComponent, MetricsPortError
from pomelo_twisted.metrics.runtime import GcPauses, ReactorLag

from .helpers import parse, value

SERVER = ("chat-server-1", "chat")


def component(registry: CollectorRegistry, endpoint: str | None) -> MetricsComponent:
    real = cast(IServerReactor, reactor)
    return MetricsComponent(
        real,
        SERVER[0],
        registry,
        endpoint,
        lag=ReactorLag(real, 60.0, registry, SERVER),
        gc_pauses=GcPauses(registry, SERVER, lambda: 0.0, []),
        summary=dict,
    )


class _HttpGet(Protocol):
    """Sends one HTTP/1.0 GET and collects the whole answer until the server closes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.received: list[bytes] = []
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(f"GET {self.path} HTTP/1.0\r\nHost: metrics\r\n\r\n".encode())

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.done.callback(b"".join(self.received))


@inlineCallbacks
def http_get(host: str, port: int, path: str) -> Any:
    """(status, headers, body) of GET ``path`` at ``host``:``port`` over a real socket."""
    endpoint = (TCP6ClientEndpoint if ":" in host else TCP4ClientEndpoint)(reactor, host, port)
    protocol = _HttpGet(path)
    yield connectProtocol(endpoint, protocol)
    answer = yield protocol.done
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status.split()[1]), headers, body


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class ListenerTests(TestCase):
    """MetricsComponent on the real reactor."""

    def setUp(self) -> None:
        self.registry = CollectorRegistry()
        Counter("pomelo_test_events", "Events.", ["server_id"], registry=self.registry).labels(
            SERVER[0]
        ).inc(3)

    @inlineCallbacks
    def scrape(self, host: str) -> Any:
        metrics = component(self.registry, listen_endpoint(0, host, backlog=None))
        self.assertTrue(verifyObject(IComponent, metrics))
        yield metrics.start()
        self.addCleanup(metrics.stop, False)
        assert metrics.port is not None
        address = metrics.port.getHost()
        assert isinstance(address, IPv4Address | IPv6Address)
        status, headers, body = yield http_get(address.host, address.port, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"), headers)
        for path in ("/", "/other"):
            missing, _, _ = yield http_get(address.host, address.port, path)
            self.assertEqual(missing, 404)
        return body.decode("utf-8")

    @inlineCallbacks
    def test_scraped_and_parsed(self) -> Any:
        """GET /metrics answers the registry in the text format, which the Prometheus
        parser reads back; any other path is 404."""
        body = yield self.scrape("127.0.0.1")
        self.assertEqual(value(parse(body), "pomelo_test_events_total"), 3.0)

    @inlineCallbacks
    def test_ipv6(self) -> Any:
        """An IPv6 host is listened on and scraped."""
        if not ipv6_loopback():
            raise self.skipTest("no IPv6 loopback on this machine")
        body = yield self.scrape("::1")
        self.assertEqual(value(parse(body), "pomelo_test_events_total"), 3.0)

    @inlineCallbacks
    def test_port_taken_fails_the_start(self) -> Any:
        """A metrics port in use fails start with one line naming the server and endpoint."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            port = sock.getsockname()[1]
            endpoint = listen_endpoint(port, "127.0.0.1", backlog=None)
            metrics = component(self.registry, endpoint)
            started: Deferred[None] = metrics.start()
            self.addCleanup(metrics.stop, False)
            with self.assertRaises(MetricsPortError) as caught:
                yield started
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertIn("chat-server-1: cannot serve metrics on", message)
        self.assertIn(str(port), message)
