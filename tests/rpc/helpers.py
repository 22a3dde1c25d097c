"""Remotes and a small in-process cluster shared by the rpc tests."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import LocalRpcTransport, RemoteDispatcher, Router, RpcProxies


class ChatRemote:
    """A remote exercising every kind of result; records what it receives."""

    def __init__(self, name: str = "chat") -> None:
        self.name = name
        self.received: list[tuple[str, tuple[Any, ...]]] = []
        self.pending: list[Deferred[Any]] = []
        self.kept: list[Any] = []

    def record(self, *args: Any) -> str:
        self.received.append(("record", args))
        return self.name

    def echo(self, *args: Any) -> list[Any]:
        return list(args)

    def keep(self, value: Any) -> Any:
        """Keep the argument and return it, to show that neither side shares it."""
        self.kept.append(value)
        return value

    def boom(self, message: str) -> None:
        raise ValueError(message)

    def refuse(self, code: int, msg: str) -> None:
        raise HandlerError(code, msg)

    def later(self) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.pending.append(d)
        return d

    async def doubled(self) -> Any:
        value = await self.later()
        return value * 2

    def unsendable(self) -> object:
        return object()

    def sized(self, size: int) -> str:
        """A result of ``size`` characters (from a small argument)."""
        return "x" * size

    def _secret(self) -> str:
        return "never"

    def init(self) -> None:
        """A lifecycle hook: never a remote method."""


class Cluster:
    """Servers chat-1, chat-2 and connector-1 on one LocalRpcTransport and a Clock."""

    def __init__(self, default_timeout: float = 10.0) -> None:
        self.clock = Clock()
        self.transport = LocalRpcTransport(self.clock)
        self.servers: dict[str, list[ServerInfo]] = {
            "chat": [ServerInfo("chat-2", "chat"), ServerInfo("chat-1", "chat")],
            "connector": [ServerInfo("connector-1", "connector", frontend=True, client_port=1)],
        }
        self.remotes: dict[str, ChatRemote] = {}
        for servers in self.servers.values():
            for server in servers:
                remote = ChatRemote(server.id)
                dispatcher = RemoteDispatcher()
                dispatcher.add("chatRemote", remote)
                self.transport.register(server.id, dispatcher)
                self.remotes[server.id] = remote
        self.router = Router()
        self.rpc = RpcProxies(self.transport, self.router, self.servers_of, default_timeout)

    def servers_of(self, server_type: str) -> list[ServerInfo]:
        return self.servers.get(server_type, [])
