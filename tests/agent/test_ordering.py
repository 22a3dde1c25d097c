"""Per-user ordering: one connection's requests and notifies are handed over in arrival
order, each once the previous one is answered (pomelo_twisted.agent.ordering)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import msgpack
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.acceptors import AgentPool
from pomelo_twisted.agent import AgentConfig
from pomelo_twisted.agent.negotiation import SerializerNegotiator
from pomelo_twisted.agent.ordering import DROPPED_NOTIFY
from pomelo_twisted.app.components import ConnectorComponent
from pomelo_twisted.handlers import HandlerRegistry, concurrent
from pomelo_twisted.handlers.concurrency import (
    concurrent_methods,
    concurrent_routes,
    concurrent_routes_of_game,
)
from pomelo_twisted.interfaces import IAgent
from pomelo_twisted.protocol import Notify, Request, Response
from pomelo_twisted.responses import EncodedBody
from pomelo_twisted.testing import EchoHandler, echo_dictionary

from ..app.test_lifecycle import frontend_app
from .helpers import Connection, connect, make_agents

ECHO = "connector.entryHandler.echo"
PUSH = "connector.entryHandler.push"
FAIL = "connector.entryHandler.fail"
FORWARDED = "chat.chatHandler.send"
PEEK = "chat.chatHandler.peek"
LATER_NOTIFY = "chat.chatHandler.leave"
KICK_NOW = "connector.entryHandler.quit"


class BackendHandler(EchoHandler):
    """The echo handler, plus routes of another server type answered later, as a
    frontend answers forwarded requests: a Deferred of the backend's encoded body,
    fired by the test (``backend``, in hand-over order)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.backend: list[tuple[str, object, Deferred[object]]] = []
        self.seen: list[str] = []

    def request(self, agent: IAgent, route: str, body: bytes) -> object:
        self.seen.append(route)
        if route.startswith("chat."):
            d: Deferred[object] = Deferred()
            self.backend.append((route, agent.serializer.decode(body), d))
            return d
        if route == KICK_NOW:
            agent.kick("bye")
            return {}
        return super().request(agent, route, body)

    def notify(self, agent: IAgent, route: str, body: bytes) -> object:
        self.seen.append(route)
        if route.startswith("chat."):
            d: Deferred[object] = Deferred()
            self.backend.append((route, agent.serializer.decode(body), d))
            return d
        return super().notify(agent, route, body)

    def answer(self, index: int, body: object = None) -> None:
        """The backend answers the ``index``-th forwarded request (its own body by default)."""
        _, msg, d = self.backend[index]
        d.callback(EncodedBody(json.dumps(msg if body is None else body).encode()))


def ordered(
    config: AgentConfig | None = None, serializer: str | None = None
) -> tuple[Connection, BackendHandler]:
    """A connection (ordered unless ``config`` says not; asking for ``serializer``) to a
    :class:`BackendHandler`."""
    clock = Clock()
    handler = BackendHandler(clock)
    agents = AgentPool(
        handler,
        clock,
        config=config or AgentConfig(heartbeat=None),
        dictionary=echo_dictionary(),
        negotiators=[SerializerNegotiator()],
    )
    sys = {"serializer": serializer} if serializer is not None else None
    return connect(agents=agents, sys=sys), handler


