"""GlobalChannelService and OnlineStatus against a real redis-server, outage included."""

from __future__ import annotations

from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from pomelo_twisted.globalchannels import (
    GlobalChannelService,
    OnlineStatus,
    RedisComponent,
    RedisUnavailable,
)
from pomelo_twisted.globalchannels.wiring import redis_components
from pomelo_twisted.interfaces import IServerReactor
from pomelo_twisted.session.service import SessionService
from pomelo_twisted.testing.redisserver import RedisServer
from tests.sessions.fakes import FakeAgent, FakeRpc

from .test_redis_client import RealRedisCase


class RealServiceTests(RealRedisCase):
    """The service on a RedisClient connected to a redis-server."""

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.rpc = FakeRpc()
        self.service = GlobalChannelService(self.redis, self.rpc, "real")

    async def test_push_grouped_by_frontend(self) -> None:
        """Members on two frontends: one push RPC each, with their uids."""
        for uid, frontend in (("a", "c1"), ("b", "c2"), ("c", "c1")):
            await self.service.add("room", uid, frontend)
        self.assertEqual(await self.service.push("room", "onChat", "hi"), 2)
        self.assertEqual(
            sorted((call[0], sorted(call[3][2])) for call in self.rpc.calls),
            [("c1", ["a", "c"]), ("c2", ["b"])],
        )
        self.assertEqual(self.service.stats.rpcs, 2)

    async def test_remove_frontend_and_leave(self) -> None:
        """remove_frontend, leave and leave_all keep members of other frontends."""
        await self.service.add("r1", "a", "c1")
        await self.service.add("r1", "b", "c2")
        await self.service.add("r2", "a", "c1")
        self.assertEqual(await self.service.remove_frontend("c1"), 2)
        self.assertEqual(await self.service.members_by_frontend("r1"), {"c2": ["b"]})
        self.assertIs(await self.service.leave("r1", "b", "c1"), False)
        self.assertIs(await self.service.leave("r1", "b", "c2"), True)
        self.assertEqual(await self.service.members("r1"), [])
        await self.service.add("r1", "d", "c2")
        await self.service.add("r2", "d", "c2")
        self.assertEqual(await self.service.leave_all("d", "c2"), 2)
        self.assertEqual(await self.service.members("r2"), [])

    async def test_online_status(self) -> None:
        """A frontend's bound users are counted by any reader."""
        sessions = SessionService("c1")
        status = OnlineStatus(self.redis, "real", sessions, "connector", Clock(), 30)
        status.start()
        self.addCleanup(status.stop, False)
        sessions.create(FakeAgent(1))
        await sessions.bind(1, "alice")
        self.assertEqual(await self.service.online_count("connector"), 1)
        sessions.closed(1, "bye")
        self.assertEqual(await self.service.online_by_frontend(), {"c1": 0})

    async def test_outage(self) -> None:
        """Redis killed: pushes fail with RedisUnavailable, counted; restarted: they work."""
        await self.service.add("room", "a", "c1")
        self.server.kill()
        with self.assertRaises(RedisUnavailable):
            while True:  # until the client has seen the connection go
                await self.service.push("room", "r", 1)
        self.assertGreaterEqual(self.service.stats.redis_errors, 1)
        self.server.start()
        await self.redis.when_connected()
        await self.service.add("room", "a", "c1")  # the restarted server is empty
        self.assertEqual(await self.service.push("room", "r", 1), 1)


class CleanLifecycleTests(TestCase):
    """A normal start and stop of the Redis components logs nothing above info."""

    async def test_start_stop_quiet(self) -> None:
        """redis_components of a frontend: start, bind, stop; no warning, keys cleaned."""
        server = RedisServer.start_or_skip()
        self.addCleanup(server.stop)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        sessions = SessionService("c1")
        components = redis_components(
            {"url": server.url, "prefix": "quiet"},
            reactor=cast(IServerReactor, reactor),
            rpc=FakeRpc(),
            server_type="connector",
            sessions=sessions,
        )
        for component in components:  # as the application does: each waited for
            await maybeDeferred(component.start)
        self.assertTrue(cast(RedisComponent, components[0]).client.connected)
        sessions.create(FakeAgent(1))
        await sessions.bind(1, "alice")
        channels = cast(GlobalChannelService, components[1])
        await cast(OnlineStatus, components[2]).refresh()
        self.assertEqual(await channels.online_count(), 1)
        for component in reversed(components):
            await maybeDeferred(component.stop, False)
        self.assertEqual(server.command("DBSIZE"), b":0\r\n")
        loud = [formatEvent(e) for e in events if e.get("log_level", LogLevel.info) > LogLevel.info]
        self.assertEqual(loud, [])
