"""RedisClient: the protocol on a StringTransport, then the contract against redis-server."""

from __future__ import annotations

from typing import cast

from twisted.internet import reactor as global_reactor
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pomelo_twisted.globalchannels import (
    RedisClient,
    RedisCommandError,
    RedisSettings,
    RedisUnavailable,
)
from pomelo_twisted.globalchannels.client import RedisProtocol
from pomelo_twisted.interfaces import IServerReactor
from pomelo_twisted.testing.redisserver import RedisServer

from .redis_contract import RedisContract
from .test_reconnect import ScriptedEndpoint

reactor = cast(IServerReactor, global_reactor)


class ProtocolTests(SynchronousTestCase):
    """One connection: pipelining, error replies, loss, timeouts."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.protocol = RedisProtocol(self.clock, 5.0, "test:6379/0")
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def test_pipelined_replies_in_order(self) -> None:
        """Commands are written at once; replies resolve them in order, in any chunks."""
        first = self.protocol.execute("PING")
        second = self.protocol.execute("SCARD", "k")
        self.assertEqual(
            self.transport.value(), b"*1\r\n$4\r\nPING\r\n*2\r\n$5\r\nSCARD\r\n$1\r\nk\r\n"
        )
        self.protocol.dataReceived(b"+PONG\r\n:")
        self.assertEqual(self.successResultOf(first), "PONG")
        self.assertNoResult(second)
        self.protocol.dataReceived(b"3\r\n")
        self.assertEqual(self.successResultOf(second), 3)

    def test_error_reply_fails_only_its_command(self) -> None:
        """An error reply is a RedisCommandError naming the server; the next still works."""
        bad = self.protocol.execute("NOPE")
        good = self.protocol.execute("PING")
        self.protocol.dataReceived(b"-ERR unknown command\r\n+PONG\r\n")
        error = self.failureResultOf(bad, RedisCommandError)
        self.assertIn("test:6379/0", error.getErrorMessage())
        self.assertEqual(self.successResultOf(good), "PONG")

    def test_connection_lost_fails_pending(self) -> None:
        """Losing the connection fails the commands in flight and any later one."""
        lost: list[Failure] = []
        self.protocol.on_lost = lost.append
        pending = self.protocol.execute("PING")
        self.protocol.connectionLost(Failure(ConnectionError("gone")))
        self.assertIn(
            "connection lost", self.failureResultOf(pending, RedisUnavailable).getErrorMessage()
        )
        self.failureResultOf(self.protocol.execute("PING"), RedisUnavailable)
        self.assertEqual(len(lost), 1)

    def test_timeout_drops_the_connection(self) -> None:
        """A reply later than the timeout fails the command and aborts the connection."""
        pending = self.protocol.execute("PING")
        self.clock.advance(5.0)
        failure = self.failureResultOf(pending, RedisUnavailable)
        self.assertIn("no reply within 5s", failure.getErrorMessage())
        self.assertTrue(self.transport.disconnecting)

    def test_garbage_drops_the_connection(self) -> None:
        """Bytes that are not RESP abort the connection."""
        self.protocol.execute("PING")
        self.protocol.dataReceived(b"?garbage\r\n")
        self.assertTrue(self.transport.disconnecting)
        self.flushLoggedErrors()


class RealRedisCase(TestCase):
    """A redis-server on a free port and a connected client, both stopped after."""

    async def asyncSetUp(self) -> None:
        self.server = RedisServer.start_or_skip()
        self.addCleanup(self.server.stop)
        self.redis = self.client(self.server.url)
        await self.redis.when_connected()

    def client(self, url: str) -> RedisClient:
        client = RedisClient(reactor, RedisSettings(url, command_timeout=10.0))
        client.start()
        self.addCleanup(client.stop)
        return client

    def setUp(self):  # type: ignore[no-untyped-def]
        from twisted.internet.defer import Deferred

        return Deferred.fromCoroutine(self.asyncSetUp())


class RealRedisContractTests(RedisContract, RealRedisCase):
    """The contract against a real redis-server."""


class RealClientTests(RealRedisCase):
    """Reconnecting, failing fast, choosing the database."""

    async def test_outage_fails_fast_and_reconnects(self) -> None:
        """Killed: commands fail at once with RedisUnavailable; restarted: it reconnects."""
        await self.redis.sadd("s", ["a"])
        self.server.kill()
        with self.assertRaises(RedisUnavailable):
            while True:  # until the client has seen the connection go
                await self.redis.ping()
        self.assertFalse(self.redis.connected)
        self.server.start()
        await self.redis.when_connected()
        self.assertIs(await self.redis.ping(), True)
        self.assertEqual(await self.redis.smembers("s"), set())  # restarted empty

    async def test_database_of_the_url(self) -> None:
        """The /DB of the URL selects the database."""
        other = self.client(self.server.url[: -len("/0")] + "/3")
        await other.when_connected()
        await other.sadd("s", ["in-3"])
        self.assertEqual(await self.redis.smembers("s"), set())
        self.assertEqual(await other.smembers("s"), {"in-3"})

    def test_not_connected_fails_at_once(self) -> None:
        """A client that never connected fails commands at once, naming the server."""
        client = RedisClient(reactor, RedisSettings("redis://127.0.0.1:1/0"))
        failure = self.failureResultOf(client.ping(), RedisUnavailable)
        self.assertIn("127.0.0.1:1/0 is not connected", failure.getErrorMessage())


class ReplyShapeTests(SynchronousTestCase):
    """Replies of an unexpected shape are command errors, not crashes."""

    def setUp(self) -> None:
        endpoint = ScriptedEndpoint()
        self.client = RedisClient(
            cast(IServerReactor, MemoryReactorClock()),
            RedisSettings("redis://t/0"),
            endpoint=cast(IStreamClientEndpoint, endpoint),
        )
        self.client.start()
        self.protocol, _ = endpoint.succeed()

    def test_not_utf8(self) -> None:
        """A member that is not UTF-8 fails SMEMBERS with RedisCommandError."""
        d = self.client.smembers("s")
        self.protocol.dataReceived(b"*1\r\n$1\r\n\xff\r\n")
        self.assertIn("UTF-8", self.failureResultOf(d, RedisCommandError).getErrorMessage())

    def test_wrong_kind(self) -> None:
        """An integer where an array is expected fails with RedisCommandError."""
        d = self.client.hgetall("h")
        self.protocol.dataReceived(b":3\r\n")
        self.failureResultOf(d, RedisCommandError)
