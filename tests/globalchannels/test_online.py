"""OnlineStatus: a frontend's bound uids in Redis, refreshed, expiring, rewritten after outages."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.globalchannels import FakeRedis, GlobalChannelService, OnlineStatus
from pomelo_twisted.interfaces import IComponent
from pomelo_twisted.session.service import SessionService
from tests.sessions.fakes import FakeAgent, FakeRpc

KEY = "test:online:c1"


class OnlineStatusTests(SynchronousTestCase):
    """A frontend c1 with its sessions, on a FakeRedis, ttl 30 s."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.redis = FakeRedis(self.clock)
        self.sessions = SessionService("c1")
        self.status = OnlineStatus(self.redis, "test", self.sessions, "connector", self.clock, 30)
        self.reader = GlobalChannelService(self.redis, FakeRpc(), "test")
        self.status.start()
        self.addCleanup(self.status.stop, False)

    def login(self, sid: int, uid: str) -> None:
        self.sessions.create(FakeAgent(sid))
        self.successResultOf(self.sessions.bind(sid, uid))

    def online(self) -> set[str]:
        return self.successResultOf(self.redis.smembers(KEY))

    def test_is_a_component(self) -> None:
        """OnlineStatus is an IComponent."""
        self.assertTrue(verifyObject(IComponent, self.status))

    def test_bind_and_close(self) -> None:
        """Binding adds the uid, closing its last session removes it."""
        self.login(1, "alice")
        self.login(2, "alice")  # a second device
        self.login(3, "bob")
        self.assertEqual(self.online(), {"alice", "bob"})
        self.assertEqual(self.successResultOf(self.reader.online_count("connector")), 2)
        self.sessions.closed(1, "bye")
        self.assertEqual(self.online(), {"alice", "bob"})
        self.sessions.closed(2, "bye")
        self.sessions.closed(2, "again")  # twice: counted once
        self.assertEqual(self.online(), {"bob"})

    def test_unbind(self) -> None:
        """Unbinding removes the uid; the close that follows changes nothing."""
        self.login(1, "alice")
        self.successResultOf(self.sessions.unbind(1, "alice"))
        self.assertEqual(self.online(), set())
        self.sessions.closed(1, "bye")
        self.assertEqual(self.status.online(), [])

    def test_expires_without_refresh(self) -> None:
        """Refreshed every ttl/3 the set lives on; unrefreshed (a dead frontend) it expires."""
        self.login(1, "alice")
        self.clock.advance(100)
        self.assertEqual(self.online(), {"alice"})
        self.status.stop(False)
        self.redis.sadd(KEY, ["alice"])  # as a frontend killed before its stop
        self.redis.expire(KEY, 30)
        self.clock.advance(30)
        self.assertEqual(self.successResultOf(self.reader.online_count()), 0)

    def test_rewritten_after_an_outage(self) -> None:
        """Writes lost in an outage are made good by the next refresh once Redis is back."""
        self.login(1, "alice")
        self.redis.available = False
        self.login(2, "bob")
        self.sessions.closed(1, "bye")
        self.assertEqual(self.status.errors, 1 + 1)
        self.redis.available = True
        self.redis.flush()  # and it came back empty
        self.clock.advance(10)
        self.assertEqual(self.online(), {"bob"})
        self.assertEqual(self.successResultOf(self.reader.online_by_frontend()), {"c1": 1})

    def test_lost_set_rewritten(self) -> None:
        """A set Redis lost (restarted) is written again by the next refresh."""
        self.login(1, "alice")
        self.redis.flush()
        self.clock.advance(10)
        self.assertEqual(self.online(), {"alice"})

    def test_stop_removes_the_frontend(self) -> None:
        """A clean stop removes the frontend's online set and its registration."""
        self.login(1, "alice")
        self.successResultOf(self.status.stop(False))
        self.assertEqual(self.redis.keys(), [])
        self.login(2, "bob")  # no longer listening
        self.assertEqual(self.redis.keys(), [])

    def test_stop_during_an_outage(self) -> None:
        """Stopping while Redis is down succeeds (the set expires on its own)."""
        self.redis.available = False
        self.successResultOf(self.status.stop(False))

    def test_sessions_bound_before_start(self) -> None:
        """Sessions bound before the component started are counted too."""
        sessions = SessionService("c2")
        sessions.create(FakeAgent(1))
        sessions.bind(1, "carol")
        status = OnlineStatus(self.redis, "test", sessions, "connector", self.clock, 30)
        status.start()
        self.addCleanup(status.stop, False)
        self.assertEqual(self.successResultOf(self.redis.smembers("test:online:c2")), {"carol"})

    def test_ttl_limit(self) -> None:
        """A ttl under 3 seconds is refused."""
        self.assertRaises(
            ValueError, OnlineStatus, self.redis, "t", self.sessions, "connector", self.clock, 2
        )


class SessionListenerTests(SynchronousTestCase):
    """The SessionService hooks OnlineStatus relies on."""

    def test_listeners_called_and_failures_contained(self) -> None:
        """Bind and unbind listeners get (session, uid); one that raises is logged, bind works."""
        sessions = SessionService("c1")
        seen: list[tuple[str, int, str]] = []

        def broken(session: object, uid: str) -> None:
            raise RuntimeError("listener bug")

        sessions.bind_listeners.subscribe(broken)
        sessions.bind_listeners.subscribe(lambda s, u: seen.append(("bind", s.id, u)))
        sessions.unbind_listeners.subscribe(lambda s, u: seen.append(("unbind", s.id, u)))
        sessions.create(FakeAgent(7))
        self.successResultOf(sessions.bind(7, "alice"))
        self.successResultOf(sessions.unbind(7, "alice"))
        self.assertEqual(seen, [("bind", 7, "alice"), ("unbind", 7, "alice")])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
