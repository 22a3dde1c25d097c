"""SessionService and Session on a frontend: indexes, binding, kicks and closing."""

from __future__ import annotations

from typing import Any

import msgpack
from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.session import ANOTHER_LOGIN, Session, SessionService

from .fakes import FakeAgent


def make(
    count: int, *, single_session: bool = False
) -> tuple[SessionService, list[Session], list[FakeAgent]]:
    """A service of frontend ``connector-1`` with ``count`` sessions (sids 1..count)."""
    service = SessionService("connector-1", single_session=single_session)
    agents = [FakeAgent(sid) for sid in range(1, count + 1)]
    return service, [service.create(agent) for agent in agents], agents


class CreateTests(SynchronousTestCase):
    """Creating and looking up sessions."""

    def test_create_and_get(self) -> None:
        """create() registers by the agent's sid; get(), len() and sessions() see it."""
        service, (s1, s2), (a1, _) = make(2)
        self.assertIs(service.get(1), s1)
        self.assertIsNone(service.get(99))
        self.assertEqual(len(service), 2)
        self.assertEqual(service.sessions(), [s1, s2])
        self.assertEqual(
            (s1.id, s1.frontend_id, s1.uid, s1.closed), (1, "connector-1", None, False)
        )
        self.assertIs(s1.agent, a1)

    def test_duplicate_sid_rejected(self) -> None:
        """A second session with a sid in use raises ValueError."""
        service, _, _ = make(1)
        self.assertRaises(ValueError, service.create, FakeAgent(1))

    def test_export_is_plain_data(self) -> None:
        """export() is plain data that survives msgpack, with a copy of the settings."""
        _, (s1,), _ = make(1)
        self.successResultOf(s1.bind("u1"))
        s1.set("room", 3)
        data = s1.export()
        self.assertEqual(
            data, {"id": 1, "frontend_id": "connector-1", "uid": "u1", "settings": {"room": 3}}
        )
        self.assertEqual(msgpack.unpackb(msgpack.packb(data)), data)
        data["settings"]["room"] = 4
        self.assertEqual(s1.get("room"), 3)

    def test_settings(self) -> None:
        """set/get store settings; sync() of set keys fires at once, unknown keys raise."""
        _, (s1,), _ = make(1)
        s1.set("a", 1)
        self.assertEqual(s1.get("a"), 1)
        self.assertEqual(s1.get("b", "dflt"), "dflt")
        self.assertIsNone(self.successResultOf(s1.sync("a")))
        self.assertRaises(KeyError, s1.sync, "b")

    def test_settings_version(self) -> None:
        """set, a change in place through ``settings``, sync and a backend's sync each
        bump the settings version that forwarded requests carry; get and bind do not."""
        service, (s1,), _ = make(1)
        self.assertEqual((s1.settings_version, s1.backend_versions), (0, None))
        s1.set("a", 1)
        s1.settings["b"] = 2
        self.successResultOf(s1.sync())
        self.successResultOf(s1.bind("u1"))
        self.assertEqual(s1.get("b"), 2)
        self.successResultOf(service.remote_session("sync", s1.id, [{"c": 3}]))
        self.assertEqual(s1.settings_version, 4)
        self.assertEqual(s1.export()["settings"], {"a": 1, "b": 2, "c": 3})


class BindTests(SynchronousTestCase):
    """Binding sessions to uids."""

    def test_several_sessions_per_uid(self) -> None:
        """Several sessions bind to one uid; get_by_uid lists them in binding order."""
        service, (s1, s2, s3), agents = make(3)
        self.successResultOf(s2.bind("u1"))
        self.successResultOf(s1.bind("u1"))
        self.successResultOf(s3.bind("u2"))
        self.assertEqual(service.get_by_uid("u1"), [s2, s1])
        self.assertEqual(service.get_by_uid("u2"), [s3])
        self.assertEqual(service.get_by_uid("nobody"), [])
        self.assertEqual((s1.uid, s3.uid), ("u1", "u2"))
        self.assertEqual([a.kicks for a in agents], [[], [], []])

    def test_bind_same_uid_again(self) -> None:
        """Binding again to the same uid succeeds and indexes the session once."""
        service, (s1,), _ = make(1)
        self.successResultOf(s1.bind("u1"))
        self.successResultOf(service.bind(1, "u1"))
        self.assertEqual(service.get_by_uid("u1"), [s1])

    def test_bind_to_another_uid_fails(self) -> None:
        """A bound session cannot bind to another uid: HandlerError(500) names the uid."""
        service, (s1,), _ = make(1)
        self.successResultOf(s1.bind("u1"))
        error = self.failureResultOf(s1.bind("u2"), HandlerError).value
        self.assertEqual((error.code, error.msg), (500, "session already bound to u1"))
        self.assertEqual((s1.uid, service.get_by_uid("u2")), ("u1", []))

    def test_bind_unknown_session_or_bad_uid(self) -> None:
        """An unknown sid fails with HandlerError, an empty or non-str uid with ValueError."""
        service, _, _ = make(1)
        self.failureResultOf(service.bind(42, "u1"), HandlerError)
        self.failureResultOf(service.bind(1, ""), ValueError)
        self.failureResultOf(service.bind(1, 7), ValueError)  # type: ignore[arg-type]

    def test_unbind(self) -> None:
        """unbind() clears the uid and the index; a uid it is not bound to fails."""
        service, (s1, s2), _ = make(2)
        self.successResultOf(s1.bind("u1"))
        self.successResultOf(s2.bind("u1"))
        self.failureResultOf(s1.unbind("u2"), HandlerError)
        self.successResultOf(s1.unbind("u1"))
        self.assertIsNone(s1.uid)
        self.assertEqual(service.get_by_uid("u1"), [s2])
        self.successResultOf(s2.unbind("u1"))
        self.assertEqual(service.uids(), [])
        self.failureResultOf(service.unbind(42, "u1"), HandlerError)
        self.successResultOf(s1.bind("u3"))
        self.assertEqual(service.get_by_uid("u3"), [s1])

    def test_single_session_kicks_older(self) -> None:
        """With single_session, binding a uid kicks its older sessions with 'another login'."""
        service, (s1, s2, s3), (a1, a2, a3) = make(3, single_session=True)
        seen: list[tuple[Session, str]] = []
        s1.on_closed(lambda session, reason: seen.append((session, reason)))
        self.successResultOf(s1.bind("u1"))
        self.successResultOf(s3.bind("u2"))
        self.successResultOf(s2.bind("u1"))
        self.assertEqual(a1.kicks, [ANOTHER_LOGIN])
        self.assertEqual((a2.kicks, a3.kicks), ([], []))
        self.assertEqual(seen, [(s1, "another login")])
        self.assertTrue(s1.closed)
        self.assertIsNone(service.get(1))
        self.assertEqual(service.get_by_uid("u1"), [s2])
        self.assertEqual(service.get_by_uid("u2"), [s3])
        self.assertEqual(len(service), 2)