class OrderTests(SynchronousTestCase):
    """Answers come in arrival order; the next is handed over once the previous is answered."""

    def test_slow_local_then_fast_forwarded(self) -> None:
        """A slow local request then a fast forwarded one: answered in that order, and the
        forwarded one reaches the backend only after the first is answered."""
        conn, handler = ordered()
        conn.request(1, ECHO, {"delayMs": 500, "n": 1})
        conn.request(2, FORWARDED, {"n": 2})
        self.assertEqual(handler.seen, [ECHO])
        self.assertEqual(conn.responses(), [])
        order = conn.agent.requests.order
        assert order is not None
        self.assertEqual(order.queued, 1)
        conn.clock.advance(0.5)
        self.assertEqual(conn.responses(), [(1, {"delayMs": 500, "n": 1})])
        self.assertEqual(handler.seen, [ECHO, FORWARDED])
        handler.answer(0)
        self.assertEqual(conn.responses(), [(2, {"n": 2})])
        self.assertEqual(conn.agent.requests.admission.inflight, 0)

    def test_unordered_overtakes(self) -> None:
        """With ``ordered=False`` the fast forwarded request overtakes the slow local one."""
        conn, handler = ordered(AgentConfig(heartbeat=None, ordered=False))
        conn.request(1, ECHO, {"delayMs": 500})
        conn.request(2, FORWARDED, {"n": 2})
        handler.answer(0)
        self.assertEqual(conn.responses(), [(2, {"n": 2})])
        conn.clock.advance(0.5)
        self.assertEqual(conn.responses(), [(1, {"delayMs": 500})])

    def test_burst_answered_in_arrival_order(self) -> None:
        """Forwarded requests answered by the backend in reverse still reach the client in
        arrival order, each handed over after the previous answer."""
        conn, handler = ordered()
        for msg_id in (1, 2, 3):
            conn.request(msg_id, FORWARDED, {"n": msg_id})
        conn.request(4, ECHO, {"n": 4})
        for index in range(3):
            self.assertEqual(len(handler.backend), index + 1)
            handler.answer(index)
        self.assertEqual(
            conn.responses(), [(1, {"n": 1}), (2, {"n": 2}), (3, {"n": 3}), (4, {"n": 4})]
        )

    def test_immediate_answers_leave_no_timer(self) -> None:
        """A request answered at once starts no timer; a held one arms the connection's
        one order deadline, which goes when it passes with nothing held."""
        conn, handler = ordered()
        conn.request(1, ECHO, {"n": 1})
        self.assertEqual(conn.clock.getDelayedCalls(), [])
        conn.request(2, FORWARDED, {"n": 2})
        handler.answer(0)
        conn.request(3, FORWARDED, {"n": 3})
        handler.answer(1)
        self.assertEqual(len(conn.clock.getDelayedCalls()), 1)
        conn.clock.advance(10)
        self.assertEqual(conn.clock.getDelayedCalls(), [])
        self.assertEqual(conn.responses(), [(1, {"n": 1}), (2, {"n": 2}), (3, {"n": 3})])
        self.assertEqual(conn.agents.metrics.ordering_timeouts, 0)

    def test_failure_of_held_request_answered_and_releases(self) -> None:
        """A held request that fails is answered through failure_response; the next goes on."""
        conn, handler = ordered()
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, ECHO, {"n": 2})
        handler.backend[0][2].errback(RuntimeError("backend exploded"))
        self.assertEqual(
            conn.responses(),
            [(1, {"code": 500, "msg": "internal server error"}), (2, {"n": 2})],
        )
        self.flushLoggedErrors(RuntimeError)

    def test_queued_failure_raised_at_once(self) -> None:
        """A queued request whose handler raises is answered 500 and the queue goes on."""
        conn, handler = ordered()
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, FAIL)
        conn.request(3, ECHO, {"n": 3})
        handler.answer(0)
        self.assertEqual(
            conn.responses(),
            [(1, {"n": 1}), (2, {"code": 500, "msg": "internal server error"}), (3, {"n": 3})],
        )
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(conn.agent.requests.admission.inflight, 0)


