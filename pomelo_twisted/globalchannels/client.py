"""A Redis client on Twisted: one pipelined connection that reconnects by itself.

:class:`RedisProtocol` writes each command at once and matches replies to commands in
order (RESP2 through the sans-I/O :mod:`~pomelo_twisted.globalchannels.resp`); many
commands are in flight at once on one connection. :class:`RedisClient` keeps that
connection (exponential backoff, on the reactor it is given) and provides
:class:`~pomelo_twisted.globalchannels.interfaces.IRedis`. While it is not
connected a command fails at once with ``RedisUnavailable`` naming the server: callers
(pushes) fail fast instead of queueing behind an outage. A command without a reply
within ``command_timeout`` fails too and drops the connection (a hung server), which is
then made again.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import IServerReactor
from ..rpc.logagg import RepeatedWarning
from .interfaces import IRedis, RedisCommandError, RedisUnavailable
from .resp import Reply, RespError, RespParser, RespProtocolError, encode_command
from .settings import RedisSettings

__all__ = ["HDEL_IF_SCRIPT", "RedisClient", "RedisProtocol"]

log = Logger()

HDEL_IF_SCRIPT = (
    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
    "return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end"
)
"""``hdel_if`` as one atomic server-side step."""

RECONNECT_MIN_DELAY = 0.1
"""The wait before the first new attempt after a failure (seconds); it doubles each time."""

RECONNECT_MAX_DELAY = 5.0
"""The longest wait between two connection attempts by default (seconds)."""

RECONNECT_JITTER = 0.25
"""Up to this many seconds are added at random to each wait (servers reconnecting to a
restarted Redis do not all come at once)."""


class RedisProtocol(Protocol):
    """One Redis connection: :meth:`execute` a command, get a Deferred of its reply."""

    def __init__(self, clock: IReactorTime, timeout: float, name: str) -> None:
        self._clock = clock
        self._timeout = timeout
        self._name = name
        self._parser = RespParser()
        self._pending: deque[Deferred[Reply]] = deque()
        self._lost: Failure | None = None
        #: Called once with the reason when the connection is gone.
        self.on_lost: Callable[[Failure], object] | None = None

    def execute(self, *args: str | int | float) -> Deferred[Reply]:
        """Send one command; fires with its reply (an error reply fails it)."""
        if self._lost is not None or self.transport is None:
            return fail(RedisUnavailable(f"redis at {self._name}: connection lost"))
        d: Deferred[Reply] = Deferred()
        self._pending.append(d)
        self.transport.write(encode_command(*args))
        d.addTimeout(self._timeout, self._clock, onTimeoutCancel=self._timed_out)
        return d

    def _timed_out(self, result: object, timeout: float) -> Reply:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]
        raise RedisUnavailable(f"redis at {self._name}: no reply within {timeout:g}s")

    def dataReceived(self, data: bytes) -> None:
        try:
            replies = self._parser.feed(data)
        except RespProtocolError as e:
            log.warn("redis at {server} sent bad data: {error}", server=self._name, error=e)
            replies = []
            assert self.transport is not None
            self.transport.abortConnection()  # type: ignore[attr-defined]
        for reply in replies:
            if not self._pending:
                log.warn("redis at {server}: a reply to no command", server=self._name)
                continue
            d = self._pending.popleft()
            if d.called:  # timed out
                continue
            if isinstance(reply, RespError):
                d.errback(RedisCommandError(f"redis at {self._name}: {reply.message}"))
            else:
                d.callback(reply)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._lost = reason
        if self.on_lost is not None:  # first: whoever sees a failure below sees it lost
            self.on_lost(reason)
        pending, self._pending = self._pending, deque()
        for d in pending:
            if not d.called:
                d.errback(
                    RedisUnavailable(
                        f"redis at {self._name}: connection lost ({reason.getErrorMessage()})"
                    )
                )


def _text(value: Reply) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise RedisCommandError(f"expected UTF-8 text, got {value[:40]!r}") from None
    if isinstance(value, str):
        return value
    raise RedisCommandError(f"expected a string reply, got {value!r}")


def _integer(value: Reply) -> int:
    if isinstance(value, int):
        return value
    raise RedisCommandError(f"expected an integer reply, got {value!r}")


def _strings(value: Reply) -> list[str]:
    if not isinstance(value, list):
        raise RedisCommandError(f"expected an array reply, got {value!r}")
    return [_text(item) for item in value]


def _pairs(value: Reply) -> dict[str, str]:
    items = _strings(value)
    return dict(zip(items[::2], items[1::2], strict=True))


@implementer(IRedis)
class RedisClient:
    """:class:`IRedis` over one reconnecting connection to the server of ``settings``.

    :meth:`start` begins connecting (and returns at once: the server may come later),
    :meth:`stop` closes the connection; :meth:`when_connected` fires once connected.
    Attempts that fail are retried after ``retry_delay(attempt)`` seconds (by default
    exponential from 0.1 s to ``RECONNECT_MAX_DELAY``, plus jitter from ``rng``); the
    failures are logged once per interval with a count, no traceback.
    """

    def __init__(
        self,
        reactor: IServerReactor,
        settings: RedisSettings,
        rng: random.Random | None = None,
        retry_delay: Callable[[int], float] | None = None,
        endpoint: IStreamClientEndpoint | None = None,
    ) -> None:
        host, port, db = settings.address
        self.settings = settings
        self.name = f"{host}:{port}/{db}"
        self._reactor = reactor
        self._db = db
        self._endpoint = endpoint or HostnameEndpoint(
            reactor, host, port, timeout=settings.connect_timeout
        )
        self._factory = Factory.forProtocol(self._make_protocol)
        self._factory.noisy = False
        self._rng = rng or random.Random()
        self._retry_delay = retry_delay or self._backoff
        self._protocol: RedisProtocol | None = None  # ready for commands
        self._link: RedisProtocol | None = None  # connected, maybe still selecting
        self._attempt: Deferred[Any] | None = None
        self._retry: IDelayedCall | None = None
        self._failures = 0
        self._running = False
        self._waiters: list[Deferred[None]] = []
        self._stopped: list[Deferred[None]] = []
        self._warnings = RepeatedWarning(log, seconds=reactor.seconds)

    def __repr__(self) -> str:
        state = "connected" if self._protocol is not None else "not connected"
        return f"<RedisClient {self.name}: {state}>"

    @property
    def connected(self) -> bool:
        """Whether commands can be sent now."""
        return self._protocol is not None

    def _backoff(self, attempt: int) -> float:
        delay = min(RECONNECT_MIN_DELAY * 2 ** (attempt - 1), RECONNECT_MAX_DELAY)
        return float(delay + self._rng.random() * RECONNECT_JITTER)

    def _make_protocol(self) -> RedisProtocol:
        return RedisProtocol(self._reactor, self.settings.command_timeout, self.name)

    # -- the connection loop ------------------------------------------------------

    def start(self) -> None:
        """Connect, and reconnect whenever the connection is lost, until :meth:`stop`."""
        if self._running:
            return
        self._running = True
        self._connect()

    def _connect(self) -> None:
        self._retry = None
        attempt = self._attempt = self._endpoint.connect(self._factory)
        attempt.addCallbacks(self._connected, self._failed)

    def _connected(self, protocol: RedisProtocol) -> None:
        self._attempt = None
        self._link = protocol
        protocol.on_lost = self._lost
        selected = protocol.execute("SELECT", self._db) if self._db else succeed("OK")

        def refused(failure: Failure) -> None:
            self._warnings.warn(
                "redis at {server} refused the connection: {error}",
                server=self.name,
                error=failure.getErrorMessage(),
            )
            if protocol.transport is not None:
                protocol.transport.loseConnection()

        selected.addCallbacks(lambda _: self._ready(protocol), refused)

    def _ready(self, protocol: RedisProtocol) -> None:
        if not self._running or self._link is not protocol:
            return
        self._protocol = protocol
        if self._failures:
            log.info(
                "connected to redis at {server} after {failures} failed attempts",
                server=self.name,
                failures=self._failures,
            )
        else:
            log.info("connected to redis at {server}", server=self.name)
        self._failures = 0
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def _failed(self, failure: Failure) -> None:
        self._attempt = None
        if not self._running:
            return
        self._failures += 1
        self._warnings.warn(
            "cannot reach redis at {server}: {error}",
            server=self.name,
            error=failure.getErrorMessage(),
        )
        self._schedule()

    def _lost(self, reason: Failure) -> None:
        was_ready = self._protocol is not None
        self._protocol = self._link = None
        if not self._running:
            stopped, self._stopped = self._stopped, []
            for d in stopped:
                d.callback(None)
            return
        if was_ready:
            log.warn(
                "lost redis at {server} ({reason}): reconnecting",
                server=self.name,
                reason=reason.getErrorMessage(),
            )
        else:
            self._failures += 1
        self._schedule()

    def _schedule(self) -> None:
        self._retry = self._reactor.callLater(
            self._retry_delay(max(self._failures, 1)), self._connect
        )

    def stop(self) -> Deferred[None]:
        """Close the connection and stop reconnecting; pending commands fail."""
        self._running = False
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.errback(RedisUnavailable(f"redis client of {self.name} stopped"))
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._attempt is not None:
            attempt, self._attempt = self._attempt, None
            attempt.addErrback(lambda f: f.trap(CancelledError))
            attempt.cancel()
        link = self._link
        if link is None or link.transport is None:
            return succeed(None)
        closed: Deferred[None] = Deferred()
        self._stopped.append(closed)
        link.transport.loseConnection()
        return closed

    def when_connected(self) -> Deferred[None]:
        """Fires once connected (at once if connected now); fails if stopped first."""
        if self._protocol is not None:
            return succeed(None)
        d: Deferred[None] = Deferred(self._waiters.remove)
        self._waiters.append(d)
        return d

    def connected_within(self, seconds: float) -> Deferred[bool]:
        """Fires with True once connected, or with False after ``seconds`` (or a stop)."""

        def not_yet(failure: Failure) -> bool:
            failure.trap(DeferredTimeoutError, RedisUnavailable)
            return False

        waiting = self.when_connected().addTimeout(seconds, self._reactor)
        return waiting.addCallbacks(lambda _: True, not_yet)

    def execute(self, *args: str | int | float) -> Deferred[Reply]:
        """Any command; fires with its raw reply."""
        protocol = self._protocol
        if protocol is None:
            return fail(RedisUnavailable(f"redis at {self.name} is not connected"))
        return protocol.execute(*args)

    # -- IRedis ---------------------------------------------------------------

    def ping(self) -> Deferred[bool]:
        return self.execute("PING").addCallback(lambda reply: reply == "PONG")

    def sadd(self, key: str, members: Sequence[str]) -> Deferred[int]:
        return self.execute("SADD", key, *_nonempty(members, "SADD")).addCallback(_integer)

    def srem(self, key: str, members: Sequence[str]) -> Deferred[int]:
        return self.execute("SREM", key, *_nonempty(members, "SREM")).addCallback(_integer)

    def smembers(self, key: str) -> Deferred[set[str]]:
        return self.execute("SMEMBERS", key).addCallback(lambda reply: set(_strings(reply)))

    def scard(self, key: str) -> Deferred[int]:
        return self.execute("SCARD", key).addCallback(_integer)

    def hset(self, key: str, mapping: Mapping[str, str]) -> Deferred[int]:
        args = [item for pair in mapping.items() for item in pair]
        return self.execute("HSET", key, *_nonempty(args, "HSET")).addCallback(_integer)

    def hgetall(self, key: str) -> Deferred[dict[str, str]]:
        return self.execute("HGETALL", key).addCallback(_pairs)

    def hdel(self, key: str, fields: Sequence[str]) -> Deferred[int]:
        return self.execute("HDEL", key, *_nonempty(fields, "HDEL")).addCallback(_integer)

    def hdel_if(self, key: str, field: str, value: str) -> Deferred[int]:
        return self.execute("EVAL", HDEL_IF_SCRIPT, 1, key, field, value).addCallback(_integer)

    def delete(self, keys: Sequence[str]) -> Deferred[int]:
        return self.execute("DEL", *_nonempty(keys, "DEL")).addCallback(_integer)

    def expire(self, key: str, seconds: int) -> Deferred[bool]:
        return self.execute("EXPIRE", key, seconds).addCallback(lambda n: _integer(n) == 1)


def _nonempty(items: Sequence[str], command: str) -> Sequence[str]:
    if isinstance(items, str) or not items:
        raise ValueError(f"{command} needs a non-empty sequence of strings, not {items!r}")
    return items
