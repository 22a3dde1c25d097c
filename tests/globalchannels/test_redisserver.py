"""testing.RedisServer: a real redis-server on a free port, stopped, killed, restarted."""

from __future__ import annotations

from unittest import SkipTest, mock

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.testing import redisserver
from pomelo_twisted.testing.redisserver import REDIS_MISSING, RedisServer, RedisServerError


class RedisServerTests(SynchronousTestCase):
    """The helper's life cycle."""

    def setUp(self) -> None:
        self.server = RedisServer.start_or_skip()
        self.addCleanup(self.server.stop)

    def test_started_answers(self) -> None:
        """Once start returns the server answers PING, and keeps nothing on disk."""
        self.assertTrue(self.server.running)
        self.assertEqual(self.server.command("PING"), b"+PONG\r\n")
        self.assertEqual(self.server.command("CONFIG", "GET", "appendonly")[:4], b"*2\r\n")
        self.assertTrue(self.server.url.startswith("redis://127.0.0.1:"))

    def test_restart_loses_the_data(self) -> None:
        """kill then start: the same port, an empty server."""
        port = self.server.port
        self.server.command("SET", "k", "v")
        self.server.restart()
        self.assertEqual(self.server.port, port)
        self.assertEqual(self.server.command("DBSIZE"), b":0\r\n")

    def test_stop_and_kill(self) -> None:
        """stop ends the process and removes its temp dir; again, it does nothing."""
        self.assertTrue(self.server.directory.is_dir())
        self.server.stop()
        self.assertFalse(self.server.running)
        self.assertFalse(self.server.directory.exists())
        self.server.stop()
        self.server.kill()
        self.assertRaises(OSError, self.server.command, "PING")

    def test_double_start_refused(self) -> None:
        """Starting a running server is an error naming it."""
        self.assertRaises(RedisServerError, self.server.start)


class MissingBinaryTests(SynchronousTestCase):
    """Without redis-server, tests skip with a reason that says how to get it."""

    def test_skip_reason(self) -> None:
        """start_or_skip raises SkipTest naming `make test`."""
        with (
            mock.patch.object(redisserver, "redis_server_binary", return_value=None),
            self.assertRaises(SkipTest) as caught,
        ):
            RedisServer.start_or_skip()
        self.assertEqual(str(caught.exception), REDIS_MISSING)
        self.assertIn("make test installs redis-server", REDIS_MISSING)