class KickAndCloseTests(SynchronousTestCase):
    """Kicks and closes: callbacks once, indexes emptied."""

    def test_kick_uid(self) -> None:
        """kick(uid) kicks every session of the uid, fires with their number, spares others."""
        service, (s1, s2, s3), (a1, a2, a3) = make(3)
        for session, uid in ((s1, "u1"), (s2, "u1"), (s3, "u2")):
            self.successResultOf(session.bind(uid))
        self.assertEqual(self.successResultOf(service.kick("u1", "banned")), 2)
        self.assertEqual((a1.kicks, a2.kicks, a3.kicks), (["banned"], ["banned"], []))
        self.assertEqual((service.sessions(), service.uids()), ([s3], ["u2"]))
        self.assertEqual(self.successResultOf(service.kick("nobody", "x")), 0)

    def test_kick_by_sid(self) -> None:
        """kick_by_sid() kicks one session (True), an unknown sid gives False."""
        service, (_, s2), (a1, a2) = make(2)
        self.assertTrue(self.successResultOf(service.kick_by_sid(1, "bye")))
        self.assertFalse(self.successResultOf(service.kick_by_sid(1, "bye")))
        self.assertEqual((a1.kicks, a2.kicks), (["bye"], []))
        self.assertIsNone(self.successResultOf(s2.kick()))
        self.assertEqual(a2.kicks, ["kick"])
        self.assertEqual(len(service), 0)

    def test_closed_runs_callbacks_once(self) -> None:
        """closed() runs each on_closed callback once and leaves the indexes empty."""
        service, (s1, s2), _ = make(2)
        self.successResultOf(s1.bind("u1"))
        self.successResultOf(s2.bind("u1"))
        seen: list[tuple[str, Session, str]] = []
        s1.on_closed(lambda session, reason: seen.append(("first", session, reason)))
        s1.on_closed(lambda session, reason: seen.append(("second", session, reason)))
        service.closed(1, "client closed")
        service.closed(1, "client closed")
        self.assertEqual(seen, [("first", s1, "client closed"), ("second", s1, "client closed")])
        self.assertEqual((s1.closed, s1.close_reason, s1.uid), (True, "client closed", "u1"))
        service.closed(2, "heartbeat timeout")
        self.assertEqual((len(service), service.sessions(), service.uids()), (0, [], []))
        self.assertEqual(service.get_by_uid("u1"), [])

    def test_kick_then_link_close_runs_callbacks_once(self) -> None:
        """A kick runs the callbacks with its reason; the later link close does nothing."""
        service, (s1,), _ = make(1)
        seen: list[str] = []
        s1.on_closed(lambda _session, reason: seen.append(reason))
        self.successResultOf(s1.kick("maintenance"))
        service.closed(1, "kicked: maintenance")
        self.assertEqual(seen, ["maintenance"])

    def test_on_closed_after_close(self) -> None:
        """on_closed on a session already closed runs at once with the recorded reason."""
        service, (s1,), _ = make(1)
        service.closed(1, "gone")
        seen: list[str] = []
        s1.on_closed(lambda _session, reason: seen.append(reason))
        self.assertEqual(seen, ["gone"])

    def test_callback_failures_are_logged(self) -> None:
        """A raising or failing callback is logged; the others still run; closed() returns."""
        service, (s1,), _ = make(1)
        seen: list[str] = []

        def boom(_session: Session, _reason: str) -> None:
            raise ZeroDivisionError("boom")

        async def coro(_session: Session, _reason: str) -> None:
            seen.append("coro")
            raise KeyError("async boom")

        s1.on_closed(boom)
        s1.on_closed(lambda _s, _r: fail(ValueError("deferred boom")))
        s1.on_closed(coro)
        s1.on_closed(lambda _s, reason: seen.append(reason))
        service.closed(1, "bye")
        self.assertEqual(seen, ["coro", "bye"])
        errors: list[Any] = self.flushLoggedErrors(ZeroDivisionError, ValueError, KeyError)
        self.assertEqual(len(errors), 3)
        self.assertEqual(len(service), 0)

    def test_closed_unknown_sid(self) -> None:
        """closed() of an unknown sid is ignored."""
        service, _, _ = make(1)
        service.closed(42, "whatever")
        self.assertEqual(len(service), 1)
