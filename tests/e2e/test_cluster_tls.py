"""The example game as a real cluster with every link over mutual TLS."""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, clientFromString, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from pomelo_twisted.client import PomeloClient, connect
from pomelo_twisted.rpc.pbconnection import OneShotLogin

from .cluster import ENTRY, ClusterProcess
from .test_cluster import CHAT_ECHO, JOIN, room_on

SECRET = b"development-only-cluster-secret"


class Collect(Protocol):
    """A raw client: ``lost`` fires when the server drops it."""

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


class TlsClusterTests(TestCase):
    """``certs``, then ``start`` with ``tls`` in master.json: serve, refuse plaintext, stop."""

    timeout = 120

    @inlineCallbacks
    def test_tls_cluster_serves_and_stops(self) -> Any:
        """Every server joins the master and its peers over TLS; the admin CLI lists them;
        a forwarded request is answered; plaintext on an RPC port is dropped; stop exits 0
        with no traceback."""
        cluster = ClusterProcess(tls=True)
        self.addCleanup(cluster.stop)
        cluster.start()
        yield cluster.wait_started()
        self.assertIn("(mutual TLS)", cluster.log())
        out, err, code = yield cluster.cli("list")
        self.assertEqual(code, 0, err)
        for server_id in cluster.server_ids():
            self.assertRegex(out, rf"{server_id}\s+\w+\s+up\s+\d+")

        rid = room_on("chat-server-2")
        port = cluster.client_port("connector-server-1")
        client: PomeloClient = yield connect(reactor, f"tcp:127.0.0.1:{port}", timeout=5.0)
        self.addCleanup(client.close)
        reply = yield client.request(ENTRY, {"uid": "alice", "rid": rid})
        self.assertEqual(reply, {"code": 200, "uid": "alice"})
        joined = yield client.request(JOIN, {"rid": rid})
        self.assertEqual(joined["members"], ["alice"])
        echoed = yield client.request(CHAT_ECHO, {"n": [1, "tls"]})
        self.assertEqual(echoed, {"n": [1, "tls"]})

        chat = next(e for e in cluster.layout["servers"]["chat"] if e["id"] == "chat-server-2")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", int(chat["port"]))
        raw = yield connectProtocol(endpoint, Collect())
        raw.transport.write(b"\x02\x80\x07\x82login" + b"\x00" * 64)
        yield raw.lost
        # The right secret without a certificate: refused before PB (plaintext would log in).
        plain = clientFromString(reactor, f"tcp:host=127.0.0.1:port={chat['port']}")
        attempt = OneShotLogin(plain, "connector-server-1", SECRET, clock=reactor)
        yield self.assertFailure(attempt.login(2.0), Exception)

        out, err, code = yield cluster.cli("stop")
        self.assertEqual(code, 0, err)
        exit_code = yield cluster.wait_exit()
        self.assertEqual(exit_code, 0)
        stopped = re.findall(r"server (\S+) stopped \(code 0,", cluster.log())
        self.assertEqual(sorted(stopped), sorted(cluster.server_ids()))
        self.assertEqual(cluster.tracebacks(), {})
