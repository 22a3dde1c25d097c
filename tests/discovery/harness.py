"""Clusters of Applications on fakes, one per discovery implementation, for the tests.

:class:`EtcdCluster`: servers with :class:`EtcdDiscovery` on one
:class:`MemoryKeyValueStore`; each server has its own Clock, so a "killed" server (its
clock no longer advanced) stops renewing its lease while the store's clock runs on.
:class:`MasterCluster`: servers with the master's monitor over a :class:`MemoryNetwork`.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.task import Clock
from twisted.spread import pb

from pomelo_twisted.app.application import Application
from pomelo_twisted.cluster.master import MasterService
from pomelo_twisted.cluster.monitor import MonitorClient, MonitorComponent
from pomelo_twisted.cluster.supervisor import Supervisor
from pomelo_twisted.discovery.component import DiscoveryComponent
from pomelo_twisted.discovery.etcd import EtcdDiscovery
from pomelo_twisted.discovery.interfaces import IServiceDiscovery
from pomelo_twisted.gameconfig import GameConfig, ServerInfo
from pomelo_twisted.kv.memory import MemoryKeyValueStore
from pomelo_twisted.rpc import LocalRpcTransport
from pomelo_twisted.rpc.pbauth import make_portal
from pomelo_twisted.rpc.pbconnection import PersistentLogin
from pomelo_twisted.testing.network import MemoryNetwork

from ..cluster.fakes import SECRET, SERVERS, ProcessReactor

INFOS = {
    entry["id"]: ServerInfo.from_entry(server_type, entry)
    for server_type, entries in SERVERS.items()
    for entry in entries
}
CHAT_1, CHAT_2 = INFOS["chat-1"], INFOS["chat-2"]
CONNECTOR_1 = INFOS["connector-1"]
PREFIX = "/game"
TTL = 9.0


class EtcdCluster:
    """Servers registering in one in-memory store."""

    clean_stop_kind = "removed"

    def __init__(self) -> None:
        self.clock = Clock()
        self.store = MemoryKeyValueStore(self.clock)
        self.apps: dict[str, Application] = {}
        self.discoveries: dict[str, EtcdDiscovery] = {}
        self.clocks: dict[str, Clock] = {}
        self.commands: list[tuple[str, str]] = []

    def join(
        self,
        info: ServerInfo,
        pid: int = 500,
        servers: dict[str, list[ServerInfo]] | None = None,
    ) -> tuple[Application, IServiceDiscovery]:
        """Start ``info``'s Application (knowing ``servers``, as from servers.json) with
        its etcd discovery."""
        clock = Clock()
        clock.advance(self.clock.seconds())
        app = Application(
            info,
            reactor=clock,  # type: ignore[arg-type]
            rpc=LocalRpcTransport(clock),  # type: ignore[arg-type]
            servers=servers or {info.type: [info]},
        )
        discovery = EtcdDiscovery(
            app,
            self.store,
            PREFIX,
            ttl=TTL,
            pid=pid,
            on_command=lambda command: self.commands.append((info.id, command)),
        )
        app.load(DiscoveryComponent(app, discovery))
        app.startService()
        self.apps[info.id], self.discoveries[info.id], self.clocks[info.id] = app, discovery, clock
        return app, discovery

    def kill(self, server_id: str) -> None:
        """The server stops renewing its lease (kill -9): its clock is no longer advanced."""
        self.clocks.pop(server_id)

    def stop(self, server_id: str) -> None:
        """A clean stop of the server."""
        self.apps[server_id].stopService()

    def advance(self, seconds: float, step: float = 0.5) -> None:
        """Run every live clock and the store's for ``seconds``."""
        while seconds > 0:
            amount = min(step, seconds)
            seconds -= amount
            self.clock.advance(amount)
            for clock in list(self.clocks.values()):
                clock.advance(amount)

    def settle(self) -> None:
        """Let pending work run (removals wait their grace: 0.5 s)."""
        self.advance(0.6)


class MasterCluster:
    """Servers whose monitors log in to a master over a MemoryNetwork."""

    clean_stop_kind = "down"

    def __init__(self, config: GameConfig) -> None:
        self.reactor = ProcessReactor()
        self.network = MemoryNetwork()
        self.master = MasterService(
            self.reactor, config, SECRET, supervisor=Supervisor(self.reactor), spawn=False
        )
        factory = pb.PBServerFactory(make_portal(SECRET, self.master.portal_avatar))
        self.network.listen("master", factory)
        self.apps: dict[str, Application] = {}
        self.monitors: dict[str, MonitorComponent] = {}

    def join(self, info: ServerInfo, pid: int = 500) -> tuple[Application, IServiceDiscovery]:
        """Start ``info``'s Application with its monitor."""
        app = Application(
            info,
            reactor=self.reactor,
            rpc=LocalRpcTransport(self.reactor),
            servers={info.type: [info]},
        )
        monitor = MonitorComponent(
            app,
            "tcp:host=127.0.0.1:port=3005",
            SECRET,
            stop_process=lambda: None,
            rng=random.Random(1),
            pid=pid,
        )
        monitor.connection = PersistentLogin(
            self.network.endpoint("master"),
            info.id,
            SECRET,
            clock=self.reactor,
            jitter=lambda: 0.0,
            mind=MonitorClient(monitor),
            on_up=monitor._register,
        )
        app.load(monitor)
        app.startService()
        self.network.flush()
        self.apps[info.id], self.monitors[info.id] = app, monitor
        return app, monitor.discovery

    def stop(self, server_id: str) -> None:
        """A clean stop of the server."""
        self.apps[server_id].stopService()
        self.settle()

    def settle(self) -> None:
        """Deliver what is in flight."""
        self.reactor.advance(0)
        self.network.flush()


def ids(app: Any) -> list[str]:
    """The ids of every server ``app`` knows, sorted."""
    return sorted(info.id for info in app.all_servers())
