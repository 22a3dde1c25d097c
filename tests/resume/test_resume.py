"""Session resume on one frontend, deterministic: Clock, StringTransports, in memory."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.agent.negotiation import SerializerNegotiator
from pomelo_twisted.client import reconnect as client_routes
from pomelo_twisted.interfaces import IAgent, IConnectionHandler, IHandshakeNegotiator
from pomelo_twisted.protocol import Notify
from pomelo_twisted.resume import RESUME_END_ROUTE, RESUME_ROUTE, ParkedAgent, ResumeTokens
from pomelo_twisted.resume.handler import ResumableConnection
from pomelo_twisted.resume.tokens import FORGED
from pomelo_twisted.session.interfaces import IBindingClaims
from pomelo_twisted.session.service import ANOTHER_LOGIN

from .support import FRONTEND, Client, Frontend


def logged_in(frontend: Frontend, uid: str = "alice") -> Client:
    """A resumable client bound to ``uid``, its fresh token read from the push."""
    client = frontend.connect({})
    client.request("bind", {"uid": uid})
    return client


def token_of(client: Client) -> str:
    """The client's latest token: from the last ``sys.resume`` push, else the reply."""
    for route, body in reversed(client.pushes):
        if route == RESUME_ROUTE:
            return str(body["token"])
    return str(client.resume["token"])


def received(client: Client) -> int:
    return len(client.pushes)


class StockClientTests(SynchronousTestCase):
    """Clients that do not ask for resume are untouched."""

    def test_stock_client_gets_no_token_and_closes_on_drop(self) -> None:
        """No sys.resume: no token, no recording, a drop closes the session at once."""
        frontend = Frontend()
        client = frontend.connect()
        self.assertNotIn("resume", client.sys)
        self.assertIsNone(client.agent.push_log)
        self.assertIs(client.agent.handler, frontend.handler)
        client.drop()
        self.assertEqual(len(frontend.sessions), 0)
        self.assertEqual(len(frontend.registry), 0)


