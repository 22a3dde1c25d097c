"""BackendSession: the copy of a session a backend sees, talking back to its frontend."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError, RpcError
from pomelo_twisted.session import BackendSession, SessionService
from pomelo_twisted.session.backend import SessionCache

from .fakes import FakeAgent, FakeRpc

DATA = {"id": 7, "frontend_id": "connector-1", "uid": None, "settings": {"a": 1, "b": 2}}


def session_call(op: str, arg: object) -> tuple[str, str, str, tuple[Any, ...]]:
    """The rpc call a backend session makes for ``op``."""
    return ("connector-1", "pomelo.sys", "session", (op, 7, [arg]))


class BackendSessionTests(SynchronousTestCase):
    """Each operation makes the right rpc call and keeps the local copy right."""

    def setUp(self) -> None:
        self.rpc = FakeRpc()
        self.session = BackendSession(dict(DATA), self.rpc)

    def test_built_from_export(self) -> None:
        """Fields come from the exported data; export() gives the same data back."""
        s = self.session
        self.assertEqual((s.id, s.frontend_id, s.uid, s.closed), (7, "connector-1", None, False))
        self.assertEqual(s.get("a"), 1)
        self.assertEqual(s.export(), DATA)
        self.assertEqual(self.rpc.calls, [])

    def test_bad_data(self) -> None:
        """Data without an int id or a frontend id, or with a bad uid, raises ValueError."""
        for bad in ({"frontend_id": "c"}, {"id": 1}, {"id": 1, "frontend_id": "c", "uid": 3}):
            self.assertRaises(ValueError, BackendSession, bad, self.rpc)

    def test_bind(self) -> None:
        """bind() calls the frontend's 'bind' and sets the uid once it agreed."""
        self.assertIsNone(self.successResultOf(self.session.bind("u1")))
        self.assertEqual(self.rpc.calls, [session_call("bind", "u1")])
        self.assertEqual(self.session.uid, "u1")

    def test_bind_waits_for_frontend(self) -> None:
        """The local uid changes only when the frontend answers."""
        pending: Deferred[Any] = Deferred()
        session = BackendSession(dict(DATA), lambda *_: pending)
        result = session.bind("u1")
        self.assertIsNone(session.uid)
        pending.callback(True)
        self.successResultOf(result)
        self.assertEqual(session.uid, "u1")

    def test_bind_refused(self) -> None:
        """A frontend answering False (session gone) or failing leaves the uid unset."""
        self.rpc.results["connector-1"] = False
        self.failureResultOf(self.session.bind("u1"), HandlerError)
        self.rpc.results["connector-1"] = RpcError("connector-1 is down")
        self.failureResultOf(self.session.bind("u1"), RpcError)
        self.assertIsNone(self.session.uid)

    def test_bind_already_bound(self) -> None:
        """Binding a bound session to another uid fails locally, with no call."""
        session = BackendSession(dict(DATA, uid="u1"), self.rpc)
        error = self.failureResultOf(session.bind("u2"), HandlerError).value
        self.assertEqual(error.msg, "session already bound to u1")
        self.assertEqual(self.rpc.calls, [])

    def test_unbind(self) -> None:
        """unbind() calls 'unbind' then clears the uid; a uid not bound fails with no call."""
        session = BackendSession(dict(DATA, uid="u1"), self.rpc)
        self.failureResultOf(session.unbind("u2"), HandlerError)
        self.successResultOf(session.unbind("u1"))
        self.assertEqual(self.rpc.calls, [session_call("unbind", "u1")])
        self.assertIsNone(session.uid)

    def test_sync(self) -> None:
        """sync(keys) sends those settings; sync() sends them all; unknown keys raise."""
        self.session.set("a", 10)
        self.successResultOf(self.session.sync("a"))
        self.successResultOf(self.session.sync())
        self.assertRaises(KeyError, self.session.sync, "missing")
        self.assertEqual(
            self.rpc.calls,
            [session_call("sync", {"a": 10}), session_call("sync", {"a": 10, "b": 2})],
        )

    def test_kick(self) -> None:
        """kick() asks the frontend to kick with the reason."""
        self.successResultOf(self.session.kick("bye"))
        self.successResultOf(self.session.kick())
        self.assertEqual(
            self.rpc.calls, [session_call("kick", "bye"), session_call("kick", "kick")]
        )

    def test_on_closed_not_available(self) -> None:
        """on_closed raises NotImplementedError: a backend cannot see the close."""
        self.assertRaises(NotImplementedError, self.session.on_closed, lambda _s, _r: None)


