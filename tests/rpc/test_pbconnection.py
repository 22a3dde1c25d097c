"""The one PB client login stack: OneShotLogin (admin) and PersistentLogin's login timeout."""

from __future__ import annotations

from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.spread import pb
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pomelo_twisted.rpc.pbauth import make_portal
from pomelo_twisted.rpc.pbconnection import LoginBroker, OneShotLogin, PersistentLogin
from pomelo_twisted.testing.network import MemoryNetwork

SECRET = b"the-cluster-secret"
ADDRESS = "tcp:host=127.0.0.1:port=4005"


class _Perspective(pb.Avatar):
    def perspective_hello(self) -> str:
        return "hello"


class _SilentRoot(pb.Root):
    """A PB root that never answers a login."""

    def remote_login(self, username: bytes) -> Deferred[Any]:
        return Deferred()


@implementer(IStreamClientEndpoint)
class _NeverConnects:
    """An endpoint whose connection attempts never end (until cancelled)."""

    def connect(self, protocolFactory: Any) -> Deferred[Any]:
        return Deferred()


class LoginCase(SynchronousTestCase):
    """A MemoryNetwork, a Clock, and a PB port guarded by the cluster secret."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.network = MemoryNetwork()
        portal = make_portal(SECRET, lambda name, mind: _Perspective())
        self.network.listen(ADDRESS, pb.PBServerFactory(portal))

    def settle(self) -> None:
        for _ in range(20):
            self.network.flush()
            self.clock.advance(0)


class OneShotLoginTests(LoginCase):
    """Connect and log in once, within a timeout; on failure leave no connection."""

    def test_login_gives_the_avatar_and_the_broker(self) -> None:
        """With the secret, login() gives the remote avatar; broker is the connection."""
        attempt = OneShotLogin(self.network.endpoint(ADDRESS), "admin", SECRET, clock=self.clock)
        d = attempt.login(5.0)
        self.settle()
        avatar = self.successResultOf(d)
        self.assertIsInstance(attempt.broker, LoginBroker)
        hello = avatar.callRemote("hello")
        self.settle()
        self.assertEqual(self.successResultOf(hello), "hello")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_wrong_secret_is_refused_and_the_connection_dropped(self) -> None:
        """A wrong secret fails with UnauthorizedLogin; the connection is closed first."""
        attempt = OneShotLogin(self.network.endpoint(ADDRESS), "admin", b"guess", clock=self.clock)
        d = attempt.login(5.0)
        self.settle()
        self.failureResultOf(d, UnauthorizedLogin)
        self.assertEqual(self.network.connections(ADDRESS), 0)
        self.assertTrue(attempt.broker is not None and attempt.broker.lost)
        self.flushLoggedErrors(UnauthorizedLogin)

    def test_nothing_answering_times_out(self) -> None:
        """A connection attempt that never ends fails with TimeoutError at the timeout."""
        attempt = OneShotLogin(_NeverConnects(), "admin", SECRET, clock=self.clock)
        d = attempt.login(3.0)
        self.clock.advance(2.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.failureResultOf(d, TimeoutError)
        self.assertIsNone(attempt.broker)

    def test_a_silent_login_times_out_and_is_dropped(self) -> None:
        """Connected but never answered: TimeoutError, and the connection is dropped."""
        self.network.listen("silent", pb.PBServerFactory(_SilentRoot()))
        attempt = OneShotLogin(self.network.endpoint("silent"), "admin", SECRET, clock=self.clock)
        d = attempt.login(3.0)
        self.settle()
        self.assertNoResult(d)
        self.clock.advance(3.0)
        self.settle()
        self.failureResultOf(d, TimeoutError)
        self.assertEqual(self.network.connections("silent"), 0)


class PersistentLoginTimeoutTests(LoginCase):
    """PersistentLogin's login deadline is Deferred.addTimeout on its clock."""

    def test_a_login_not_answered_in_time_is_down(self) -> None:
        """No answer to the login within login_timeout: down, said so, connection closed."""
        self.network.listen("silent", pb.PBServerFactory(_SilentRoot()))
        login = PersistentLogin(
            self.network.endpoint("silent"),
            "connector-1",
            SECRET,
            clock=self.clock,
            jitter=lambda: 0,
            login_timeout=2.0,
            max_delay=60.0,
        )
        login.start()
        self.settle()
        self.assertEqual(login.state, "connecting")
        self.clock.advance(2.0)
        self.settle()
        self.assertEqual(login.state, "down")
        self.assertEqual(login.last_error, "login timed out after 2 seconds")
        self.assertEqual(self.network.connections("silent"), 0)
        login.stop()
        self.settle()


