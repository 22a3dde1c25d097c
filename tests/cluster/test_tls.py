"""The inter-server link over TLS: ``certs``, the settings, and real loopback links (a
good certificate calls; plaintext, another CA's certificate or the wrong id is refused)."""

from __future__ import annotations

import io
import json
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.admin.client import AdminError, connect_admin
from pomelo_twisted.cluster.certs import create_certs, identities, write_certs
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig, ServerInfo, connect_endpoint
from pomelo_twisted.rpc import RemoteDispatcher
from pomelo_twisted.rpc.pb import PbRpcTransport
from pomelo_twisted.rpc.pbguard import PortLimits
from pomelo_twisted.tlsconfig import ClusterTLS, TLSServerEndpoint, check_identity, cluster_tls

from ..rpc.helpers import ChatRemote

SECRET = b"the-cluster-secret"
ADMIN_SECRET = b"the-admin-secret!"
SERVERS = {"chat": [{"id": "chat-1", "port": 0}, {"id": "chat-2", "port": 0}]}


def make_game(root: Path, tls: bool = True) -> GameConfig:
    """A game folder with two chat servers and a master, TLS on (``certs/``) or off."""
    (root / "config").mkdir(parents=True)
    master: dict[str, Any] = {
        "id": "master-1",
        "port": 0,
        "secret": SECRET.decode(),
        "adminSecret": ADMIN_SECRET.decode(),
    }
    if tls:
        master["tls"] = {"dir": "certs"}
    (root / "config" / "servers.json").write_text(json.dumps(SERVERS))
    (root / "config" / "master.json").write_text(json.dumps(master))
    return GameConfig(root)


class GameCase(SynchronousTestCase):
    """A game folder with its certificates, and a second one with another CA."""

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pomelo-tls-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.config = make_game(self.tmp / "game")
        create_certs(self.config)
        self.other = make_game(self.tmp / "other")
        create_certs(self.other)


class CertsTests(GameCase):
    """``pomelo-twisted certs``."""

    def test_every_identity_gets_a_certificate_signed_by_the_ca(self) -> None:
        """The CA, each server, the master and admin: keys 0600, certificates naming the id
        and issued by the CA."""
        root = self.tmp / "game" / "certs"
        self.assertEqual(identities(self.config), ["chat-1", "chat-2", "master-1", "admin"])
        ca = x509.load_pem_x509_certificate((root / "ca" / "ca.pem").read_bytes())
        self.assertEqual(sorted(p.name for p in (root / "ca").iterdir()), ["ca.pem"])
        for identity in ["chat-1", "chat-2", "master-1", "admin"]:
            cert = x509.load_pem_x509_certificate((root / f"{identity}.pem").read_bytes())
            cert.verify_directly_issued_by(ca)
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            self.assertEqual(names.value.get_values_for_type(x509.DNSName), [identity])
            mode = stat.S_IMODE((root / f"{identity}.key").stat().st_mode)
            self.assertEqual(mode, 0o600)
        self.assertEqual(stat.S_IMODE((root / "ca.key").stat().st_mode), 0o600)

    def test_idempotent_and_force(self) -> None:
        """A second run makes nothing; a missing certificate is made alone, with the same
        CA; ``force`` makes a new CA and every certificate."""
        root = self.tmp / "game" / "certs"
        ca_pem = (root / "ca" / "ca.pem").read_bytes()
        self.assertEqual(create_certs(self.config), (root, []))
        (root / "chat-2.pem").unlink()
        self.assertEqual(create_certs(self.config)[1], ["chat-2"])
        self.assertEqual((root / "ca" / "ca.pem").read_bytes(), ca_pem)
        made = create_certs(self.config, force=True)[1]
        self.assertEqual(made, ["ca", "chat-1", "chat-2", "master-1", "admin"])
        self.assertNotEqual((root / "ca" / "ca.pem").read_bytes(), ca_pem)

    def test_ids_that_cannot_name_a_certificate(self) -> None:
        """An id with '_' (or not one DNS label) is refused before anything is written."""
        for bad in ["chat_1", "-chat", "ab--c", "x" * 64]:
            with self.assertRaisesRegex(ConfigError, "cannot name a TLS certificate"):
                check_identity(bad)
        path = self.tmp / "game" / "config" / "servers.json"
        path.write_text(json.dumps({"chat": [{"id": "chat_1", "port": 0}]}))
        with self.assertRaisesRegex(ConfigError, "'chat_1'"):
            create_certs(self.config, force=True)
        self.assertFalse((self.tmp / "game" / "certs" / "chat_1.key").exists())
        self.assertEqual(check_identity("Chat-Server-1"), "Chat-Server-1")

    def test_extra_ids_for_servers_added_later(self) -> None:
        """``certs chat-3`` also makes chat-3's certificate (for ``add``), and only it."""
        out = io.StringIO()
        self.assertEqual(write_certs(self.config, out, extra=["chat-3", "chat-1"]), 0)
        self.assertIn("created chat-3\n", out.getvalue())
        self.assertIsNotNone(cluster_tls(self.config, "chat-3"))

    def test_cli_output_hints_when_tls_is_off(self) -> None:
        """Without ``tls`` in master.json the command says how to turn it on."""
        config = make_game(self.tmp / "plain", tls=False)
        out = io.StringIO()
        self.assertEqual(write_certs(config, out), 0)
        self.assertIn("created ca, chat-1", out.getvalue())
        self.assertIn('"tls": {"dir": "certs"}', out.getvalue())
        self.assertTrue((self.tmp / "plain" / "certs" / "admin.pem").is_file())


