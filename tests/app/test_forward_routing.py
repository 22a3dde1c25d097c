"""A client request forwarded over PB (in memory, on a Clock): its deadline reaches the
backend, an open breaker answers 503 at once, the hash ring picks the backend."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from pomelo_twisted.budget import remaining
from pomelo_twisted.rpc import consistent_hash_route
from pomelo_twisted.rpc.breaker import OPEN, BreakerSettings
from pomelo_twisted.session.backend import SessionCache

from .test_cluster_routing import CHATS, ClusterCase, FakeSession

LEFT = "chat.deadlineHandler.left"
HOLD = "chat.deadlineHandler.hold"


class DeadlineHandler:
    """Reports the deadline a forwarded request runs within; or holds it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.held: list[Deferred[Any]] = []

    def left(self, session: Any, msg: Any) -> dict[str, Any]:
        return {"left": remaining(self.app.clock), "server": self.app.server_id}

    def hold(self, session: Any, msg: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.held.append(d)
        return d


class ForwardRoutingTests(ClusterCase):
    """Deadlines, breakers and the hash ring on the forward hop."""

    def setUp(self) -> None:
        super().setUp()
        self.handlers = {}
        for chat in CHATS:
            app = self.apps[chat.id]
            self.handlers[chat.id] = DeadlineHandler(app)
            app.register_handler(self.handlers[chat.id], "deadlineHandler")

    def dispatch(self, route: str, uid: str) -> Deferred[Any]:
        d = self.connector.dispatcher.dispatch(route, {}, FakeSession(uid))
        self.flush()
        return d

    def test_backend_runs_within_the_forward_deadline(self) -> None:
        """The backend handler's deadline is the frontend's rpc_timeout (2 s here)."""
        self.connector.set("rpc_timeout", 2.0)
        answer = self.successResultOf(self.dispatch(LEFT, "u1"))
        self.assertEqual(answer["left"], 2.0)

    def test_resend_gets_what_is_left_of_the_deadline(self) -> None:
        """A backend that lost the session answers SESSION_NEEDED 1.5 s into a 2 s
        request: the resend carries the 0.5 s left, not a new 2 s."""
        self.connector.set("rpc_timeout", 2.0)
        session = FakeSession("u1")
        first = self.connector.dispatcher.dispatch(LEFT, {}, session)
        self.flush()
        served = self.successResultOf(first)
        receiver = self.apps[served["server"]].remotes._lookup("pomelo.sys", "forward").__self__  # type: ignore[attr-defined]
        receiver.sessions = SessionCache()  # evicted: the backend asks for the session
        d = self.connector.dispatcher.dispatch(LEFT, {}, session)
        self.clock.advance(0)  # the call leaves
        self.network.flush()  # SESSION_NEEDED is ready at the backend
        self.clock.advance(1.5)  # and reaches the frontend 1.5 s later
        self.flush()
        self.assertEqual(self.successResultOf(d)["left"], 0.5)

    def test_open_breaker_answers_503_at_once(self) -> None:
        """Two forwarded requests time out (504); the breaker of that backend opens and
        the next request is answered 503 without any time passing."""
        self.connector.rpc_transport.breakers.configure(BreakerSettings(2, 30.0))  # type: ignore[attr-defined]
        self.connector.set("rpc_timeout", 1.0)
        for _ in range(2):
            d = self.dispatch(HOLD, "u1")
            self.clock.advance(1.0)
            self.assertEqual(self.successResultOf(d)["code"], 504)
        target = next(sid for sid, h in self.handlers.items() if h.held)
        states = self.connector.rpc_transport.breakers.states()  # type: ignore[attr-defined]
        self.assertEqual(states[target], OPEN)
        d = self.connector.dispatcher.dispatch(LEFT, {}, FakeSession("u1"))
        self.assertEqual(self.successResultOf(d), {"code": 503, "msg": "server unavailable"})
        self.flushLoggedErrors()

    def test_hash_ring_picks_the_backend(self) -> None:
        """With app.route(type, consistent_hash_route()) requests go to the ring's owner."""
        route = consistent_hash_route()
        self.connector.route("chat", route)
        for n in range(20):
            uid = f"user-{n}"
            answer = self.successResultOf(self.dispatch(LEFT, uid))
            self.assertEqual(answer["server"], route(uid, CHATS))