class QuietCloseTests(LoginCase):
    """A peer that restarts (closes during the login, or once logged in) is news at info."""

    def persistent(self, address: str) -> PersistentLogin:
        connection = PersistentLogin(
            self.network.endpoint(address),
            "connector-1",
            SECRET,
            clock=self.clock,
            jitter=lambda: 0.0,
            description="server chat-1",
        )
        connection.start()
        self.addCleanup(connection.stop)
        return connection

    def test_closed_during_login_is_info(self) -> None:
        """A peer that closes while the login is under way is 'closed during login' at
        info, not an error that it refused the login."""
        silent = "tcp:host=127.0.0.1:port=4006"
        self.network.listen(silent, pb.PBServerFactory(_SilentRoot()))
        connection = self.persistent(silent)
        self.settle()
        with capturedLogs() as events:
            self.network.drop(silent)
            self.settle()
        self.assertTrue(connection.last_error.startswith("closed during login"))
        self.assertEqual([e for e in events if e["log_level"] > LogLevel.info], [])
        self.assertTrue(any("during login" in e["log_format"] for e in events))

    def test_login_on_a_broker_gone_stale_is_info(self) -> None:
        """A login whose second step finds the connection gone (PB's stale broker) is a
        close during login, at info, not a refusal at error."""
        connection = self.persistent(ADDRESS)
        self.settle()
        broker = connection.broker
        assert broker is not None
        for reason in (pb.DeadReferenceError("Calling Stale Broker"), pb.PBConnectionLost()):
            with capturedLogs() as events:
                connection._login_failed(Failure(reason), broker)
            self.assertTrue(connection.last_error.startswith("closed during login"))
            self.assertEqual([e["log_level"] for e in events], [LogLevel.info])

    def test_clean_close_of_a_logged_in_peer_is_info(self) -> None:
        """A logged-in peer closing its connection cleanly (stopping, restarting) is
        logged at info; the connection is down and retries."""
        connection = self.persistent(ADDRESS)
        self.settle()
        self.assertEqual(connection.state, "up")
        with capturedLogs() as events:
            self.network.drop(ADDRESS)
            self.settle()
        self.assertEqual(connection.state, "down")
        self.assertEqual([e for e in events if e["log_level"] > LogLevel.info], [])


class _Tracked(pb.Avatar):
    """An avatar that records, at logout, whether its connection was already closed."""

    def __init__(self, brokers: list[pb.Broker], logouts: list[bool]) -> None:
        self.brokers = brokers
        self.logouts = logouts

    def logout(self) -> None:
        self.logouts.append(all(broker.disconnected for broker in self.brokers))


class _RecordingFactory(pb.PBServerFactory):
    """A PB server factory that keeps its brokers."""

    def __init__(self, portal: Any, brokers: list[pb.Broker]) -> None:
        super().__init__(portal)
        self.brokers = brokers

    def buildProtocol(self, addr: Any) -> pb.Broker:
        broker: pb.Broker = super().buildProtocol(addr)
        self.brokers.append(broker)
        return broker


class StopTests(SynchronousTestCase):
    """Stopping a logged-in PersistentLogin."""

    def test_stop_keeps_the_login_until_the_connection_is_closed(self) -> None:
        """stop() logs out on the peer only once the connection is closed, not before by
        dropping the perspective (PB's decref): calls of the same turn are still served."""
        clock, network = Clock(), MemoryNetwork()
        brokers: list[pb.Broker] = []
        logouts: list[bool] = []
        portal = make_portal(SECRET, lambda name, mind: _Tracked(brokers, logouts))
        network.listen(ADDRESS, _RecordingFactory(portal, brokers))
        connection = PersistentLogin(
            network.endpoint(ADDRESS), "connector-1", SECRET, clock=clock, jitter=lambda: 0.0
        )
        connection.start()
        for _ in range(20):
            network.flush()
            clock.advance(0)
        self.assertEqual(connection.state, "up")
        connection.stop()
        for _ in range(20):
            network.flush()
            clock.advance(0)
        self.assertEqual(logouts, [True])
