"""RemoteDispatcher: declared remote services and how they are called."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.errors import ConfigError, RpcError
from pomelo_twisted.rpc import LIFECYCLE_HOOKS, RemoteDispatcher, declared_methods

from .helpers import ChatRemote


class Base:
    def inherited(self) -> str:
        return "base"

    def overridden(self) -> str:
        return "base"


class Remote(Base):
    prefix = "x"  # not callable

    def __init__(self) -> None:
        self.instance_fn = lambda: "instance"  # set on the instance only: not declared

    def overridden(self) -> str:
        return "derived"

    @staticmethod
    def static() -> str:
        return "static"

    @classmethod
    def klass(cls) -> str:
        return cls.__name__

    @property
    def exploding(self) -> str:
        raise AssertionError("a property is never evaluated")

    def _private(self) -> None:
        pass

    def init(self) -> None:
        pass

    def after_init(self) -> None:
        pass

    def before_shutdown(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class DeclaredMethodsTests(SynchronousTestCase):
    """Which names of an object are remote methods."""

    def test_public_methods_of_the_class_and_its_bases(self) -> None:
        """Public methods, static and class methods of the class and its bases are declared."""
        self.assertEqual(
            declared_methods(Remote()),
            frozenset({"inherited", "overridden", "static", "klass"}),
        )

    def test_excluded_names(self) -> None:
        """Private names, lifecycle hooks, properties, data and instance attributes are not."""
        names = declared_methods(Remote())
        for name in ["_private", "exploding", "prefix", "instance_fn", "__init__", "__repr__"]:
            self.assertNotIn(name, names)
        self.assertEqual(names & LIFECYCLE_HOOKS, frozenset())

    def test_a_derived_property_hides_a_base_method(self) -> None:
        """The most derived definition decides: a property over a method is not declared."""

        class Derived(Base):
            @property
            def inherited(self) -> str:  # type: ignore[override]
                raise AssertionError("never evaluated")

        self.assertEqual(declared_methods(Derived()), frozenset({"overridden"}))


class DeclareTests(SynchronousTestCase):
    """add, add_function, services and objects."""

    def test_services(self) -> None:
        """services() lists each service with its frozenset of method names."""
        dispatcher = RemoteDispatcher()
        dispatcher.add("remote", Remote())
        dispatcher.add_function("sys", "ping", lambda: "pong")
        dispatcher.add_function("sys", "info", dict)
        self.assertEqual(
            dispatcher.services(),
            {
                "remote": frozenset({"inherited", "overridden", "static", "klass"}),
                "sys": frozenset({"ping", "info"}),
            },
        )

    def test_objects(self) -> None:
        """objects() yields the objects declared with add, for their lifecycle hooks."""
        dispatcher = RemoteDispatcher()
        remote = Remote()
        dispatcher.add("remote", remote)
        dispatcher.add_function("sys", "ping", lambda: "pong")
        self.assertEqual(list(dispatcher.objects()), [("remote", remote)])

    def test_a_service_is_declared_once(self) -> None:
        """Declaring a service name twice, by add or add_function, is a ConfigError."""
        dispatcher = RemoteDispatcher()
        dispatcher.add("remote", Remote())
        self.assertRaises(ConfigError, dispatcher.add, "remote", Remote())
        self.assertRaises(ConfigError, dispatcher.add_function, "remote", "extra", print)
        dispatcher.add_function("sys", "ping", print)
        self.assertRaises(ConfigError, dispatcher.add, "sys", Remote())
        self.assertRaises(ConfigError, dispatcher.add_function, "sys", "ping", print)

    def test_bad_declarations(self) -> None:
        """Empty or private names, objects without methods and non-callables are refused."""
        dispatcher = RemoteDispatcher()
        self.assertRaises(ConfigError, dispatcher.add, "", Remote())
        self.assertRaises(ConfigError, dispatcher.add, "_hidden", Remote())
        self.assertRaises(ConfigError, dispatcher.add, "empty", object())
        self.assertRaises(ConfigError, dispatcher.add_function, "sys", "_ping", print)
        self.assertRaises(ConfigError, dispatcher.add_function, "sys", "ping", "not callable")
        self.assertEqual(dispatcher.services(), {})


class CallTests(SynchronousTestCase):
    """dispatcher(service, method, args)."""

    def setUp(self) -> None:
        self.remote = ChatRemote()
        self.dispatcher = RemoteDispatcher()
        self.dispatcher.add("chatRemote", self.remote)

    def test_value(self) -> None:
        """A plain return value arrives as a fired Deferred; args are spread."""
        d = self.dispatcher("chatRemote", "echo", [1, "two"])
        self.assertEqual(self.successResultOf(d), [1, "two"])

    def test_deferred(self) -> None:
        """A returned Deferred is passed through."""
        d = self.dispatcher("chatRemote", "later", [])
        self.assertNoResult(d)
        self.remote.pending[0].callback("done")
        self.assertEqual(self.successResultOf(d), "done")

    def test_coroutine(self) -> None:
        """An async def remote runs as a Deferred."""
        d = self.dispatcher("chatRemote", "doubled", [])
        self.assertNoResult(d)
        self.remote.pending[0].callback(21)
        self.assertEqual(self.successResultOf(d), 42)

    def test_exception_is_a_failed_deferred(self) -> None:
        """An exception of the remote method becomes a failed Deferred."""
        d = self.dispatcher("chatRemote", "boom", ["bad"])
        self.assertEqual(str(self.failureResultOf(d, ValueError).value), "bad")

    def test_wrong_arity_is_a_failed_deferred(self) -> None:
        """Calling with the wrong number of arguments fails the Deferred with TypeError."""
        self.failureResultOf(self.dispatcher("chatRemote", "keep", []), TypeError)

    def test_unknown_service(self) -> None:
        """An undeclared service raises RpcError naming service and method."""
        with self.assertRaises(RpcError) as caught:
            self.dispatcher("nope", "echo", [])
        self.assertIn("'nope'", str(caught.exception))
        self.assertIn("'echo'", str(caught.exception))

    def test_unknown_method(self) -> None:
        """An undeclared method raises RpcError naming it."""
        with self.assertRaises(RpcError) as caught:
            self.dispatcher("chatRemote", "nope", [])
        self.assertIn("chatRemote.nope", str(caught.exception))

    def test_private_and_hook_methods_are_not_callable(self) -> None:
        """_secret and init exist on the object but are not declared, so never run."""
        calls: list[Any] = []
        self.remote.init = lambda: calls.append("init")  # type: ignore[method-assign]
        for method in ["_secret", "init", "__init__", "__class__"]:
            self.assertRaises(RpcError, self.dispatcher, "chatRemote", method, [])
        self.assertEqual(calls, [])

    def test_function_remote(self) -> None:
        """A function declared with add_function is called with the args."""
        self.dispatcher.add_function("sys", "add", lambda a, b: a + b)
        self.assertEqual(self.successResultOf(self.dispatcher("sys", "add", [2, 3])), 5)

    def test_returns_deferred_type(self) -> None:
        """Whatever the remote returns, the dispatcher returns a Deferred."""
        self.assertIsInstance(self.dispatcher("chatRemote", "record", []), Deferred)


class InvokeTests(SynchronousTestCase):
    """dispatcher.invoke(service, method, args): the transports' entry, nothing wrapped."""

    def setUp(self) -> None:
        self.remote = ChatRemote()
        self.dispatcher = RemoteDispatcher()
        self.dispatcher.add("chatRemote", self.remote)

    def test_value_is_returned_as_it_is(self) -> None:
        """A plain return value comes back as the value, not in a Deferred."""
        self.assertEqual(self.dispatcher.invoke("chatRemote", "echo", [1, "two"]), [1, "two"])

    def test_deferred_and_coroutine_are_returned_as_they_are(self) -> None:
        """A Deferred comes back as that Deferred; a coroutine as the coroutine."""
        d = self.dispatcher.invoke("chatRemote", "later", [])
        self.assertIs(d, self.remote.pending[0])
        coroutine = self.dispatcher.invoke("chatRemote", "doubled", [])
        self.assertEqual(type(coroutine).__name__, "coroutine")
        d = Deferred.fromCoroutine(coroutine)  # type: ignore[arg-type]
        self.remote.pending[1].callback(2)
        self.assertEqual(self.successResultOf(d), 4)

    def test_exceptions_propagate(self) -> None:
        """An exception of the method, and RpcError for an undeclared name, are raised."""
        self.assertRaises(ValueError, self.dispatcher.invoke, "chatRemote", "boom", ["bad"])
        self.assertRaises(RpcError, self.dispatcher.invoke, "chatRemote", "_secret", [])
        self.assertRaises(RpcError, self.dispatcher.invoke, "nope", "echo", [])
