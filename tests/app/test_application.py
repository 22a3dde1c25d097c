"""The Application through its own API: lifecycle, components, configure, settings,
filters, handlers and route overrides."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.exceptions import Invalid

from pomelo_twisted.app import Application
from pomelo_twisted.app.build import StandaloneService
from pomelo_twisted.app.lifecycle import PhaseError
from pomelo_twisted.errors import ConfigError, HandlerError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.interfaces import IComponent
from pomelo_twisted.rpc import LocalRpcTransport
from pomelo_twisted.rpc.router import default_route

from .helpers import TWOFRONT, start_game


@implementer(IComponent)
class FakeComponent:
    """A component recording its phases; ``hold`` makes ``start`` wait for the test."""

    def __init__(
        self, name: str, events: list[tuple[Any, ...]], *, hold: bool = False, fail: str = ""
    ) -> None:
        self.name = name
        self.events = events
        self.hold = hold
        self.fail = fail
        self.pending: Deferred[None] | None = None

    def start(self) -> object:
        self.events.append(("start", self.name))
        if self.fail:
            raise RuntimeError(self.fail)
        if self.hold:
            self.pending = Deferred()
            return self.pending
        return None

    def after_start(self) -> None:
        self.events.append(("after_start", self.name))

    def stop(self, force: bool) -> None:
        self.events.append(("stop", self.name, force))


class Hooked:
    """A module, handler or remote with every lifecycle hook (and one route, ``ping``)."""

    def __init__(self, label: str, events: list[tuple[Any, ...]]) -> None:
        self.label = label
        self.events = events
        self.held: dict[str, Deferred[None]] = {}

    def _record(self, hook: str) -> object:
        self.events.append((hook, self.label))
        return self.held.get(hook)

    def init(self) -> object:
        return self._record("init")

    def after_init(self) -> object:
        return self._record("after_init")

    def before_shutdown(self) -> object:
        return self._record("before_shutdown")

    def shutdown(self) -> object:
        return self._record("shutdown")

    def ping(self, session: Any, msg: Any) -> str:
        return "pong"


class LobbyHandler:
    """Plain, Deferred and async routes, and both failure kinds."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def plain(self, session: Any, msg: Any) -> Any:
        return {"plain": msg}

    def later(self, session: Any, msg: Any) -> Deferred[Any]:
        return deferLater(self.clock, 2.0, lambda: {"later": msg})

    async def coro(self, session: Any, msg: Any) -> Any:
        await deferLater(self.clock, 1.0, lambda: None)
        return {"coro": msg}

    def refuse(self, session: Any, msg: Any) -> None:
        raise HandlerError(403, "not allowed")

    def crash(self, session: Any, msg: Any) -> None:
        raise ZeroDivisionError("bug")


class FakeSession:
    """What a dispatcher needs of a session."""

    id = 1
    uid = None
    frontend_id = "connector-1"


def make_app(
    server_type: str = "chat", *, env: str = "development", transport: Any = None
) -> Application:
    """An Application of ``server_type`` on a fresh Clock, with no component loaded."""
    clock = Clock()
    frontend = server_type == "connector"
    server = ServerInfo(
        id=f"{server_type}-1",
        type=server_type,
        frontend=frontend,
        client_port=3010 if frontend else None,
    )
    return Application(
        server,
        reactor=clock,
        rpc=transport if transport is not None else LocalRpcTransport(clock),
        servers={server_type: [server]},
        env=env,
    )


