"""pomelo_twisted.gameconfig: validated config values, quoted endpoints (IPv6 included)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import clientFromString, connectProtocol, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import (
    LISTEN_BACKLOG,
    GameConfig,
    MasterSettings,
    ServerInfo,
    connect_endpoint,
    listen_endpoint,
)

V6_FRONTEND = ServerInfo(
    id="connector-1", type="connector", host="::1", port=4150, client_port=3010, frontend=True
)


def game_folder(test: SynchronousTestCase, servers: Any, master: Any = None) -> GameConfig:
    """A game folder holding ``servers`` (and ``master``) for the development environment."""
    base = Path(tempfile.mkdtemp())
    test.addCleanup(shutil.rmtree, base)
    (base / "config").mkdir()
    (base / "config" / "servers.json").write_text(json.dumps({"development": servers}))
    if master is not None:
        (base / "config" / "master.json").write_text(json.dumps({"development": master}))
    return GameConfig(base, "development")


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind a socket to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class ServerEntryValidationTests(SynchronousTestCase):
    """servers.json values are checked; errors name the file, env, server and key."""

    def test_client_port_true_refused(self) -> None:
        """``clientPort: true`` is a ConfigError naming file, env, server id and key."""
        config = game_folder(
            self,
            {"connector": [{"id": "connector-1", "port": 4150, "clientPort": True}]},
        )
        with self.assertRaises(ConfigError) as caught:
            config.servers()
        message = str(caught.exception)
        for part in ("servers.json", "(development)", "'connector-1'", "'clientPort'"):
            self.assertIn(part, message)
        self.assertIn("must be a TCP port number", message)

    def test_bad_values_refused(self) -> None:
        """Out-of-range ports, non-string hosts and unknown flags are refused by key."""
        for entry, key in (
            ({"port": 70000}, "'port'"),
            ({"port": -1}, "'port'"),
            ({"host": 127001}, "'host'"),
            ({"host": ""}, "'host'"),
            ({"frontend": "yes", "clientPort": 3010}, "'frontend'"),
            ({"clientHost": 1, "clientPort": 3010}, "'clientHost'"),
            ({"auto-restart": 1}, "'auto-restart'"),
        ):
            with self.assertRaises(ConfigError) as caught:
                ServerInfo.from_entry("chat", {"id": "chat-1", **entry})
            self.assertIn(key, str(caught.exception), entry)
            self.assertIn("'chat-1'", str(caught.exception), entry)

    def test_pomelo_string_flags(self) -> None:
        """Pomelo's string booleans ("true"/"false") are read as booleans."""
        info = ServerInfo.from_entry(
            "connector",
            {"id": "c-1", "frontend": "true", "clientPort": 3010, "auto-restart": "true"},
        )
        self.assertTrue(info.frontend)
        self.assertTrue(info.auto_restart)
        self.assertFalse(ServerInfo.from_entry("chat", {"id": "x", "frontend": "false"}).frontend)

    def test_extra_keys_kept(self) -> None:
        """Keys the framework does not read stay in ``extra`` and in ``to_dict``."""
        info = ServerInfo.from_entry("chat", {"id": "chat-1", "args": "--x", "max": 5})
        self.assertEqual(dict(info.extra), {"args": "--x", "max": 5})
        self.assertEqual(ServerInfo.from_dict(info.to_dict()), info)
        self.assertEqual(info.server_type, "chat")


class EndpointTests(SynchronousTestCase):
    """Endpoint strings quote the host: IPv6 addresses parse."""

    def test_ipv4_strings_unchanged(self) -> None:
        """An IPv4 host gives the same strings as before quoting."""
        self.assertEqual(
            listen_endpoint(3010, "127.0.0.1"),
            f"tcp:3010:interface=127.0.0.1:backlog={LISTEN_BACKLOG}",
        )
        self.assertEqual(connect_endpoint("127.0.0.1", 4150), "tcp:host=127.0.0.1:port=4150")

    def test_ipv6_listeners_parse(self) -> None:
        """The client and RPC listeners of a ``::1`` server listen on ::1 with the backlog."""
        reactor = MemoryReactor()
        for description, port in (
            (V6_FRONTEND.client_endpoint, 3010),
            (V6_FRONTEND.rpc_endpoint, 4150),
        ):
            assert description is not None
            serverFromString(reactor, description).listen(Factory())
            listened = reactor.tcpServers[-1]
            self.assertEqual(listened[0], port)
            self.assertEqual((listened[2], listened[3]), (LISTEN_BACKLOG, "::1"))

    def test_ipv6_client_parses(self) -> None:
        """The RPC client endpoint of a ``::1`` server connects to ::1."""
        reactor = MemoryReactor()
        clientFromString(reactor, V6_FRONTEND.rpc_client_endpoint).connect(Factory())
        self.assertEqual(reactor.tcpClients[-1][:2], ("::1", 4150))

    def test_ipv6_master(self) -> None:
        """The master's listener and client endpoints quote an IPv6 host too."""
        settings = MasterSettings(host="::1", port=4005)
        reactor = MemoryReactor()
        serverFromString(reactor, settings.listen_endpoint).listen(Factory())
        self.assertEqual(reactor.tcpServers[-1][0], 4005)
        self.assertEqual(reactor.tcpServers[-1][3], "::1")
        assert settings.client_endpoint is not None
        clientFromString(reactor, settings.client_endpoint).connect(Factory())
        self.assertEqual(reactor.tcpClients[-1][:2], ("::1", 4005))