class TimeoutTests(SynchronousTestCase):
    """A stuck request cannot hold the player's queue forever."""

    def test_stuck_request_times_out_and_releases(self) -> None:
        """Past ``order_timeout`` the stuck request is answered 504 and the next one runs;
        its late answer is dropped and counted."""
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        conn, handler = ordered(AgentConfig(heartbeat=None, order_timeout=2.0))
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, ECHO, {"n": 2})
        conn.clock.advance(1.9)
        self.assertEqual(conn.responses(), [])
        conn.clock.advance(0.1)
        self.assertEqual(
            conn.responses(), [(1, {"code": 504, "msg": "request timed out"}), (2, {"n": 2})]
        )
        self.assertEqual(conn.agents.metrics.ordering_timeouts, 1)
        held = [formatEvent(e) for e in logged if "held the order" in formatEvent(e)]
        self.assertEqual(len(held), 1)
        self.assertIn(FORWARDED, held[0])
        handler.answer(0)
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agents.metrics.late_answers, 1)
        self.assertEqual(conn.agent.requests.admission.inflight, 0)

    def test_timeout_counts_from_when_the_request_was_handed_over(self) -> None:
        """The deadline armed for an earlier request moves on for a later one: a request
        held from t=5 times out at t=15, not at t=10."""
        conn, handler = ordered(AgentConfig(heartbeat=None, order_timeout=10.0))
        conn.request(1, FORWARDED, {"n": 1})
        conn.clock.advance(1)
        handler.answer(0)
        conn.clock.advance(4)
        conn.request(2, FORWARDED, {"n": 2})
        conn.clock.advance(5)  # t=10: the first deadline, re-armed for t=15
        self.assertEqual(conn.responses(), [(1, {"n": 1})])
        conn.clock.advance(4.9)
        self.assertEqual(conn.responses(), [])
        conn.clock.advance(0.1)
        self.assertEqual(conn.responses(), [(2, {"code": 504, "msg": "request timed out"})])

    def test_late_answer_does_not_release_the_next_held(self) -> None:
        """The late answer of a timed-out request neither answers nor releases the one
        holding the order after it."""
        conn, handler = ordered(AgentConfig(heartbeat=None, order_timeout=1.0))
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, FORWARDED, {"n": 2})
        conn.request(3, ECHO, {"n": 3})
        conn.clock.advance(1.0)
        self.assertEqual(conn.responses(), [(1, {"code": 504, "msg": "request timed out"})])
        handler.answer(0)
        self.assertEqual(conn.responses(), [])
        handler.answer(1)
        self.assertEqual(conn.responses(), [(2, {"n": 2}), (3, {"n": 3})])

    def test_timeout_answer_in_the_connection_serializer(self) -> None:
        """A msgpack client's timed-out request is answered 504 in msgpack, then the next."""
        conn, _ = ordered(AgentConfig(heartbeat=None, order_timeout=1.0), "msgpack")
        for msg_id, route in ((1, FORWARDED), (2, ECHO)):
            conn.send(Request(msg_id, route, msgpack.packb({"n": msg_id})))
        conn.clock.advance(1.0)
        answers = [
            (e.id, msgpack.unpackb(e.body)) for e in conn.events() if isinstance(e, Response)
        ]
        self.assertEqual(answers, [(1, {"code": 504, "msg": "request timed out"}), (2, {"n": 2})])

    def test_stuck_notify_times_out(self) -> None:
        """A notify whose result never comes releases the queue at the timeout, answering
        nothing."""
        conn, handler = ordered(AgentConfig(heartbeat=None, order_timeout=1.0))
        conn.send(Notify(LATER_NOTIFY, b'{"n": 1}'))
        conn.request(2, ECHO, {"n": 2})
        self.assertEqual(conn.responses(), [])
        conn.clock.advance(1.0)
        self.assertEqual(conn.responses(), [(2, {"n": 2})])
        self.assertEqual(conn.agents.metrics.ordering_timeouts, 1)
        handler.answer(0)
        self.assertEqual(conn.agents.metrics.late_answers, 0)


class ConcurrentRouteTests(SynchronousTestCase):
    """Routes declared concurrent neither wait nor hold the queue."""

    def test_concurrent_route_overtakes(self) -> None:
        """A concurrent request is handed over while another holds the order, is answered
        when its own answer comes, and does not hold what follows."""
        conn, handler = ordered(AgentConfig(heartbeat=None, concurrent_routes=frozenset({PEEK})))
        conn.request(1, ECHO, {"delayMs": 500})
        conn.request(2, PEEK, {"n": 2})
        self.assertEqual(handler.seen, [ECHO, PEEK])
        handler.answer(0)
        self.assertEqual(conn.responses(), [(2, {"n": 2})])
        conn.clock.advance(0.5)
        self.assertEqual(conn.responses(), [(1, {"delayMs": 500})])

    def test_pending_concurrent_route_holds_nothing(self) -> None:
        """While a concurrent request waits for its answer, the next request runs at once."""
        conn, handler = ordered(AgentConfig(heartbeat=None, concurrent_routes=frozenset({PEEK})))
        conn.request(1, PEEK, {"n": 1})
        conn.request(2, ECHO, {"n": 2})
        self.assertEqual(conn.responses(), [(2, {"n": 2})])
        handler.answer(0)
        self.assertEqual(conn.responses(), [(1, {"n": 1})])


class NotifyOrderTests(SynchronousTestCase):
    """Notifies keep their place in the order too."""

    def test_notify_waits_behind_pending_request(self) -> None:
        """A notify sent after a pending request reaches the handler once it is answered."""
        conn, handler = ordered()
        conn.request(1, FORWARDED, {"n": 1})
        conn.send(Notify(PUSH, b'{"after": 1}'))
        self.assertEqual(handler.notified, [])
        handler.answer(0)
        self.assertEqual(handler.notified, [(PUSH, {"after": 1})])

    def test_request_waits_behind_pending_notify(self) -> None:
        """A forwarded notify holds the order until the backend has taken it."""
        conn, handler = ordered()
        conn.send(Notify(LATER_NOTIFY, b'{"n": 1}'))
        conn.request(2, ECHO, {"n": 2})
        self.assertEqual(conn.responses(), [])
        handler.answer(0)
        self.assertEqual(conn.responses(), [(2, {"n": 2})])


