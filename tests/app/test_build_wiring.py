"""What build.py wires after the game's configure: the route and breaker settings, and
global channels forgetting the members of a frontend that left the cluster."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.app.build import (
    apply_rpc_settings,
    build_application,
    build_cluster_server,
    forget_left_frontends,
)
from pomelo_twisted.discovery.interfaces import MembershipEvent
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import GameConfig, ServerInfo
from pomelo_twisted.globalchannels import FakeRedis, GlobalChannelService
from pomelo_twisted.listeners import Listeners
from pomelo_twisted.rpc import ConsistentHashRoute, default_route
from pomelo_twisted.rpc.pb import PbRpcTransport
from tests.sessions.fakes import FakeRpc

from .helpers import EXAMPLE_GAME

CHAT = ServerInfo(id="chat-1", type="chat", port=4250)
CONNECTORS = [
    ServerInfo(id="connector-1", type="connector", port=4150, client_port=3010, frontend=True),
    ServerInfo(id="connector-2", type="connector", port=4151, client_port=3011, frontend=True),
]
SERVERS = {"chat": [CHAT], "connector": CONNECTORS}


def chat_app(settings: dict[str, Any] | None = None) -> Any:
    """chat-1 on a PB transport (never started), with these settings."""
    clock = Clock()
    return build_application(
        CHAT,
        reactor=clock,  # unstarted: only its clock is used
        rpc=PbRpcTransport(clock, CHAT.id, b"secret"),
        servers=SERVERS,
        config=None,
        settings=settings,
    )


class RpcSettingsTests(SynchronousTestCase):
    """The ``route`` and ``rpc_breaker_*`` settings."""

    def test_route_setting_routes_every_unrouted_type(self) -> None:
        """route=consistent-hash applies to the types configure did not route itself."""
        app = chat_app({"route": "consistent-hash"})
        self.assertIsInstance(app.router.get("chat"), ConsistentHashRoute)
        self.assertIsInstance(app.router.get("connector"), ConsistentHashRoute)

    def test_explicit_route_is_kept(self) -> None:
        """A type the game routed itself keeps its route function."""
        app = chat_app()

        def mine(param: object, servers: Any) -> str:
            return str(servers[0].id)

        app.route("chat", mine)
        app.set("route", "consistent-hash:40")
        apply_rpc_settings(app, ["chat", "connector"])
        self.assertIs(app.router.get("chat"), mine)
        self.assertIsInstance(app.router.get("connector"), ConsistentHashRoute)

    def test_no_setting_keeps_crc32(self) -> None:
        """Without the setting every type routes by crc32 mod n, as before."""
        self.assertIs(chat_app().router.get("chat"), default_route)

    def test_bad_settings_name_the_server(self) -> None:
        """A bad route or breaker setting is a ConfigError naming what is wrong."""
        self.assertRaises(ConfigError, chat_app, {"route": "round-robin"})
        with self.assertRaises(ConfigError) as caught:
            chat_app({"rpc_breaker_failures": 0})
        self.assertIn("server chat-1", str(caught.exception))

    def test_breaker_settings_reach_the_transport(self) -> None:
        """rpc_breaker_failures / rpc_breaker_cool_down configure every peer's breaker."""
        app = chat_app({"rpc_breaker_failures": 2, "rpc_breaker_cool_down": 1.5})
        settings = app.rpc_transport.breakers.settings
        self.assertEqual((settings.failures, settings.cool_down), (2, 1.5))


class ForgetLeftFrontendsTests(SynchronousTestCase):
    """A frontend leaving the cluster loses its global-channel members."""

    def setUp(self) -> None:
        self.app = chat_app()
        self.channels = GlobalChannelService(FakeRedis(Clock()), FakeRpc(), "test")
        self.app.components["global_channels"] = self.channels
        self.listeners: Listeners[[MembershipEvent]] = Listeners("membership")
        forget_left_frontends(self.app, self.listeners)
        for uid, frontend in (("a", "connector-1"), ("b", "connector-2")):
            self.successResultOf(self.channels.add("world", uid, frontend))

    def members(self) -> list[str]:
        return sorted(self.successResultOf(self.channels.members("world")))

    def test_removed_or_down_frontend_loses_its_members(self) -> None:
        """removed (lease ended) or down (crashed) frontend: its members are gone."""
        self.listeners.notify(MembershipEvent("removed", CONNECTORS[0]))
        self.assertEqual(self.members(), ["b"])
        self.listeners.notify(MembershipEvent("down", CONNECTORS[1]))
        self.assertEqual(self.members(), [])

    def test_up_and_backends_change_nothing(self) -> None:
        """A frontend coming up, or a backend leaving, keeps every member."""
        self.listeners.notify(MembershipEvent("up", CONNECTORS[0]))
        self.listeners.notify(MembershipEvent("removed", CHAT))
        self.assertEqual(self.members(), ["a", "b"])


class RpcLinkSettingsTests(SynchronousTestCase):
    """master.json's ``rpc`` reaches every server's PB transport and port."""

    def test_master_json_rpc_reaches_the_transport(self) -> None:
        """A cluster server's RPC port takes loginDeadline/preLoginBytes, its pings the
        interval and timeout."""
        base = Path(tempfile.mkdtemp(prefix="pomelo-rpc-settings-")) / "game"
        self.addCleanup(shutil.rmtree, base.parent, True)
        shutil.copytree(EXAMPLE_GAME, base, ignore=shutil.ignore_patterns("logs"))
        master = json.loads((base / "config" / "master.json").read_text())
        master["development"]["rpc"] = {
            "pingInterval": 0.5, "pingTimeout": 2, "loginDeadline": 4, "preLoginBytes": 4096,
        }  # fmt: skip
        (base / "config" / "master.json").write_text(json.dumps(master))
        config = GameConfig(base)
        servers = config.servers()
        app = build_cluster_server(
            servers["chat"][0], reactor=MemoryReactorClock(), servers=servers, config=config
        )
        transport = app.rpc_transport
        assert isinstance(transport, PbRpcTransport)
        limits = transport.server_factory().limits
        self.assertEqual((limits.login_deadline, limits.pre_login_bytes), (4.0, 4096))
        self.assertEqual(transport._ping, (0.5, 2.0))
