"""What a frontend serves to other servers: session ops, pushes to uids, broadcasts."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import HandlerError
from pomelo_twisted.protocol import PackageType, Push, RouteDictionary, encode_push
from pomelo_twisted.session import Session, SessionService

from ..agent.helpers import connect
from .fakes import CountingSerializer, FakeAgent


def make(
    count: int, dictionary: RouteDictionary | None = None
) -> tuple[SessionService, list[Session], list[FakeAgent], CountingSerializer]:
    """``count`` sessions whose agents share one counting serializer and ``dictionary``."""
    serializer = CountingSerializer()
    service = SessionService("connector-1")
    agents = [FakeAgent(sid, serializer, dictionary) for sid in range(1, count + 1)]
    return service, [service.create(agent) for agent in agents], agents, serializer


class RemoteSessionTests(SynchronousTestCase):
    """remote_session: the ops a backend session sends to its frontend."""

    def test_bind_and_unbind(self) -> None:
        """'bind' and 'unbind' change the uid and the index and answer True."""
        service, (s1,), _, _ = make(1)
        self.assertTrue(self.successResultOf(service.remote_session("bind", 1, ["u1"])))
        self.assertEqual((s1.uid, service.get_by_uid("u1")), ("u1", [s1]))
        self.assertTrue(self.successResultOf(service.remote_session("unbind", 1, ("u1",))))
        self.assertEqual((s1.uid, service.uids()), (None, []))

    def test_refused_bind_fails(self) -> None:
        """A bind the frontend refuses fails with HandlerError."""
        service, (s1,), _, _ = make(1)
        self.successResultOf(s1.bind("u1"))
        self.failureResultOf(service.remote_session("bind", 1, ["u2"]), HandlerError)

    def test_sync_settings(self) -> None:
        """'sync' stores the settings it carries on the frontend session."""
        service, (s1,), _, _ = make(1)
        s1.set("keep", 0)
        self.assertTrue(self.successResultOf(service.remote_session("sync", 1, [{"room": 7}])))
        self.assertEqual(s1.settings, {"keep": 0, "room": 7})

    def test_kick(self) -> None:
        """'kick' kicks the client with the reason."""
        service, _, (a1,), _ = make(1)
        self.assertTrue(self.successResultOf(service.remote_session("kick", 1, ["cheating"])))
        self.assertEqual((a1.kicks, len(service)), (["cheating"], 0))

    def test_unknown_sid(self) -> None:
        """Every op on a session that is gone answers False, without an error."""
        service, _, _, _ = make(1)
        for op, arg in (("bind", "u"), ("unbind", "u"), ("sync", {"a": 1}), ("kick", "x")):
            self.assertFalse(self.successResultOf(service.remote_session(op, 42, [arg])))

    def test_unknown_op_and_bad_args(self) -> None:
        """An unknown op raises ValueError naming it; malformed arguments raise ValueError."""
        service, _, _, _ = make(1)
        error = self.assertRaises(ValueError, service.remote_session, "explode", 1, ["x"])
        self.assertIn("'explode'", str(error))
        self.assertRaises(ValueError, service.remote_session, "bind", 1, [])
        self.assertRaises(ValueError, service.remote_session, "bind", 1, [5])
        self.assertRaises(ValueError, service.remote_session, "sync", 1, ["not a dict"])


class PushTests(SynchronousTestCase):
    """push_to_uids and broadcast: encoded once, the same bytes to every connection."""

    def test_push_to_uids_encodes_once(self) -> None:
        """Every session of every uid gets identical bytes from one encode."""
        service, sessions, agents, serializer = make(4)
        for session, uid in zip(sessions, ("u1", "u1", "u2", "u3"), strict=True):
            self.successResultOf(session.bind(uid))
        count = service.push_to_uids("onChat", {"text": "hi"}, ["u1", "u2", "u1", "nobody"])
        self.assertEqual((count, serializer.encoded), (3, 1))
        expected = encode_push("onChat", b'{"text":"hi"}')
        self.assertEqual([a.written for a in agents], [[expected]] * 3 + [[]])

    def test_compressed_route(self) -> None:
        """A route in the dictionary goes out as a compressed push (flag 0x07 and its code)."""
        dictionary = RouteDictionary.from_routes([], ["onChat"])
        service, (s1,), (a1,), _ = make(1, dictionary)
        self.successResultOf(s1.bind("u1"))
        self.assertEqual(service.push_to_uids("onChat", {"a": 1}, ["u1"]), 1)
        body = b'{"a":1}'
        message = bytes([0x07]) + dictionary.code_of("onChat").to_bytes(2, "big") + body
        header = bytes([PackageType.DATA]) + len(message).to_bytes(3, "big")
        self.assertEqual(a1.written, [header + message])

    def test_skips_sessions_not_working(self) -> None:
        """A connection that is not working is skipped and not counted."""
        service, (s1, s2), (a1, a2), _ = make(2)
        self.successResultOf(s1.bind("u1"))
        self.successResultOf(s2.bind("u1"))
        a2.working = False
        self.assertEqual(service.push_to_uids("onChat", {}, ["u1"]), 1)
        self.assertEqual((len(a1.written), a2.written), (1, []))

    def test_nobody_to_push_to(self) -> None:
        """Unknown uids push nothing and encode nothing."""
        service, _, _, serializer = make(2)
        self.assertEqual(service.push_to_uids("onChat", {}, ["ghost"]), 0)
        self.assertEqual(serializer.encoded, 0)

    def test_broadcast(self) -> None:
        """broadcast() reaches every working session, bound or not, with one encode."""
        service, (s1, _, _), (a1, a2, a3), serializer = make(3)
        self.successResultOf(s1.bind("u1"))
        a3.working = False
        self.assertEqual(service.broadcast("onNews", {"n": 1}), 2)
        self.assertEqual(serializer.encoded, 1)
        self.assertEqual(a1.written, a2.written)
        self.assertEqual((len(a1.written), a3.written), (1, []))

    def test_real_agent_receives_push(self) -> None:
        """A real agent writes the push and its client decodes it (compressed route)."""
        conn = connect()
        service = SessionService("connector-1")
        session = service.create(conn.agent)
        self.successResultOf(session.bind("u1"))
        self.assertEqual(service.push_to_uids("onPush", {"a": 1}, ["u1"]), 1)
        self.assertEqual(conn.events(), [Push("onPush", b'{"a":1}')])