class BoundsTests(SynchronousTestCase):
    """The queue is bounded, and closing the connection drops it."""

    def test_queued_requests_count_in_flight(self) -> None:
        """A queued request counts against ``max_inflight``: one more is answered 503 at once."""
        conn, handler = ordered(AgentConfig(heartbeat=None, max_inflight=2))
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, ECHO, {"n": 2})
        conn.request(3, ECHO, {"n": 3})
        self.assertEqual(
            conn.responses(), [(3, {"code": 503, "msg": "too many requests in flight"})]
        )
        handler.answer(0)
        self.assertEqual(conn.responses(), [(1, {"n": 1}), (2, {"n": 2})])
        self.assertEqual(conn.agent.requests.admission.inflight, 0)

    def test_notifies_over_the_bound_dropped(self) -> None:
        """Queued notifies are bounded by ``max_inflight``: one more is dropped and counted."""
        conn, handler = ordered(AgentConfig(heartbeat=None, max_inflight=2))
        conn.request(1, FORWARDED, {"n": 1})
        for n in range(3):
            conn.send(Notify(PUSH, json.dumps({"n": n}).encode()))
        self.assertEqual(conn.agents.metrics.dropped[DROPPED_NOTIFY], 1)
        handler.answer(0)
        self.assertEqual(handler.notified, [(PUSH, {"n": 0}), (PUSH, {"n": 1})])

    def test_close_while_queued(self) -> None:
        """Closing drops the queue: nothing queued reaches the handler, the held answer is
        dropped and counted, no timer stays behind."""
        conn, handler = ordered()
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, ECHO, {"n": 2})
        conn.send(Notify(PUSH, b"{}"))
        conn.transport.loseConnection()
        handler.answer(0)
        self.assertEqual(handler.seen, [FORWARDED])
        self.assertEqual(conn.written(), b"")
        self.assertEqual(conn.agents.metrics.responses_dropped, 1)
        self.assertEqual(conn.agents.metrics.late_answers, 0)
        self.assertEqual(conn.clock.getDelayedCalls(), [])

    def test_kick_while_handing_over_stops_the_queue(self) -> None:
        """A queued request whose handler kicks the client stops the queue there: what
        was queued after it never reaches the handler."""
        conn, handler = ordered()
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, KICK_NOW)
        conn.request(3, ECHO, {"n": 3})
        handler.answer(0)
        self.assertEqual(handler.seen, [FORWARDED, KICK_NOW])
        self.assertFalse(conn.open)


class TurnTests(SynchronousTestCase):
    """A long queue is handed over a slice per reactor turn, like a long read."""

    def test_queue_handed_over_in_slices(self) -> None:
        """At most ``slice_events`` queued requests run per turn; one arriving meanwhile
        waits behind the rest."""
        conn, handler = ordered(AgentConfig(heartbeat=None, slice_events=2))
        conn.request(1, FORWARDED, {"n": 1})
        for msg_id in range(2, 7):
            conn.request(msg_id, ECHO, {"n": msg_id})
        handler.answer(0)
        self.assertEqual([i for i, _ in conn.responses()], [1, 2, 3])
        order = conn.agent.requests.order
        assert order is not None
        self.assertEqual(order.queued, 3)  # for the next turn
        conn.request(7, ECHO, {"n": 7})
        self.assertEqual(conn.responses(), [])
        self.assertEqual(order.queued, 4)
        conn.clock.advance(0)  # (a Clock runs the turns it schedules at once)
        self.assertEqual([i for i, _ in conn.responses()], [4, 5, 6, 7])
        self.assertEqual(order.queued, 0)

    def test_close_cancels_the_next_turn(self) -> None:
        """Closing while queued ones wait for the next turn hands none of them over."""
        conn, handler = ordered(AgentConfig(heartbeat=None, slice_events=1))
        conn.request(1, FORWARDED, {"n": 1})
        conn.request(2, ECHO, {"n": 2})
        conn.request(3, ECHO, {"n": 3})
        handler.answer(0)
        conn.transport.loseConnection()
        self.assertEqual(conn.clock.getDelayedCalls(), [])
        self.assertEqual(handler.seen, [FORWARDED, ECHO])


class LazyOrderTests(SynchronousTestCase):
    """A connection holds an order only once a result comes later (memory per connection)."""

    def test_answered_at_once_holds_no_order(self) -> None:
        """Requests answered at once (and idle connections) never make an order."""
        conn, _ = ordered()
        conn.request(1, ECHO, {"n": 1})
        self.assertEqual(conn.responses(), [(1, {"n": 1})])
        self.assertIsNone(conn.agent.requests.order)

    def test_first_later_result_makes_it(self) -> None:
        """The first request whose result comes later makes the connection's order."""
        conn, _ = ordered()
        conn.request(1, ECHO, {"delayMs": 10, "n": 1})
        self.assertIsNotNone(conn.agent.requests.order)

    def test_connections_of_a_listener_share_one_maker(self) -> None:
        """The listener's agents share one OrderMaker; ordering off: none at all."""
        agents = make_agents(AgentConfig())
        first, second = connect(agents=agents), connect(agents=agents)
        self.assertIsNotNone(agents.orders)
        self.assertIs(first.agent.requests.orders, agents.orders)
        self.assertIs(second.agent.requests.orders, agents.orders)
        self.assertIsNone(make_agents(AgentConfig(ordered=False)).orders)