class RoundTripTests(SynchronousTestCase):
    """A backend session whose rpc reaches a real frontend SessionService."""

    def test_ops_reach_the_frontend(self) -> None:
        """bind, sync and kick from the backend change the frontend session."""
        frontend = SessionService("connector-1")
        agent = FakeAgent(7)
        session = frontend.create(agent)

        def rpc(server_id: str, service: str, method: str, args: tuple[Any, ...]) -> Any:
            assert (server_id, service, method) == ("connector-1", "pomelo.sys", "session")
            return frontend.remote_session(*args)

        backend = BackendSession(session.export(), rpc)
        self.successResultOf(backend.bind("u1"))
        backend.set("room", "lobby")
        self.successResultOf(backend.sync("room"))
        self.assertEqual((session.uid, session.settings), ("u1", {"room": "lobby"}))
        self.assertEqual(frontend.get_by_uid("u1"), [session])
        self.successResultOf(backend.kick("done"))
        self.assertEqual((agent.kicks, len(frontend)), (["done"], 0))
        self.failureResultOf(backend.bind("u1"), HandlerError)


class SessionCacheTests(SynchronousTestCase):
    """The settings a backend keeps of forwarded sessions: validated once, bounded."""

    def test_get_needs_the_same_version(self) -> None:
        """Settings are found for the version they were sent with, not another."""
        cache = SessionCache()
        kept = cache.put("connector-1", 7, "u1", 3, {"a": 1})
        self.assertIs(cache.get("connector-1", 7, 3), kept)
        self.assertIsNone(cache.get("connector-1", 7, 4))
        self.assertIsNone(cache.get("connector-2", 7, 3))

    def test_bounded(self) -> None:
        """Past its limit the entry written longest ago goes; writing one again renews it."""
        cache = SessionCache(limit=2)
        cache.put("c", 1, None, 0, {})
        cache.put("c", 2, None, 0, {})
        cache.put("c", 1, None, 1, {})
        cache.put("c", 3, None, 0, {})
        self.assertEqual(len(cache), 2)
        self.assertIsNone(cache.get("c", 2, 0))
        self.assertIsNotNone(cache.get("c", 1, 1))
        self.assertRaises(ValueError, SessionCache, 0)

    def test_validated_when_sent(self) -> None:
        """Data that is not a session's is refused when it arrives."""
        cache = SessionCache()
        for sid, frontend_id, uid, version, settings in (
            ("7", "c", None, 0, {}),
            (7, "", None, 0, {}),
            (7, "c", 5, 0, {}),
            (7, "c", None, "0", {}),
            (7, "c", None, 0, [1]),
        ):
            self.assertRaises(ValueError, cache.put, frontend_id, sid, uid, version, settings)
        self.assertEqual(len(cache), 0)

    def test_cached_session_copies_on_change(self) -> None:
        """Sessions built over cached settings share them until one changes its copy."""
        kept = {"a": 1}
        rpc = FakeRpc()
        first = BackendSession.cached("c", 7, "u1", kept, rpc)
        second = BackendSession.cached("c", 7, "u1", kept, rpc)
        self.assertEqual(
            (first.get("a"), first.uid, first.id, first.frontend_id), (1, "u1", 7, "c")
        )
        first.set("a", 2)
        first.settings["b"] = 3
        self.assertEqual((kept, second.get("a"), first.settings), ({"a": 1}, 1, {"a": 2, "b": 3}))
        second.settings["c"] = 4
        self.assertEqual(kept, {"a": 1})
        self.assertEqual(second.export()["settings"], {"a": 1, "c": 4})