class SettingsTests(GameCase):
    """master.json's ``tls`` and what it turns into."""

    def test_off_without_tls(self) -> None:
        """No ``tls``: no TLS material, the endpoints stay plain TCP."""
        self.assertIsNone(cluster_tls(make_game(self.tmp / "plain", tls=False), "chat-1"))

    def test_example_production_uses_tls(self) -> None:
        """The example's production environment declares TLS; development stays plaintext."""
        example = Path(__file__).resolve().parents[2] / "example_game"
        self.assertEqual(GameConfig(example, "production").tls_dir(), example / "certs")
        self.assertIsNone(GameConfig(example, "development").tls_dir())

    def test_bad_tls_value(self) -> None:
        """A ``tls`` that is not an object is a ConfigError naming the key."""
        path = self.tmp / "game" / "config" / "master.json"
        data = json.loads(path.read_text())
        data["tls"] = True
        path.write_text(json.dumps(data))
        with self.assertRaisesRegex(ConfigError, "'tls' must be an object"):
            self.config.master_settings()

    def test_missing_files_say_how_to_make_them(self) -> None:
        """An identity without a certificate: a ConfigError naming ``certs``."""
        with self.assertRaisesRegex(ConfigError, "pomelo-twisted certs"):
            cluster_tls(self.config, "chat-9")

    def test_client_endpoint_string(self) -> None:
        """The client is an ``ssl:`` string: the CA folder, our certificate, the peer's id;
        a non-TCP endpoint is refused."""
        tls = cluster_tls(self.config, "chat-1")
        assert tls is not None
        string = tls.client(connect_endpoint("::1", 4000), "chat-2")
        self.assertTrue(string.startswith(r"ssl:host=\:\:1:port=4000:caCertsDir="))
        self.assertTrue(string.endswith("hostname=chat-2"))
        self.assertIn("certKey=", string)
        with self.assertRaises(ConfigError):
            tls.client("unix:path=/tmp/x", "chat-2")

    def test_server_endpoint_interface(self) -> None:
        """The listener wrapper provides IStreamServerEndpoint."""
        tls = cluster_tls(self.config, "chat-1")
        assert tls is not None
        endpoint = tls.server(global_reactor, "tcp:0:interface=127.0.0.1")
        self.assertIsInstance(endpoint, TLSServerEndpoint)
        self.assertTrue(verifyObject(IStreamServerEndpoint, endpoint))