class ConfigTests(SynchronousTestCase):
    """The ordering settings."""

    def test_defaults(self) -> None:
        """Ordering is on by default with a 10 s timeout and no concurrent route."""
        config = AgentConfig()
        self.assertTrue(config.ordered)
        self.assertEqual(config.order_timeout, 10.0)
        self.assertEqual(config.concurrent_routes, frozenset())

    def test_from_mapping(self) -> None:
        """A settings file gives concurrent routes as a list, ordering off as ``ordered: false``."""
        config = AgentConfig.from_mapping(
            {"ordered": False, "order_timeout": 3, "concurrent_routes": [PEEK]}
        )
        self.assertFalse(config.ordered)
        self.assertEqual(config.order_timeout, 3)
        self.assertEqual(config.concurrent_routes, frozenset({PEEK}))

    def test_bad_values_refused(self) -> None:
        """A non-positive timeout or routes that are not names are refused by name."""
        with self.assertRaisesRegex(ValueError, "order_timeout"):
            AgentConfig(order_timeout=0)
        with self.assertRaisesRegex(ValueError, "concurrent_routes"):
            AgentConfig.from_mapping({"concurrent_routes": PEEK})
        with self.assertRaisesRegex(ValueError, "concurrent_routes"):
            AgentConfig.from_mapping({"concurrent_routes": [1]})


class Shop:
    """A handler with one concurrent method."""

    @concurrent
    def prices(self, msg: object, session: object) -> object:
        """Marked concurrent."""
        return msg

    def buy(self, msg: object, session: object) -> object:
        """Not marked."""
        return msg


GAME_HANDLER = """
from pomelo_twisted.handlers import concurrent

class RoomHandler:
    def __init__(self, app):
        self.app = app

    @concurrent
    def look(self, msg, session):
        return msg

    def move(self, msg, session):
        return msg
"""


class ConcurrentDeclarationTests(SynchronousTestCase):
    """``@concurrent`` marks handler methods; a frontend collects the marked routes."""

    def test_marked_methods(self) -> None:
        """Only the marked method of a class is concurrent."""
        self.assertEqual(concurrent_methods(Shop), frozenset({"prices"}))

    def test_not_a_method_refused(self) -> None:
        """Marking something that is not callable fails naming it."""
        with self.assertRaisesRegex(TypeError, "@concurrent"):
            concurrent(3)  # type: ignore[type-var]

    def test_routes_of_registry_and_game(self) -> None:
        """The routes of registered handlers and of every server type's handler files."""
        base = Path(tempfile.mkdtemp(prefix="pomelo-concurrent-"))
        self.addCleanup(shutil.rmtree, base)
        folder = base / "servers" / "area" / "handler"
        folder.mkdir(parents=True)
        (folder / "roomHandler.py").write_text(GAME_HANDLER)
        registry = HandlerRegistry()
        registry.register("connector", "shop", Shop())
        self.assertEqual(concurrent_routes_of_game(base, ["area"]), {"area.roomHandler.look"})
        self.assertEqual(
            concurrent_routes(registry, base, ["area", "connector"]),
            {"area.roomHandler.look", "connector.shop.prices"},
        )
        self.assertEqual(concurrent_routes(registry, None, ["area"]), {"connector.shop.prices"})


class ConnectorWiringTests(SynchronousTestCase):
    """A frontend's agents get the routes marked concurrent and the connector settings."""

    def test_marked_and_configured_routes_reach_the_agents(self) -> None:
        """The connector's config holds the registered handlers' marked routes and those of
        its ``concurrent_routes`` setting; ``ordered: false`` reaches it too."""
        app = frontend_app(MemoryReactorClock())
        app.register_handler(Shop(), "shop")
        app.set("connector", {"concurrent_routes": [PEEK], "ordered": False})
        connector = app.load(ConnectorComponent(app))
        app.privilegedStartService()
        assert connector.agents is not None
        config = connector.agents.config
        self.assertEqual(config.concurrent_routes, {PEEK, "connector.shop.prices"})
        self.assertFalse(config.ordered)
