"""HandlerRegistry: which methods are routes, naming, routes(), lookup()."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError, HandlerError
from pomelo_twisted.handlers import (
    HandlerRegistry,
    RouteNotFound,
    class_public_methods,
    default_name,
    public_methods,
)


class Base:
    """A game's base class: its public methods are routes of subclasses too."""

    def inherited(self, session: Any, msg: Any) -> Any:
        return "base"

    def hidden_later(self, session: Any, msg: Any) -> Any:
        return "base"

    def _base_private(self) -> None:
        pass


class EntryHandler(Base):
    """Every kind of attribute a handler class can have."""

    route_name = "entry"
    limit = 3

    class Nested:
        pass

    hidden_later = None  # type: ignore[assignment]

    def __init__(self) -> None:
        self.store: dict[str, Any] = {}

    def entry(self, session: Any, msg: Any) -> Any:
        return {"entered": msg}

    async def coro(self, session: Any, msg: Any) -> Any:
        return msg

    @staticmethod
    def static(session: Any, msg: Any) -> Any:
        return "static"

    @classmethod
    def klass(cls, session: Any, msg: Any) -> Any:
        return cls.__name__

    @property
    def prop(self) -> Any:
        raise AssertionError("a property is never evaluated")

    def _private(self, session: Any, msg: Any) -> None:
        pass

    def __call__(self) -> None:
        pass

    def init(self) -> None:
        pass

    def after_init(self) -> None:
        pass

    def before_shutdown(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class ChatHandler:
    def send(self, session: Any, msg: Any) -> Any:
        return msg


class Empty:
    pass


class PublicMethodsTests(SynchronousTestCase):
    """Only declared public methods are routes."""

    def test_public_methods(self) -> None:
        """Public functions, coroutines, static/class methods and inherited ones are routes."""
        self.assertEqual(
            public_methods(EntryHandler()),
            frozenset({"entry", "coro", "static", "klass", "inherited"}),
        )

    def test_exclusions(self) -> None:
        """Private and dunder names, lifecycle hooks, route_name, data, properties, classes
        and names hidden by a subclass are not routes."""
        names = public_methods(EntryHandler())
        for name in (
            "_private",
            "_base_private",
            "__init__",
            "__call__",
            "init",
            "after_init",
            "before_shutdown",
            "shutdown",
            "route_name",
            "limit",
            "prop",
            "Nested",
            "hidden_later",
        ):
            self.assertNotIn(name, names)

    def test_object_methods_excluded(self) -> None:
        """A plain class inherits no route from ``object`` (no constructor-like names)."""
        self.assertEqual(public_methods(Empty()), frozenset())

    def test_class_and_instance_agree(self) -> None:
        """The rule is read from the class: an instance and its class give the same set."""
        self.assertEqual(class_public_methods(EntryHandler), public_methods(EntryHandler()))

    def test_default_name(self) -> None:
        """route_name wins; otherwise the class name with a lower-case first letter."""
        self.assertEqual(default_name(EntryHandler()), "entry")
        self.assertEqual(default_name(ChatHandler()), "chatHandler")


class RegisterTests(SynchronousTestCase):
    """register() and routes()."""

    def test_register_names(self) -> None:
        """An explicit name, route_name and the class name each name a handler."""
        registry = HandlerRegistry()
        self.assertEqual(registry.register("connector", None, EntryHandler()), "entry")
        self.assertEqual(registry.register("chat", None, ChatHandler()), "chatHandler")
        self.assertEqual(registry.register("chat", "chat_handler", ChatHandler()), "chat_handler")
        self.assertEqual(registry.server_types(), frozenset({"connector", "chat"}))

    def test_duplicate_refused(self) -> None:
        """A name registered twice on one server type is a ConfigError naming it."""
        registry = HandlerRegistry()
        registry.register("chat", None, ChatHandler())
        with self.assertRaises(ConfigError) as caught:
            registry.register("chat", None, ChatHandler())
        self.assertIn(
            "'chatHandler' is registered already on server type 'chat'", str(caught.exception)
        )
        registry.register("area", None, ChatHandler())  # another type is another namespace

    def test_invalid_names_refused(self) -> None:
        """A name that cannot be one route part (empty, dotted, private) is refused."""
        registry = HandlerRegistry()
        for name in ("", "a.b", "_x"):
            self.assertRaises(ConfigError, registry.register, "chat", name, ChatHandler())
        self.assertRaises(ConfigError, registry.register, "a.b", "x", ChatHandler())

    def test_routes(self) -> None:
        """routes() lists every type.handler.method, sorted."""
        registry = HandlerRegistry()
        registry.register("connector", None, EntryHandler())
        registry.register("chat", None, ChatHandler())
        self.assertEqual(
            registry.routes(),
            [
                "chat.chatHandler.send",
                "connector.entry.coro",
                "connector.entry.entry",
                "connector.entry.inherited",
                "connector.entry.klass",
                "connector.entry.static",
            ],
        )

    def test_handlers_in_registration_order(self) -> None:
        """handlers() yields (type.name, object) in registration order, for lifecycle hooks."""
        registry = HandlerRegistry()
        chat, entry = ChatHandler(), EntryHandler()
        registry.register("chat", None, chat)
        registry.register("connector", None, entry)
        self.assertEqual(
            registry.handlers(), [("chat.chatHandler", chat), ("connector.entry", entry)]
        )
        self.assertIs(registry.get("chat", "chatHandler"), chat)
        self.assertIsNone(registry.get("chat", "nope"))
        self.assertEqual(registry.methods("chat", "chatHandler"), frozenset({"send"}))


class LookupTests(SynchronousTestCase):
    """lookup() finds declared routes only."""

    def setUp(self) -> None:
        self.registry = HandlerRegistry()
        self.handler = EntryHandler()
        self.registry.register("connector", None, self.handler)

    def test_bound_method(self) -> None:
        """A declared route gives the handler's bound method."""
        method = self.registry.lookup("connector", "entry", "entry")
        self.assertEqual(method(None, 1), {"entered": 1})
        self.assertEqual(self.registry.lookup("connector", "entry", "static")(None, 1), "static")

    def test_missing_handler(self) -> None:
        """An unknown handler (or type) is RouteNotFound, code 404, naming both."""
        with self.assertRaises(RouteNotFound) as caught:
            self.registry.lookup("connector", "x", "entry")
        self.assertIsInstance(caught.exception, HandlerError)
        self.assertEqual(caught.exception.code, 404)
        self.assertEqual(caught.exception.msg, "no handler 'x' on server type 'connector'")
        with self.assertRaises(RouteNotFound) as caught:
            self.registry.lookup("chat", "entry", "entry")
        self.assertEqual(caught.exception.msg, "no handler 'entry' on server type 'chat'")

    def test_missing_method(self) -> None:
        """An undeclared method (private, hook, data, property) is RouteNotFound."""
        for name in ("nope", "_private", "__init__", "init", "shutdown", "prop", "limit"):
            with self.assertRaises(RouteNotFound) as caught:
                self.registry.lookup("connector", "entry", name)
            self.assertEqual(caught.exception.msg, f"handler 'entry' has no method {name!r}")

    def test_shadowed_by_instance_data(self) -> None:
        """A route shadowed by non-callable instance data is not found (never called)."""
        self.handler.entry = "data"  # type: ignore[assignment,method-assign]
        self.assertRaises(RouteNotFound, self.registry.lookup, "connector", "entry", "entry")

    def test_remote_kind_wording(self) -> None:
        """A remote registry words its errors with 'remote'."""
        remotes = HandlerRegistry(kind="remote")
        remotes.register("chat", "chatRemote", ChatHandler())
        with self.assertRaises(RouteNotFound) as caught:
            remotes.lookup("chat", "chatRemote", "nope")
        self.assertEqual(caught.exception.msg, "remote 'chatRemote' has no method 'nope'")
