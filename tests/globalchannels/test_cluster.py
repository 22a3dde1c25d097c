"""The example game in memory (two connectors, two chat servers) with global channels.

Members on both connectors, pushed from either chat server: each member gets exactly
one push per push, and each push makes one RPC per frontend (counted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.globalchannels import (
    FakeRedis,
    GlobalChannelService,
    OnlineStatus,
    RedisClient,
    RedisSettings,
)
from pomelo_twisted.interfaces import IServerReactor
from pomelo_twisted.testing import GameConnection, GameHarness
from pomelo_twisted.testing.redisserver import RedisServer

EXAMPLE_GAME = Path(__file__).resolve().parents[2] / "example_game"
C1, C2 = "connector-server-1", "connector-server-2"
PREFIX = "game"


class GlobalChannelClusterTests(SynchronousTestCase):
    """Four players, two per connector, in one global channel."""

    def setUp(self) -> None:
        self.game = GameHarness(EXAMPLE_GAME)
        self.addCleanup(self.game.stop)
        self.redis = FakeRedis(self.game.clock)
        for frontend in (C1, C2):
            app = self.game.app(frontend)
            assert app.session_service is not None
            status = OnlineStatus(
                self.redis, PREFIX, app.session_service, "connector", self.game.clock
            )
            status.start()
            self.addCleanup(status.stop, False)
        self.chats = {
            chat: GlobalChannelService(self.redis, self.game.app(chat).rpc_call, PREFIX)
            for chat in ("chat-server-1", "chat-server-2")
        }
        self.players: dict[str, GameConnection] = {}
        self.received: dict[str, list[Any]] = {}
        for uid, frontend in (("alice", C1), ("bob", C1), ("carol", C2), ("dave", C2)):
            player = self.game.connect(frontend)
            self.assertEqual(player.call("connector.entryHandler.entry", {"uid": uid})["code"], 200)
            self.players[uid] = player
            self.received[uid] = player.collect("onWorld")
            d = self.chats["chat-server-1"].add("world", uid, frontend)
            self.assertIs(self.successResultOf(d), True)

    def push(self, chat: str, msg: object) -> int:
        d = self.chats[chat].push("world", "onWorld", msg)
        self.game.settle()
        return self.successResultOf(d)

    def test_one_push_per_member_one_rpc_per_frontend(self) -> None:
        """From either chat server: every member gets each push once; 2 RPCs per push."""
        self.assertEqual(self.push("chat-server-1", {"n": 1}), 2)
        self.assertEqual(self.push("chat-server-2", {"n": 2}), 2)
        for uid, received in self.received.items():
            self.assertEqual(received, [{"n": 1}, {"n": 2}], uid)
        for chat in self.chats.values():
            self.assertEqual((chat.stats.pushes, chat.stats.rpcs, chat.stats.rpc_errors), (1, 2, 0))
            self.assertEqual(chat.stats.pushed_uids, 4)

    def test_online_counts(self) -> None:
        """Any server reads the players online per connector; a disconnect is seen."""
        chat = self.chats["chat-server-2"]
        self.assertEqual(self.successResultOf(chat.online_by_frontend()), {C1: 2, C2: 2})
        self.players["bob"].disconnect()
        self.game.settle()
        self.assertEqual(self.successResultOf(chat.online_count("connector")), 3)

    def test_frontend_leaving(self) -> None:
        """After remove_frontend(connector-1) pushes reach connector-2's members only."""
        chat = self.chats["chat-server-2"]
        self.assertEqual(self.successResultOf(chat.remove_frontend(C1)), 2)
        self.assertEqual(self.push("chat-server-2", "hi"), 1)
        self.assertEqual(
            {uid: len(received) for uid, received in self.received.items()},
            {"alice": 0, "bob": 0, "carol": 1, "dave": 1},
        )
        self.assertEqual(self.successResultOf(chat.online_by_frontend()), {C2: 2})


class RealRedisClusterTests(TestCase):
    """The same game with a real redis-server behind the global channels."""

    async def test_push_from_either_chat_server(self) -> None:
        """Through redis-server, from either chat server: one push each, one RPC per frontend."""
        server = RedisServer.start_or_skip()
        self.addCleanup(server.stop)
        game = GameHarness(EXAMPLE_GAME)
        self.addCleanup(game.stop)
        clients = []
        for chat in ("chat-server-1", "chat-server-2"):
            client = RedisClient(cast(IServerReactor, reactor), RedisSettings(server.url))
            client.start()
            self.addCleanup(client.stop)
            await client.when_connected()
            clients.append(GlobalChannelService(client, game.app(chat).rpc_call, PREFIX))
        received = {}
        for uid, frontend in (("alice", C1), ("bob", C1), ("carol", C2), ("dave", C2)):
            player = game.connect(frontend)
            self.assertEqual(player.call("connector.entryHandler.entry", {"uid": uid})["code"], 200)
            received[uid] = player.collect("onWorld")
            await clients[0].add("world", uid, frontend)
        for n, service in enumerate(clients):
            pushed = service.push("world", "onWorld", {"n": n})
            while not pushed.called:  # Redis answers on this reactor, the game runs on its clock
                await deferLater(reactor, 0, game.settle)
            self.assertEqual(await pushed, 2)
            self.assertEqual((service.stats.pushes, service.stats.rpcs), (1, 2))
        for uid, messages in received.items():
            self.assertEqual(messages, [{"n": 0}, {"n": 1}], uid)