class MasterSettingsTests(SynchronousTestCase):
    """master.json is read into MasterSettings, checked key by key."""

    def test_defaults_and_values(self) -> None:
        """Absent keys take their defaults; numbers become seconds."""
        config = game_folder(
            self, {}, {"id": "m", "port": 4005, "secret": "12345678", "stopTimeout": 3}
        )
        settings = config.master_settings()
        self.assertEqual((settings.id, settings.port, settings.stop_timeout), ("m", 4005, 3.0))
        self.assertEqual((settings.restart_min_delay, settings.restart_max_delay), (0.5, 30.0))
        self.assertEqual(config.master_endpoint(), "tcp:host=127.0.0.1:port=4005")
        self.assertEqual(config.cluster_secret(), b"12345678")

    def test_no_port_no_master(self) -> None:
        """Without a port there is no master to connect to; it would listen on 3005."""
        config = game_folder(self, {})
        self.assertIsNone(config.master_endpoint())
        self.assertEqual(config.master_settings().listen_endpoint, "tcp:3005:interface=127.0.0.1")

    def test_bad_values_named(self) -> None:
        """A wrong value names master.json, the environment and the key."""
        for bad, key in (
            ({"stopTimeout": 0}, "stopTimeout"),
            ({"restartMaxDelay": True}, "restartMaxDelay"),
            ({"port": "4005"}, "port"),
            ({"secret": 12345678}, "secret"),
            ({"restartMinDelay": 9, "restartMaxDelay": 8}, "restartMinDelay"),
        ):
            config = game_folder(self, {}, {"id": "m", **bad})
            with self.assertRaises(ConfigError) as caught:
                config.master_settings()
            message = str(caught.exception)
            self.assertIn("master.json (development)", message)
            self.assertIn(key, message)

    def test_rpc_section(self) -> None:
        """master.json's rpc sets the pings and the PB ports' before-login limits; absent,
        the defaults (1 s / 3 s pings, 10 s and 64 KiB before login)."""
        rpc = game_folder(self, {}, {}).master_settings().rpc
        self.assertEqual(
            (rpc.ping_interval, rpc.ping_timeout, rpc.login_deadline, rpc.pre_login_bytes),
            (1.0, 3.0, 10.0, 65536),
        )
        config = game_folder(
            self,
            {},
            {
                "rpc": {
                    "pingInterval": 0.5,
                    "pingTimeout": 2,
                    "loginDeadline": 4,
                    "preLoginBytes": 4096,
                }
            },
        )
        rpc = config.master_settings().rpc
        self.assertEqual(
            (rpc.ping_interval, rpc.ping_timeout, rpc.login_deadline, rpc.pre_login_bytes),
            (0.5, 2.0, 4.0, 4096),
        )

    def test_bad_rpc_section_named(self) -> None:
        """A bad or unknown rpc key, or pings slower than their timeout, name master.json."""
        for bad in (
            {"pingTimeout": 0},
            {"preLoginBytes": 100},
            {"pingEvery": 1},
            {"pingInterval": 3, "pingTimeout": 3},
        ):
            config = game_folder(self, {}, {"rpc": bad})
            with self.assertRaises(ConfigError) as caught:
                config.master_settings()
            self.assertIn(
                "master.json (development): 'rpc' must be an object", str(caught.exception)
            )

    def test_seconds_hint(self) -> None:
        """A bad duration says it must be a positive number of seconds."""
        config = game_folder(self, {}, {"stopTimeout": -1})
        with self.assertRaises(ConfigError) as caught:
            config.master_settings()
        self.assertIn("'stopTimeout' must be a positive number of seconds", str(caught.exception))