def result_of(d: Deferred[Any]) -> Any:
    """The result a Deferred has already fired with."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def capture_log(test: SynchronousTestCase) -> list[dict[str, Any]]:
    """Every log event emitted until the test ends."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class LifecycleTests(SynchronousTestCase):
    """startService, after_start and stopService with recording components and hooks."""

    def setUp(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.app = make_app()

    def load(self, name: str, **kwargs: Any) -> FakeComponent:
        component = FakeComponent(name, self.events, **kwargs)
        self.app.load(component)
        return component

    def hooked(self) -> tuple[Hooked, Hooked, Hooked]:
        module, handler, remote = (Hooked(label, self.events) for label in ("m", "h", "r"))
        self.app.register_module(module, "pool")
        self.app.register_handler(handler, "hooked")
        self.app.register_remote(remote, "hookedRemote")
        return module, handler, remote

    def test_components_start_in_load_order_each_waiting_for_the_previous(self) -> None:
        """A component starts only once the previous one's start Deferred has fired."""
        first = self.load("a", hold=True)
        self.load("b")
        self.load("c")
        self.app.startService()
        self.assertEqual(self.events, [("start", "a")])
        self.assertNoResult(self.app.started)
        assert first.pending is not None
        first.pending.callback(None)
        self.assertEqual(self.events, [("start", "a"), ("start", "b"), ("start", "c")])
        self.assertIsNone(self.successResultOf(self.app.started))

    def test_modules_handlers_and_remotes_init_after_components(self) -> None:
        """init then after_init of modules, handlers and remotes run once components are up."""
        first = self.load("a", hold=True)
        self.hooked()
        self.app.startService()
        self.assertEqual(self.events, [("start", "a")])
        assert first.pending is not None
        first.pending.callback(None)
        self.assertEqual(
            self.events,
            [
                ("start", "a"),
                ("init", "m"),
                ("init", "h"),
                ("init", "r"),
                ("after_init", "m"),
                ("after_init", "h"),
                ("after_init", "r"),
            ],
        )
        self.assertEqual(list(self.app.handler_routes()), ["chat.hooked.ping"])

    def test_started_waits_for_a_hook_deferred(self) -> None:
        """A module's init Deferred holds after_init and ``started`` until it fires."""
        module, _, _ = self.hooked()
        module.held["init"] = Deferred()
        self.app.startService()
        self.assertEqual(self.events, [("init", "m")])
        self.assertNoResult(self.app.started)
        module.held["init"].callback(None)
        self.assertEqual(self.events[-1], ("after_init", "r"))
        self.successResultOf(self.app.started)

    def test_after_start_runs_once(self) -> None:
        """after_start reaches every component in load order once; a second call is a no-op."""
        self.load("a")
        self.load("b")
        self.app.startService()
        del self.events[:]
        self.successResultOf(self.app.after_start())
        self.successResultOf(self.app.after_start())
        self.assertEqual(self.events, [("after_start", "a"), ("after_start", "b")])

    def test_stop_runs_shutdown_hooks_then_components_in_reverse(self) -> None:
        """Stopping: before_shutdown, shutdown (modules, handlers, remotes), then
        components stop(force=False) in reverse load order."""
        for name in "abc":
            self.load(name)
        self.hooked()
        self.app.startService()
        del self.events[:]
        self.successResultOf(self.app.stopService())
        self.assertEqual(
            self.events,
            [
                ("before_shutdown", "m"),
                ("before_shutdown", "h"),
                ("before_shutdown", "r"),
                ("shutdown", "m"),
                ("shutdown", "h"),
                ("shutdown", "r"),
                ("stop", "c", False),
                ("stop", "b", False),
                ("stop", "a", False),
            ],
        )
        self.assertFalse(self.app.running)

    def test_stop_waits_for_each_hook(self) -> None:
        """A before_shutdown Deferred holds shutdown and the components' stop."""
        self.load("a")
        module, _, _ = self.hooked()
        self.app.startService()
        module.held["before_shutdown"] = Deferred()
        del self.events[:]
        stopped = self.app.stopService()
        self.assertEqual(self.events, [("before_shutdown", "m")])
        self.assertNoResult(stopped)
        module.held["before_shutdown"].callback(None)
        self.successResultOf(stopped)
        self.assertEqual(self.events[-1], ("stop", "a", False))

    def test_stop_goes_on_past_a_failing_step(self) -> None:
        """A failing shutdown hook is logged; every later step still runs."""
        self.load("a")
        self.load("b")
        module, _, _ = self.hooked()
        self.app.startService()
        module.held["shutdown"] = fail(RuntimeError("pool already closed"))
        del self.events[:]
        self.successResultOf(self.app.stopService())
        self.assertEqual(self.events[-2:], [("stop", "b", False), ("stop", "a", False)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failing_component_start(self) -> None:
        """A component failing to start: later ones never start, no hook runs, ``started``
        errbacks, on_start_failure runs once, and a critical line names the server."""
        log_events = capture_log(self)
        self.load("a")
        self.load("b", fail="disk gone")
        self.load("c")
        self.hooked()
        failures: list[Failure] = []
        reported: list[Failure] = []
        self.app.started.addErrback(failures.append)
        self.app.on_start_failure = reported.append
        self.app.startService()
        self.assertEqual(self.events, [("start", "a"), ("start", "b")])
        self.assertEqual(len(failures), 1)
        error = failures[0].value
        self.assertIsInstance(error, PhaseError)
        assert isinstance(error, PhaseError)
        self.assertEqual((error.phase, error.name), ("start", "b"))
        self.assertIn("disk gone", str(error))
        self.assertEqual(len(reported), 1)
        self.assertIs(reported[0].value, error)
        critical = [
            formatEvent(e)
            for e in log_events
            if e.get("log_level") is LogLevel.critical and "log_failure" not in e
        ]
        self.assertEqual(len(critical), 1)
        self.assertIn("chat-1", critical[0])
        self.assertIn("failed to start", critical[0])
        self.assertIn("disk gone", critical[0])
        self.assertEqual(len(self.flushLoggedErrors(PhaseError)), 1)

    def test_asynchronous_start_failure(self) -> None:
        """A start Deferred that fails later stops the start the same way."""
        first = self.load("a", hold=True)
        self.load("b")
        reported: list[Failure] = []
        self.app.on_start_failure = reported.append
        failures: list[Failure] = []
        self.app.started.addErrback(failures.append)
        self.app.startService()
        assert first.pending is not None
        first.pending.errback(RuntimeError("no route to db"))
        self.assertEqual(self.events, [("start", "a")])
        self.assertEqual(len(failures), 1)
        self.assertIsInstance(failures[0].value, PhaseError)
        self.assertEqual(len(reported), 1)
        self.assertEqual(len(self.flushLoggedErrors(PhaseError)), 1)

    def test_standalone_reports_a_synchronous_start_failure(self) -> None:
        """StandaloneService.all_started fails when one server fails inside startService."""
        transport = LocalRpcTransport(Clock())
        good, bad = make_app("chat", transport=transport), make_app("gate", transport=transport)
        good.load(FakeComponent("ok", self.events))
        bad.load(FakeComponent("broken", self.events, fail="port taken"))
        service = StandaloneService([good, bad])
        failures: list[Failure] = []
        service.all_started.addErrback(failures.append)
        service.startService()
        self.assertEqual(len(failures), 1)
        self.assertIn("port taken", str(failures[0].value))
        self.assertEqual(self.events, [("start", "ok"), ("start", "broken")])
        self.assertEqual(len(self.flushLoggedErrors(PhaseError)), 1)


class LoadTests(SynchronousTestCase):
    """app.load and app.register_module refuse what they cannot run."""

    def test_load_refuses_a_duplicate_name(self) -> None:
        """A second component with a loaded name (its own or given) is refused."""
        app = make_app()
        events: list[tuple[Any, ...]] = []
        first = app.load(FakeComponent("db", events))
        self.assertRaises(ConfigError, app.load, FakeComponent("db", events))
        self.assertRaises(ConfigError, app.load, FakeComponent("other", events), "db")
        self.assertIs(app.load(FakeComponent("db", events), "db2").name, "db")
        self.assertEqual(list(app.components), ["db", "db2"])
        self.assertIs(app.components["db"], first)

    def test_load_refuses_a_non_component(self) -> None:
        """An object not providing IComponent (or providing it incompletely) is refused."""

        class Undeclared:
            name = "undeclared"

            def start(self) -> None: ...
            def after_start(self) -> None: ...
            def stop(self, force: bool) -> None: ...

        @implementer(IComponent)
        class Incomplete:
            name = "incomplete"

            def start(self) -> None: ...

        app = make_app()
        self.assertRaises(Invalid, app.load, Undeclared())  # type: ignore[arg-type]
        self.assertRaises(Invalid, app.load, Incomplete())
        self.assertEqual(app.components, {})

    def test_register_module_refuses_a_duplicate_name(self) -> None:
        """A module name is registered once."""
        app = make_app()
        app.register_module(object(), "pool")
        self.assertRaises(ConfigError, app.register_module, object(), "pool")


class ConfigureTests(SynchronousTestCase):
    """app.configure selectors and app.set/get."""

    def test_configure_matches_env_and_type(self) -> None:
        """configure runs fn when env and type match: "a|b" selects several, None any."""
        app = make_app("chat", env="production")
        ran: list[str] = []
        cases = {
            "both": ("development|production", "chat"),
            "any-env": (None, "connector|chat"),
            "any-type": ("production", None),
            "anything": (None, None),
            "wrong-env": ("development", "chat"),
            "wrong-type": (None, "connector"),
            "prefix-only": ("prod", None),
            "wrong-both": ("development", "gate|connector"),
        }
        for label, (env, server_type) in cases.items():
            app.configure(env, server_type, lambda a, label=label: ran.append(label))
        self.assertEqual(ran, ["both", "any-env", "any-type", "anything"])

    def test_configure_passes_the_application(self) -> None:
        """fn receives the application itself."""
        app = make_app()
        seen: list[Application] = []
        app.configure(None, None, seen.append)
        self.assertEqual(seen, [app])

    def test_set_and_get(self) -> None:
        """set stores (and chains), get returns the value or the default."""
        app = make_app()
        self.assertIs(app.set("rpc_timeout", 2.5).set("motd", "hi"), app)
        self.assertEqual(app.get("rpc_timeout"), 2.5)
        self.assertEqual(app.get("motd"), "hi")
        self.assertIsNone(app.get("missing"))
        self.assertEqual(app.get("missing", 7), 7)
        app.set("motd", None)
        self.assertIsNone(app.get("motd", "default"))


class FilterAndHandlerTests(SynchronousTestCase):
    """Filters, the error handler and handlers registered on the app reach its dispatcher."""

    def setUp(self) -> None:
        self.app = make_app("connector")
        self.clock = self.app.clock
        self.order: list[str] = []

    def dispatch(self, route: str, msg: Any = None) -> Any:
        return result_of(self.app.dispatcher.dispatch(route, msg, FakeSession()))

    def before(self, label: str) -> Any:
        return lambda context: self.order.append(label)

    def after(self, label: str) -> Any:
        return lambda context, response: self.order.append(label)

    def test_type_selector_decides_which_filters_reach_the_dispatcher(self) -> None:
        """Filters for another server type are dropped; matching ones join the chains."""

        class Both:
            def __init__(self, order: list[str]) -> None:
                self.order = order

            def before(self, context: Any) -> None:
                self.order.append("both-before")

            def after(self, context: Any, response: Any) -> None:
                self.order.append("both-after")

        self.app.register_handler(Hooked("h", []), "lobby")
        self.app.before(self.before("global-before"))
        self.app.before(self.before("chat-before"), "chat")
        self.app.before(self.before("conn-before"), "gate|connector")
        self.app.after(self.after("global-after"))
        self.app.after(self.after("chat-after"), "chat")
        self.app.after(self.after("conn-after"), "connector")
        self.app.filter(Both(self.order), "connector")
        self.app.filter(Both(self.order), "chat")
        self.assertEqual(len(self.app.dispatcher.before_filters("connector")), 3)
        self.assertEqual(len(self.app.dispatcher.after_filters("connector")), 3)
        self.assertEqual(self.dispatch("connector.lobby.ping"), "pong")
        self.assertEqual(
            self.order,
            [
                "global-before",
                "conn-before",
                "both-before",
                "global-after",
                "conn-after",
                "both-after",
            ],
        )

    def test_global_filters_run_before_type_filters(self) -> None:
        """Global filters run before type-selected ones whatever the registration order."""
        self.app.register_handler(Hooked("h", []), "lobby")
        self.app.before(self.before("type-before"), "connector")
        self.app.before(self.before("global-before"))
        self.app.after(self.after("type-after"), "connector")
        self.app.after(self.after("global-after"))
        self.dispatch("connector.lobby.ping")
        self.assertEqual(self.order, ["global-before", "type-before", "global-after", "type-after"])

    def test_filter_refuses_an_object_with_no_chain(self) -> None:
        """app.filter refuses an object that is neither a before- nor an after-filter."""
        self.assertRaises(TypeError, self.app.filter, object())

    def test_handler_kinds_and_camel_case_name(self) -> None:
        """A registered handler is named after its class in camelCase; plain, Deferred and
        async methods all answer."""
        self.app.register_handler(LobbyHandler(self.clock))
        self.assertIn("connector.lobbyHandler.plain", list(self.app.handler_routes()))
        self.assertEqual(self.dispatch("connector.lobbyHandler.plain", 1), {"plain": 1})
        later = self.app.dispatcher.dispatch("connector.lobbyHandler.later", 2, FakeSession())
        coro = self.app.dispatcher.dispatch("connector.lobbyHandler.coro", 3, FakeSession())
        self.clock.advance(1.0)
        self.assertNoResult(later)
        self.assertEqual(self.successResultOf(coro), {"coro": 3})
        self.clock.advance(1.0)
        self.assertEqual(self.successResultOf(later), {"later": 2})

    def test_failures_become_error_bodies(self) -> None:
        """HandlerError gives its code and message, an exception 500 (logged), and an
        unknown handler, method, server type or an invalid route 404 with a message."""
        self.app.register_handler(LobbyHandler(self.clock))
        self.assertEqual(
            self.dispatch("connector.lobbyHandler.refuse"), {"code": 403, "msg": "not allowed"}
        )
        self.assertEqual(
            self.dispatch("connector.lobbyHandler.crash"),
            {"code": 500, "msg": "internal server error"},
        )
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        for route, words in [
            ("connector.nobody.plain", "no handler 'nobody'"),
            ("connector.lobbyHandler.nothing", "no method 'nothing'"),
            ("connector.lobbyHandler._private", "no method '_private'"),
            ("area.lobbyHandler.plain", "no route 'area.lobbyHandler.plain'"),
            ("connector.plain", "no route 'connector.plain'"),
        ]:
            body = self.dispatch(route)
            self.assertEqual(body["code"], 404, route)
            self.assertIn(words, body["msg"], route)

    def test_error_handler_shapes_failed_responses(self) -> None:
        """set_error_handler decides the body of a failed request; None keeps the default."""
        self.app.register_handler(LobbyHandler(self.clock))

        def shape(context: Any, failure: Failure) -> Any:
            if failure.check(HandlerError):
                return None
            return {"code": 599, "route": context.route, "why": failure.getErrorMessage()}

        self.app.set_error_handler(shape)
        self.assertEqual(
            self.dispatch("connector.lobbyHandler.crash"),
            {"code": 599, "route": "connector.lobbyHandler.crash", "why": "bug"},
        )
        self.assertEqual(
            self.dispatch("connector.lobbyHandler.refuse"), {"code": 403, "msg": "not allowed"}
        )


class RouteOverrideTests(SynchronousTestCase):
    """app.route on a frontend decides where forwarded requests go."""

    def test_route_override_is_used_by_forwarding(self) -> None:
        """With an override picking the second chat server, a request the default route
        sends to the first one goes to the second."""
        game = start_game(self, TWOFRONT)
        connector = game.app("connector-1")
        chats = connector.servers_of("chat")
        self.assertEqual([s.id for s in chats], ["chat-1", "chat-2"])
        uid = next(u for u in (f"u{i}" for i in range(100)) if default_route(u, chats) == "chat-1")
        conn = game.connect("connector-1")
        self.assertEqual(conn.call("connector.entryHandler.entry", {"uid": uid})["code"], 200)
        self.assertEqual(conn.call("chat.chatHandler.whoami")["server"], "chat-1")
        picks: list[tuple[Any, list[str]]] = []

        def second(session: Any, servers: Any) -> str:
            picks.append((session.uid, [s.id for s in servers]))
            return servers[1].id

        connector.route("chat", second)
        self.assertEqual(conn.call("chat.chatHandler.whoami")["server"], "chat-2")
        self.assertEqual(picks, [(uid, ["chat-1", "chat-2"])])

    def test_route_override_choosing_no_server_is_answered(self) -> None:
        """A route function naming an unknown server answers 500 instead of forwarding;
        the server id stays in the log."""
        game = start_game(self, TWOFRONT)
        game.app("connector-1").route("chat", lambda session, servers: "chat-9")
        conn = game.connect("connector-1")
        body = conn.call("chat.chatHandler.echo", {"a": 1})
        self.assertEqual(body, {"code": 500, "msg": "internal server error"})