class ResumeTests(SynchronousTestCase):
    """A dropped resumable session parks, and comes back with its missed pushes."""

    def setUp(self) -> None:
        self.frontend = Frontend(window=60.0, max_pushes=8)
        self.client = logged_in(self.frontend)
        self.session = self.frontend.sessions.get_by_uid("alice")[0]
        self.closes = self.frontend.closed_callbacks(self.session)

    def test_interfaces(self) -> None:
        """The parked agent, the wrapper and the negotiator provide their interfaces."""
        self.client.drop()
        parked = self.session.agent
        self.assertIsInstance(parked, ParkedAgent)
        verifyObject(IAgent, parked)
        verifyObject(IConnectionHandler, self.client.agent.handler)
        self.assertIsInstance(self.client.agent.handler, ResumableConnection)
        verifyObject(IHandshakeNegotiator, self.frontend.negotiator)

    def test_reply_carries_token_and_window(self) -> None:
        """The handshake reply names a token and the window; bind pushes a new token."""
        self.assertEqual(self.client.resume["window"], 60.0)
        self.assertIs(self.client.resume["resumed"], False)
        self.assertEqual([r for r, _ in self.client.pushes], [RESUME_ROUTE])
        self.assertNotEqual(token_of(self.client), self.client.resume["token"])

    def test_drop_parks_the_session(self) -> None:
        """A drop keeps the session (sid, uid, settings); nobody is told it closed."""
        self.session.set("room", "lobby")
        self.client.drop()
        self.assertIs(self.frontend.sessions.get(self.session.id), self.session)
        self.assertEqual(self.frontend.sessions.get_by_uid("alice"), [self.session])
        self.assertEqual(self.closes, [])
        self.assertEqual(self.frontend.handler.disconnects, [])
        self.assertEqual(len(self.frontend.registry.parked), 1)

    def test_missed_pushes_replayed_exactly_once_in_order(self) -> None:
        """Pushes written to the dead socket but unread, and those made while parked,
        come back once each, in order, after what the client says it received."""
        self.frontend.chat(1, 2)
        self.client.read()
        self.frontend.chat(3, 4)  # written, never read: the socket dies with them
        self.client.drop()
        self.frontend.chat(5, 6)  # parked: buffered
        again = self.frontend.connect(
            {"token": token_of(self.client), "received": received(self.client)}
        )
        self.assertIs(again.resume["resumed"], True)
        self.assertEqual(again.resume["sid"], self.session.id)
        self.assertEqual(again.pushes, [("onChat", {"n": n}) for n in (3, 4, 5, 6)])
        self.frontend.chat(7)
        again.read()
        self.assertEqual(self.client.texts() + again.texts(), [1, 2, 3, 4, 5, 6, 7])
        self.assertIs(self.session.agent, again.agent)
        self.assertEqual(self.frontend.handler.connects, [self.client.agent.sid])
        self.assertEqual(self.closes, [])

    def test_resumed_session_keeps_uid_and_settings(self) -> None:
        """The resumed connection's requests run on the same session."""
        self.session.set("room", "lobby")
        self.client.drop()
        again = self.frontend.connect(
            {"token": token_of(self.client), "received": received(self.client)}
        )
        self.assertEqual(again.request("echo", {}), {"sid": self.session.id, "echo": {}})
        self.assertEqual(self.session.uid, "alice")
        self.assertEqual(self.session.get("room"), "lobby")

    def test_token_replay_is_refused(self) -> None:
        """A used token never works again; the resumed connection has a new one."""
        token = token_of(self.client)
        self.client.drop()
        again = self.frontend.connect({"token": token, "received": received(self.client)})
        self.assertNotEqual(again.resume["token"], token)
        again.drop()
        third = self.frontend.connect({"token": token, "received": 0})
        self.assertIs(third.resume["resumed"], False)
        self.assertIn("already used", third.resume["refused"])
        self.assertNotEqual(third.agent.session, self.session)

    def test_token_before_bind_is_superseded(self) -> None:
        """The handshake's token (no uid) stops working once a uid is bound."""
        self.client.drop()
        again = self.frontend.connect({"token": self.client.resume["token"], "received": 1})
        self.assertIn("superseded", again.resume["refused"])

    def test_window_expiry_closes_the_session(self) -> None:
        """At the window's end the session closes as a disconnect does; the token is
        then refused."""
        self.client.drop()
        self.frontend.clock.advance(59.9)
        self.assertEqual(self.closes, [])
        self.frontend.clock.advance(0.1)
        self.assertEqual(self.closes, ["client closed"])
        self.assertIsNone(self.frontend.sessions.get(self.session.id))
        self.assertEqual(self.frontend.handler.disconnects, [(self.session.id, "client closed")])
        again = self.frontend.connect({"token": token_of(self.client), "received": 1})
        self.assertIn("is gone", again.resume["refused"])

    def test_forged_token_is_refused(self) -> None:
        """A token signed with another key, or altered, is refused; a new session follows."""
        self.client.drop()
        forged = ResumeTokens(FRONTEND, b"x" * 32).issue(self.session.id, "alice", "00")
        again = self.frontend.connect({"token": forged, "received": 1})
        self.assertEqual(again.resume["refused"], FORGED)
        self.assertIsNot(again.agent.session, self.session)
        payload, _, signature = token_of(self.client).partition(".")
        altered = (
            payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
        )
        third = self.frontend.connect({"token": altered, "received": 1})
        self.assertIs(third.resume["resumed"], False)
        self.assertEqual(self.closes, [])

    def test_wrong_uid_is_refused(self) -> None:
        """A token bound to another uid than the session's is refused."""
        self.client.drop()
        self.frontend.sessions.remote_session("unbind", self.session.id, ["alice"])
        self.frontend.sessions.remote_session("bind", self.session.id, ["bob"])
        again = self.frontend.connect({"token": token_of(self.client), "received": 1})
        self.assertIn("bound to uid 'alice'", again.resume["refused"])
        self.assertIn("'bob'", again.resume["refused"])

    def test_other_frontend_is_refused_naming_it(self) -> None:
        """A token of another frontend is refused, and the reply names that frontend."""
        other = Frontend("connector-2")
        self.client.drop()
        again = other.connect({"token": token_of(self.client), "received": 1})
        self.assertIs(again.resume["resumed"], False)
        self.assertEqual(again.resume["frontend"], FRONTEND)
        self.assertIn("held by frontend 'connector-1'", again.resume["refused"])

    def test_overflow_while_parked_closes_and_refuses(self) -> None:
        """A parked session whose buffer drops a push closes; its resume is refused."""
        self.client.drop()
        self.frontend.chat(*range(8))
        self.assertEqual(self.closes, [])
        self.frontend.chat(8)
        self.assertEqual(self.closes, ["resume buffer overflowed while parked"])
        again = self.frontend.connect({"token": token_of(self.client), "received": 1})
        self.assertIn("is gone", again.resume["refused"])

    def test_buffer_no_longer_holding_missed_pushes_refuses(self) -> None:
        """Unread pushes that the buffer dropped refuse the resume and close the session."""
        self.frontend.chat(*range(10))  # written, never read
        self.client.drop()
        again = self.frontend.connect({"token": token_of(self.client), "received": 1})
        self.assertIn("overflowed", again.resume["refused"])
        self.assertEqual(len(self.closes), 1)
        self.assertIsNot(again.agent.session, self.session)

    def test_claiming_more_pushes_than_sent_is_refused(self) -> None:
        """A client counting more pushes than were sent is refused."""
        self.client.drop()
        again = self.frontend.connect({"token": token_of(self.client), "received": 5})
        self.assertIn("says it received 5", again.resume["refused"])

    def test_other_push_format_is_refused(self) -> None:
        """A resume asking another serializer than the session's pushes is refused:
        the buffered packages could not be read."""
        self.frontend.agents.negotiators = (SerializerNegotiator(), self.frontend.negotiator)
        self.client.drop()
        token = token_of(self.client)
        again = self.frontend.connect(
            {"token": token, "received": received(self.client)}, sys={"serializer": "msgpack"}
        )
        self.assertIn("push format", again.resume["refused"])
        self.assertIsNot(again.agent.session, self.session)

    def test_client_leaving_on_purpose_is_not_parked(self) -> None:
        """``sys.resume.end`` then a close: the session closes at once, nothing parked."""
        self.client.send(Notify(RESUME_END_ROUTE, b"{}"))
        self.client.drop()
        self.assertEqual(self.frontend.registry.parked, [])
        self.assertIsNone(self.frontend.sessions.get(self.session.id))
        self.assertEqual(self.frontend.clock.getDelayedCalls(), [])

    def test_client_and_server_agree_on_the_end_route(self) -> None:
        """The client's reserved routes are the server's."""
        self.assertEqual(client_routes.RESUME_END_ROUTE, RESUME_END_ROUTE)
        self.assertEqual(client_routes.RESUME_ROUTE, RESUME_ROUTE)

    def test_kick_while_parked_closes(self) -> None:
        """A kick of a parked session (another login...) closes it with the reason."""
        self.client.drop()
        self.frontend.sessions.kick("alice", "another login")
        self.assertEqual(self.closes, ["another login"])
        self.assertEqual(len(self.frontend.registry), 0)
        self.assertEqual(self.frontend.clock.getDelayedCalls(), [])

    def test_kick_of_a_live_session_closes_without_parking(self) -> None:
        """A kick is not a drop: the session closes at once."""
        self.frontend.sessions.kick("alice", "bye")
        self.assertEqual(self.closes, ["bye"])
        self.assertEqual(self.frontend.registry.parked, [])

    def test_broadcast_reaches_parked_and_live_sessions(self) -> None:
        """The broadcast path buffers for the parked session, writes to the live one."""
        other = logged_in(self.frontend, "bob")
        self.client.drop()
        self.frontend.sessions.broadcast("onChat", {"n": 1})
        other.read()
        self.assertEqual(other.texts(), [1])
        again = self.frontend.connect(
            {"token": token_of(self.client), "received": received(self.client)}
        )
        self.assertEqual(again.texts(), [1])

    def test_resume_before_the_server_saw_the_drop(self) -> None:
        """A resume while the old connection still looks alive replaces it."""
        self.frontend.chat(1)
        again = self.frontend.connect({"token": token_of(self.client), "received": 1})
        self.assertIs(again.resume["resumed"], True)
        self.assertFalse(self.client.transport.connected)
        self.assertEqual(again.texts(), [1])
        self.assertIs(self.session.agent, again.agent)
        self.assertEqual(self.closes, [])

    def test_resumed_session_parks_again(self) -> None:
        """A resumed connection that drops parks the session again, and resumes again."""
        self.client.drop()
        again = self.frontend.connect(
            {"token": token_of(self.client), "received": received(self.client)}
        )
        again.drop()
        self.frontend.chat(1)
        count = received(self.client) + received(again)
        third = self.frontend.connect({"token": token_of(again), "received": count})
        self.assertIs(third.resume["resumed"], True)
        self.assertEqual(third.texts(), [1])
        self.frontend.clock.advance(3600)
        self.assertEqual(self.closes, [])
        third.agent.kick("done")
        self.assertEqual(self.closes, ["kicked: done"])
        self.assertIsNone(self.frontend.sessions.get(self.session.id))

    def test_pushes_between_reply_and_ack_are_replayed(self) -> None:
        """Pushes made after the resume's reply and before its ack are not lost."""
        self.client.drop()
        token = token_of(self.client)
        again = self.frontend.connect(
            {"token": token, "received": received(self.client)}, ack=False
        )
        self.frontend.chat(1, 2)
        again.acknowledge()
        self.assertEqual(again.texts(), [1, 2])
        self.assertEqual(self.closes, [])

    def test_resume_never_acknowledged_expires(self) -> None:
        """A claimed session whose new connection never acks still closes at the window."""
        self.client.drop()
        token = token_of(self.client)
        again = self.frontend.connect(
            {"token": token, "received": received(self.client)}, ack=False
        )
        again.drop()
        self.frontend.clock.advance(60)
        self.assertEqual(self.closes, ["client closed"])
        self.assertEqual(len(self.frontend.registry), 0)