def env_game(test: SynchronousTestCase, env: str, master: dict[str, Any]) -> GameConfig:
    """A game folder whose master.json has ``master`` for ``env``; no secrets from the
    environment variables."""
    base = Path(tempfile.mkdtemp())
    test.addCleanup(shutil.rmtree, base)
    (base / "config").mkdir()
    (base / "config" / "servers.json").write_text(json.dumps({env: {}}))
    (base / "config" / "master.json").write_text(json.dumps({env: master}))
    hidden = ("POMELO_CLUSTER_SECRET", "POMELO_ADMIN_SECRET")
    test.patch(os, "environ", {k: v for k, v in os.environ.items() if k not in hidden})
    return GameConfig(base, env)


EXAMPLE = Path(__file__).resolve().parents[1] / "example_game"


class SecretTests(SynchronousTestCase):
    """The cluster and admin secrets: separate, and checked harder in production."""

    def test_admin_secret_is_separate(self) -> None:
        """adminSecret is the admin's; absent, none (nothing derived); equal to the
        cluster secret, refused."""
        config = env_game(self, "development", {"secret": "servers-secret"})
        self.assertFalse(config.has_admin_secret())
        with self.assertRaises(ConfigError) as caught:
            config.admin_secret()
        self.assertIn("needs a 'adminSecret'", str(caught.exception))
        config = env_game(self, "development", {"secret": "s" * 16, "adminSecret": "a" * 16})
        self.assertEqual((config.cluster_secret(), config.admin_secret()), (b"s" * 16, b"a" * 16))
        config = env_game(self, "development", {"secret": "s" * 16, "adminSecret": "s" * 16})
        with self.assertRaises(ConfigError) as caught:
            config.admin_secret()
        self.assertIn("'adminSecret' must differ from 'secret'", str(caught.exception))

    def test_production_refuses_weak_secrets(self) -> None:
        """In production a missing, short (< 16) or published example secret is a
        ConfigError naming master.json and the environment."""
        for master, says in (
            ({}, "needs a 'secret'"),
            ({"secret": "only-12-char"}, "too short for production (12 characters, at least 16)"),
            ({"secret": "change-me-or-set-POMELO_CLUSTER_SECRET"}, "published example value"),
            ({"secret": "development-only-cluster-secret"}, "published example value"),
        ):
            config = env_game(self, "production", master)
            with self.assertRaises(ConfigError) as caught:
                config.cluster_secret()
            message = str(caught.exception)
            self.assertIn("master.json (production)", message)
            self.assertIn(says, message)
        config = env_game(self, "production", {"secret": "a-real-secret-of-24-chars"})
        self.assertEqual(config.cluster_secret(), b"a-real-secret-of-24-chars")
        config = env_game(self, "development", {"secret": "only-12-char"})
        self.assertEqual(config.cluster_secret(), b"only-12-char")

    def test_example_game(self) -> None:
        """The example game starts in development; its production secrets are refused
        (both of them) until replaced."""
        hidden = ("POMELO_CLUSTER_SECRET", "POMELO_ADMIN_SECRET")
        self.patch(os, "environ", {k: v for k, v in os.environ.items() if k not in hidden})
        development = GameConfig(EXAMPLE, "development")
        self.assertTrue(development.admin_secret())
        production = GameConfig(EXAMPLE, "production")
        self.assertRaises(ConfigError, production.cluster_secret)
        self.patch(os, "environ", {"POMELO_CLUSTER_SECRET": "x" * 20})
        self.assertEqual(production.cluster_secret(), b"x" * 20)
        with self.assertRaises(ConfigError) as caught:
            production.admin_secret()
        self.assertIn("'adminSecret' is the published example value", str(caught.exception))


class Echo(Protocol):
    """Sends back what it receives."""

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class Receiver(Protocol):
    """Fires ``received`` with the first bytes it gets."""

    def __init__(self) -> None:
        self.received: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received.callback(data)


class Ipv6SocketTests(TestCase):
    """A real listener and connection on the IPv6 loopback."""

    def setUp(self) -> None:
        if not has_ipv6_loopback():
            raise self.skipTest("this machine has no IPv6 loopback (::1)")

    @inlineCallbacks
    def test_listen_and_connect_on_ipv6_loopback(self) -> Any:
        """A ``::1`` server's RPC listener accepts its own RPC client endpoint."""
        listener = ServerInfo(id="chat-1", type="chat", host="::1", port=0)
        port: IListeningPort = yield serverFromString(global_reactor, listener.rpc_endpoint).listen(
            Factory.forProtocol(Echo)
        )
        self.addCleanup(port.stopListening)
        bound = ServerInfo(id="chat-1", type="chat", host="::1", port=port.getHost().port)
        receiver = Receiver()
        client = yield connectProtocol(
            clientFromString(global_reactor, bound.rpc_client_endpoint), receiver
        )
        self.addCleanup(client.transport.loseConnection)
        client.transport.write(b"over ::1")
        data = yield receiver.received
        self.assertEqual(data, b"over ::1")
