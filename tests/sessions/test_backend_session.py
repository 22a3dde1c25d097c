"""BackendSession: the copy of a session a backend sees, talking back to its frontend."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError, RpcError
from pomelo_twisted.session import BackendSession, SessionService

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
