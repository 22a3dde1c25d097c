"""The behaviour every session directory shares, written once (a mixin).

A test case mixes :class:`DirectoryContract` into a ``SynchronousTestCase`` and defines
``start(**settings)``: the example game (two connectors, two chat servers) in memory with
its directory of choice and cluster-wide unique login on unless the settings say otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.python.failure import Failure

from pomelo_twisted.session import Session
from pomelo_twisted.session.interfaces import SessionEvent
from pomelo_twisted.testing import GameConnection, GameHarness

__all__ = ["ENTRY", "F1", "F2", "DirectoryContract"]

ENTRY = "connector.entryHandler.entry"
F1, F2 = "connector-server-1", "connector-server-2"
BACKEND = "chat-server-1"


if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase as _Base
else:
    _Base = object


def result_of(game: GameHarness, d: Any) -> Any:
    """Settle the game, then the result of ``d`` (raise its failure)."""
    out: list[Any] = []
    d.addBoth(out.append)
    game.settle()
    assert out, "no result yet"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


class DirectoryContract(_Base):
    """Cluster-wide sessions through ``app.sessions``, whichever directory serves them."""

    def start(self, **settings: Any) -> GameHarness:
        raise NotImplementedError

    def login(self, game: GameHarness, frontend: str, uid: str) -> GameConnection:
        conn = game.connect(frontend)
        self.assertEqual(conn.call(ENTRY, {"uid": uid}), {"code": 200, "uid": uid})
        return conn

    def session_of(self, game: GameHarness, frontend: str, uid: str) -> Session:
        service = game.app(frontend).session_service
        assert service is not None
        (session,) = service.get_by_uid(uid)
        return session

    def test_other_frontend_kicked_before_bind_answers(self) -> None:
        """The same uid on connector 2 kicks connector 1's session with "another login"
        before connector 2 answers the bind."""
        game = self.start()
        first = self.login(game, F1, "alice")
        order: list[str] = []
        self.session_of(game, F1, "alice").on_closed(lambda s, reason: order.append(reason))
        second = game.connect(F2)
        d = second.client.request(ENTRY, {"uid": "alice"})
        d.addCallback(lambda body: order.append(f"answer {body['code']}"))
        game.settle()
        self.assertEqual(order, ["another login", "answer 200"])
        self.assertEqual(first.kicks, ["another login"])
        self.assertEqual(second.kicks, [])
        self.assertEqual(result_of(game, game.app(BACKEND).sessions.where("alice"))[0], F2)

    def test_same_frontend_keeps_one_session(self) -> None:
        """A second login on the same connector kicks the first there."""
        game = self.start()
        first = self.login(game, F1, "bob")
        second = self.login(game, F1, "bob")
        self.assertEqual((first.kicks, second.kicks), (["another login"], []))
        where = result_of(game, game.app(F2).sessions.where("bob"))
        self.assertEqual(where, (F1, second.agent.sid))

    def test_kick_by_uid_from_a_backend(self) -> None:
        """kick_by_uid from a chat server kicks the uid's session with the reason (a
        Pomelo kick package) and counts it; an unknown uid counts 0."""
        game = self.start()
        conn = self.login(game, F2, "carol")
        sessions = game.app(BACKEND).sessions
        self.assertEqual(result_of(game, sessions.kick_by_uid("carol", "banned")), 1)
        self.assertEqual(conn.kicks, ["banned"])
        self.assertEqual(result_of(game, sessions.kick_by_uid("nobody", "banned")), 0)
        self.assertIsNone(result_of(game, sessions.where("carol")))

    def test_where_from_a_backend(self) -> None:
        """where answers (frontend id, session id) while bound, None once closed."""
        game = self.start()
        conn = self.login(game, F2, "dave")
        sessions = game.app(BACKEND).sessions
        self.assertEqual(result_of(game, sessions.where("dave")), (F2, conn.agent.sid))
        conn.disconnect()
        game.settle()
        self.assertIsNone(result_of(game, sessions.where("dave")))

    def test_bind_and_close_events_reach_a_backend(self) -> None:
        """A backend subscriber hears the bind and the close of a session of either
        connector, with its frontend and session id; unsubscribing stops them."""
        game = self.start()
        events: list[SessionEvent] = []
        stop = game.app(BACKEND).sessions.subscribe(events.append, events.append)
        game.settle()
        conn = self.login(game, F2, "erin")
        sid = conn.agent.sid
        conn.disconnect()
        game.settle()
        self.assertEqual(
            events,
            [SessionEvent("bind", "erin", F2, sid), SessionEvent("close", "erin", F2, sid)],
        )
        stop()
        self.login(game, F1, "frank")
        self.assertEqual(len(events), 2)

    def test_another_login_is_a_close_event(self) -> None:
        """A login elsewhere reports the close of the old session and the new bind."""
        game = self.start()
        events: list[SessionEvent] = []
        game.app(BACKEND).sessions.subscribe(events.append, events.append)
        game.settle()
        first = self.login(game, F1, "gina")
        second = self.login(game, F2, "gina")
        kinds = [(e.kind, e.frontend_id, e.session_id) for e in events]
        self.assertEqual(kinds[0], ("bind", F1, first.agent.sid))
        self.assertEqual(
            sorted(kinds[1:]), [("bind", F2, second.agent.sid), ("close", F1, first.agent.sid)]
        )

    def test_unique_login_off_is_unchanged(self) -> None:
        """With cluster_unique_login off, the same uid stays bound on both connectors
        and nobody is kicked."""
        game = self.start(cluster_unique_login=False)
        first = self.login(game, F1, "hank")
        second = self.login(game, F2, "hank")
        game.settle()
        self.assertEqual((first.kicks, second.kicks), ([], []))
        self.assertEqual(len(game.app(F1).session_service.get_by_uid("hank")), 1)
        self.assertEqual(len(game.app(F2).session_service.get_by_uid("hank")), 1)