class Collect(Protocol):
    """A raw client: ``lost`` fires when the server drops it."""

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


class RealLinkTests(TestCase):
    """chat-1 serving over TLS on loopback; peers with good and bad credentials."""

    timeout = 30

    def setUp(self) -> Deferred[None]:
        self.tmp = Path(tempfile.mkdtemp(prefix="pomelo-tls-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.config = make_game(self.tmp / "game")
        create_certs(self.config)
        self.other = make_game(self.tmp / "other")
        create_certs(self.other)
        dispatcher = RemoteDispatcher()
        dispatcher.add("chatRemote", ChatRemote("chat-1"))
        self.chat = self.transport("chat-1", cluster_tls(self.config, "chat-1"))
        self.chat.register("chat-1", dispatcher)
        d = self.chat.listen("tcp:0:interface=127.0.0.1")
        return d.addCallback(self._listening)

    def _listening(self, port: Any) -> None:
        self.port = port.getHost().port
        self.info = ServerInfo(id="chat-1", type="chat", host="127.0.0.1", port=self.port)

    def transport(self, name: str, tls: ClusterTLS | None) -> PbRpcTransport:
        transport = PbRpcTransport(global_reactor, name, SECRET, tls=tls)
        self.addCleanup(transport.stop)
        return transport

    @inlineCallbacks
    def refused(self, peer: PbRpcTransport, info: ServerInfo | None = None) -> Any:
        """``peer`` never logs in to chat-1 (``info``); nothing logged in at the port."""
        peer.add_peer(info or self.info)
        missing = yield peer.when_peers_up(1.0)
        self.assertEqual(missing, [(info or self.info).id])
        factory = self.chat.port_factory
        assert factory is not None
        self.assertEqual(factory.counters.logins, 0)
        self.flushLoggedErrors()

    @inlineCallbacks
    def test_good_certificate_logs_in_and_calls(self) -> Any:
        """A peer with its certificate of the cluster CA logs in (secret on top) and calls."""
        peer = self.transport("chat-2", cluster_tls(self.config, "chat-2"))
        peer.add_peer(self.info)
        missing = yield peer.when_peers_up(10.0)
        self.assertEqual(missing, [])
        answer = yield peer.call("chat-1", "chatRemote", "echo", ["over tls"], 5.0)
        self.assertEqual(answer, ["over tls"])

    def test_plaintext_peer_refused(self) -> Deferred[Any]:
        """A peer speaking plain PB to the TLS port never logs in."""
        return self.refused(self.transport("chat-2", None))

    @inlineCallbacks
    def test_plaintext_bytes_close_the_connection(self) -> Any:
        """Raw PB bytes on the TLS port: the handshake fails and the connection closes."""
        endpoint = TCP4ClientEndpoint(global_reactor, "127.0.0.1", self.port)
        protocol = yield connectProtocol(endpoint, Collect())
        protocol.transport.write(b"\x02\x80\x07\x82login" + b"\x00" * 64)
        yield protocol.lost
        factory = self.chat.port_factory
        assert factory is not None
        self.assertEqual((factory.counters.tls_failed, factory.counters.logins), (1, 0))

    @inlineCallbacks
    def test_silent_client_meets_the_login_deadline(self) -> Any:
        """A client that never starts the TLS handshake is closed by the port's login
        deadline (the deadline covers the handshake)."""
        slow = PbRpcTransport(
            global_reactor,
            "chat-9",
            SECRET,
            tls=cluster_tls(self.config, "chat-1"),
            port_limits=PortLimits(login_deadline=0.3),
        )
        self.addCleanup(slow.stop)
        port = yield slow.listen("tcp:0:interface=127.0.0.1")
        endpoint = TCP4ClientEndpoint(global_reactor, "127.0.0.1", port.getHost().port)
        protocol = yield connectProtocol(endpoint, Collect())
        yield protocol.lost
        assert slow.port_factory is not None
        self.assertEqual(slow.port_factory.counters.logins, 0)

    @inlineCallbacks
    def test_login_name_must_match_the_certificate(self) -> Any:
        """chat-2's certificate with the cluster secret cannot log in as connector-1."""
        with capturedLogs() as events:
            yield self.refused(self.transport("connector-1", cluster_tls(self.config, "chat-2")))
        text = " ".join(formatEvent(event) for event in events)
        self.assertIn("the TLS certificate names another id", text)

    @inlineCallbacks
    def test_other_ca_refused(self) -> Any:
        """A peer whose certificate another CA signed never logs in; it says why once,
        not on every retry."""
        with capturedLogs() as events:
            yield self.refused(self.transport("chat-2", cluster_tls(self.other, "chat-2")))
        lines = [formatEvent(event) for event in events]
        failed = [line for line in lines if "TLS with" in line]
        self.assertEqual(len(failed), 1, lines)
        self.assertIn("chat-2: TLS with", failed[0])
        # The port counts each failed handshake and says so once (aggregated), naming
        # the peer and what TLS said.
        factory = self.chat.port_factory
        assert factory is not None
        self.assertGreaterEqual(factory.counters.tls_failed, 1)
        port_lines = [line for line in lines if "TLS handshake failed" in line]
        self.assertEqual(len(port_lines), 1, lines)
        self.assertIn("127.0.0.1", port_lines[0])

    def test_wrong_id_refused(self) -> Deferred[Any]:
        """A client expecting chat-2 at chat-1's port (a good CA, another id) refuses it."""
        peer = self.transport("chat-1", cluster_tls(self.config, "chat-1"))
        wrong = ServerInfo(id="chat-2", type="chat", host="127.0.0.1", port=self.port)
        return self.refused(peer, wrong)


class AdminOverTlsTests(TestCase):
    """The master listening over TLS; the admin client with and without its certificate."""

    timeout = 30

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pomelo-tls-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.config = make_game(self.tmp / "game")
        create_certs(self.config)
        self.master = MasterService(
            global_reactor,
            self.config,
            SECRET,
            spawn=False,
            listen="tcp:0:interface=127.0.0.1",
            admin_secret=ADMIN_SECRET,
        )
        self.master.startService()
        self.addCleanup(self.master.stopService)

    def endpoint(self) -> str:
        assert self.master.port is not None
        return connect_endpoint("127.0.0.1", self.master.port.getHost().port)

    @inlineCallbacks
    def test_admin_lists_over_tls(self) -> Any:
        """The admin certificate and secret log in; ``list`` answers."""
        tls = cluster_tls(self.config, "admin")
        assert tls is not None
        endpoint = tls.client(self.endpoint(), "master-1")
        client = yield connect_admin(global_reactor, endpoint, ADMIN_SECRET)
        try:
            rows = yield client.list()
        finally:
            yield client.close()
        self.assertEqual(sorted(row["id"] for row in rows), ["chat-1", "chat-2", "master-1"])

    @inlineCallbacks
    def test_server_certificate_cannot_log_in_as_admin(self) -> Any:
        """The admin secret over a server's certificate: the login is refused."""
        tls = cluster_tls(self.config, "chat-1")
        assert tls is not None
        endpoint = tls.client(self.endpoint(), "master-1")
        with self.assertRaises(AdminError):
            yield connect_admin(global_reactor, endpoint, ADMIN_SECRET, 2.0)

    @inlineCallbacks
    def test_plaintext_admin_refused(self) -> Any:
        """The admin without TLS cannot log in to a TLS master."""
        with self.assertRaises(AdminError):
            yield connect_admin(global_reactor, self.endpoint(), ADMIN_SECRET, 2.0)
        self.flushLoggedErrors()
