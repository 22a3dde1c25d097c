"""RedisClient's connection loop on a Clock and a scripted endpoint: no sockets, no sleeps."""

from __future__ import annotations

import random
from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.globalchannels import (
    RedisClient,
    RedisComponent,
    RedisSettings,
    RedisUnavailable,
)
from pomelo_twisted.globalchannels.client import RECONNECT_MAX_DELAY, RedisProtocol
from pomelo_twisted.interfaces import IServerReactor


class ScriptedEndpoint:
    """An endpoint whose connection attempts the test resolves one by one."""

    def __init__(self) -> None:
        self.attempts: list[tuple[IProtocolFactory, Deferred[Any]]] = []

    def connect(self, factory: IProtocolFactory) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.attempts.append((factory, d))
        return d

    def succeed(self) -> tuple[RedisProtocol, StringTransport]:
        factory, d = self.attempts[-1]
        protocol = factory.buildProtocol(None)  # type: ignore[arg-type]
        assert isinstance(protocol, RedisProtocol)
        transport = StringTransport()
        protocol.makeConnection(transport)
        d.callback(protocol)
        return protocol, transport

    def fail(self) -> None:
        self.attempts[-1][1].errback(ConnectionRefusedError("refused"))


class ScriptedCase(SynchronousTestCase):
    """A RedisClient on a MemoryReactorClock and a ScriptedEndpoint; warnings captured."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.endpoint = ScriptedEndpoint()
        self.delays: list[int] = []
        self.warnings: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_level") == LogLevel.warn and "redis" in formatEvent(event):
                self.warnings.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def client(self, url: str = "redis://127.0.0.1:6379/0") -> RedisClient:
        def delay(attempt: int) -> float:
            self.delays.append(attempt)
            return float(attempt)

        return RedisClient(
            cast(IServerReactor, self.reactor),
            RedisSettings(url),
            retry_delay=delay,
            endpoint=cast(IStreamClientEndpoint, self.endpoint),
        )


class ReconnectTests(ScriptedCase):
    """Backoff, readiness after SELECT, loss, stop; failures logged once per interval."""

    def test_failed_attempts_back_off(self) -> None:
        """Each failed attempt waits retry_delay(n) before the next; one warning for all."""
        client = self.client()
        client.start()
        for attempt in (1, 2, 3):
            self.endpoint.fail()
            self.assertEqual(self.delays[-1], attempt)
            self.reactor.advance(attempt - 0.01)
            self.assertEqual(len(self.endpoint.attempts), attempt)
            self.reactor.advance(0.01)
            self.assertEqual(len(self.endpoint.attempts), attempt + 1)
        self.assertEqual(len(self.warnings), 1)
        self.assertIn("cannot reach redis at 127.0.0.1:6379/0", self.warnings[0])
        self.successResultOf(client.stop())
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_ready_after_select(self) -> None:
        """With a database in the URL, commands wait for SELECT's OK; then it is connected."""
        client = self.client("redis://127.0.0.1:6379/4")
        ready = client.when_connected()
        client.start()
        protocol, transport = self.endpoint.succeed()
        self.assertEqual(transport.value(), b"*2\r\n$6\r\nSELECT\r\n$1\r\n4\r\n")
        self.assertFalse(client.connected)
        self.failureResultOf(client.ping(), RedisUnavailable)
        self.assertNoResult(ready)
        protocol.dataReceived(b"+OK\r\n")
        self.successResultOf(ready)
        self.assertTrue(client.connected)

    def test_refused_select_reconnects(self) -> None:
        """A SELECT refused (no such database) drops the link and retries later."""
        client = self.client("redis://127.0.0.1:6379/99")
        client.start()
        protocol, transport = self.endpoint.succeed()
        protocol.dataReceived(b"-ERR DB index is out of range\r\n")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionError("closed")))
        self.assertIn("DB index is out of range", self.warnings[0])
        self.reactor.advance(1)
        self.assertEqual(len(self.endpoint.attempts), 2)

    def test_lost_connection_reconnects(self) -> None:
        """A lost connection is warned about once and made again after a delay."""
        client = self.client()
        client.start()
        protocol, _ = self.endpoint.succeed()
        self.assertTrue(client.connected)
        protocol.connectionLost(Failure(ConnectionError("reset")))
        self.assertFalse(client.connected)
        self.assertEqual(len(self.warnings), 1)
        self.assertIn("lost redis at 127.0.0.1:6379/0", self.warnings[0])
        self.reactor.advance(1)
        self.endpoint.succeed()
        self.assertTrue(client.connected)

    def test_stop_closes_and_stops_retrying(self) -> None:
        """stop closes the link, fires when it is gone, and makes no new attempt."""
        client = self.client()
        client.start()
        protocol, transport = self.endpoint.succeed()
        stopped = client.stop()
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(stopped)
        protocol.connectionLost(Failure(ConnectionError("closed")))
        self.successResultOf(stopped)
        self.reactor.advance(100)
        self.assertEqual(len(self.endpoint.attempts), 1)
        self.assertEqual(self.warnings, [])

    def test_stop_while_connecting(self) -> None:
        """stop cancels an attempt in flight and fails the waiters."""
        client = self.client()
        waiter = client.when_connected()
        client.start()
        self.successResultOf(client.stop())
        self.failureResultOf(waiter, RedisUnavailable)

    def test_default_backoff(self) -> None:
        """The default delay doubles from 0.1 s up to the maximum, plus bounded jitter."""
        client = RedisClient(
            cast(IServerReactor, self.reactor),
            RedisSettings("redis://127.0.0.1:6379/0"),
            rng=random.Random(7),
        )
        delays = [client._backoff(n) for n in range(1, 12)]
        self.assertTrue(0.1 <= delays[0] < 0.35)
        self.assertTrue(
            all(RECONNECT_MAX_DELAY <= d < RECONNECT_MAX_DELAY + 0.25 for d in delays[-3:])
        )


class StartTests(ScriptedCase):
    """RedisComponent.start waits for the first connection, at most connect_timeout."""

    def test_start_waits_for_the_connection(self) -> None:
        """start fires once connected, without a warning."""
        component = RedisComponent(self.client())
        started = component.start()
        self.assertNoResult(started)
        self.endpoint.succeed()
        self.successResultOf(started)
        self.assertEqual(self.warnings, [])

    def test_start_without_redis(self) -> None:
        """Redis unreachable: start fires after connect_timeout with one warning."""
        client = self.client()
        component = RedisComponent(client)
        started = component.start()
        self.reactor.advance(client.settings.connect_timeout - 0.01)
        self.assertNoResult(started)
        self.reactor.advance(0.01)
        self.successResultOf(started)
        self.assertEqual(len(self.warnings), 1)
        self.assertIn("starting without it", self.warnings[0])
        self.successResultOf(component.stop(False))

    def test_connected_within(self) -> None:
        """connected_within fires True on connection, False on timeout or stop."""
        client = self.client()
        client.start()
        late = client.connected_within(2)
        self.reactor.advance(2)
        self.assertIs(self.successResultOf(late), False)
        stopped = client.connected_within(2)
        self.successResultOf(client.stop())
        self.assertIs(self.successResultOf(stopped), False)
        client.start()
        self.reactor.advance(10)
        self.endpoint.succeed()
        self.assertIs(self.successResultOf(client.connected_within(2)), True)