@implementer(IBindingClaims)
class RecordingDirectory:
    """Cluster-wide bindings in small: every claim granted, every hook recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def claim(self, uid: str, sid: int) -> Deferred[None]:
        self.calls.append(("claim", uid, sid))
        return succeed(None)

    def bound(self, uid: str, sid: int) -> None:
        self.calls.append(("bound", uid, sid))

    def released(self, uid: str, sid: int) -> None:
        self.calls.append(("released", uid, sid))


class ClusterBindingTests(SynchronousTestCase):
    """With cluster-wide bindings (etcd), a parked session keeps its binding."""

    def setUp(self) -> None:
        self.frontend = Frontend()
        self.directory = RecordingDirectory()
        verifyObject(IBindingClaims, self.directory)
        self.frontend.sessions.directory = self.directory
        self.frontend.sessions.cluster_unique = True
        self.client = logged_in(self.frontend)
        self.session = self.frontend.sessions.get_by_uid("alice")[0]

    def test_parked_session_keeps_its_binding(self) -> None:
        """Parking releases nothing: the uid stays bound to this frontend's session."""
        self.client.drop()
        self.assertNotIn("released", [call[0] for call in self.directory.calls])

    def test_login_elsewhere_kicks_the_parked_session(self) -> None:
        """Another connector's login kicks the uid here: the parked session closes and
        its binding goes; its token is then refused."""
        self.client.drop()
        self.frontend.sessions.kick("alice", ANOTHER_LOGIN)
        self.assertIn(("released", "alice", self.session.id), self.directory.calls)
        self.assertIsNone(self.frontend.sessions.get(self.session.id))
        again = self.frontend.connect({"token": token_of(self.client), "received": 1})
        self.assertIn("is gone", again.resume["refused"])

    def test_expiry_releases_the_binding(self) -> None:
        """At the window's end the binding is released with the session."""
        self.client.drop()
        self.frontend.clock.advance(60)
        self.assertEqual(self.directory.calls[-1], ("released", "alice", self.session.id))
