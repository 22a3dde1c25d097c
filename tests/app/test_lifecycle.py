"""The Application's service tree: ordered children, component adapters, hooks, the connector."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pomelo_twisted.acceptors import AcceptorService
from pomelo_twisted.app import Application
from pomelo_twisted.app.components import ConnectorComponent
from pomelo_twisted.app.lifecycle import (
    ComponentService,
    HooksService,
    IReadyService,
    OrderedServices,
    PhaseError,
)
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.gameconfig import ServerInfo
from pomelo_twisted.rpc import LocalRpcTransport

from .test_application import FakeComponent


@implementer(IReadyService)
class SlowService(Service):
    """A service ready only when the test says so; records start and stop."""

    def __init__(self, name: str, events: list[tuple[str, str]]) -> None:
        self.setName(name)
        self.events = events
        self.ready: Deferred[None] = Deferred()
        self.stopped: Deferred[None] = Deferred()

    def startService(self) -> None:
        super().startService()
        self.events.append(("start", self.name))

    def when_ready(self) -> Deferred[None]:
        return self.ready

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.events.append(("stop", self.name))
        return self.stopped


def frontend_app(reactor: MemoryReactorClock) -> Application:
    """A frontend Application (client port 3010) on ``reactor``, nothing loaded."""
    server = ServerInfo(id="connector-1", type="connector", frontend=True, client_port=3010)
    return Application(
        server,
        reactor=reactor,
        rpc=LocalRpcTransport(reactor),
        servers={"connector": [server]},
    )


class OrderedServicesTests(SynchronousTestCase):
    """Children start one after another and stop in reverse, each waiting."""

    def setUp(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.tree = OrderedServices()
        self.first = SlowService("first", self.events)
        self.second = SlowService("second", self.events)
        self.first.setServiceParent(self.tree)
        self.second.setServiceParent(self.tree)

    def test_provides_ready_service(self) -> None:
        """OrderedServices, ComponentService and HooksService provide IReadyService."""
        self.assertTrue(verifyObject(IReadyService, self.tree))
        self.assertTrue(verifyObject(IReadyService, ComponentService(FakeComponent("c", []), "c")))
        self.assertTrue(verifyObject(IReadyService, HooksService(list)))

    def test_start_waits_for_each_child(self) -> None:
        """The second child starts once the first is ready; the tree once both are."""
        self.tree.startService()
        ready = self.tree.when_ready()
        self.assertEqual(self.events, [("start", "first")])
        self.first.ready.callback(None)
        self.assertEqual(self.events, [("start", "first"), ("start", "second")])
        self.assertNoResult(ready)
        self.second.ready.callback(None)
        self.assertIsNone(self.successResultOf(ready))

    def test_failure_names_the_child(self) -> None:
        """A child failing to get ready ends the start with a PhaseError naming it."""
        self.tree.startService()
        ready = self.tree.when_ready()
        self.first.ready.errback(RuntimeError("port taken"))
        error = self.failureResultOf(ready, PhaseError).value
        self.assertEqual((error.phase, error.name), ("start", "first"))
        self.assertEqual(self.events, [("start", "first")])

    def test_stop_in_reverse_each_waiting(self) -> None:
        """The first child stops only once the second has stopped."""
        self.tree.startService()
        del self.events[:]
        stopped = self.tree.stopService()
        self.assertEqual(self.events, [("stop", "second")])
        self.second.stopped.callback(None)
        self.assertEqual(self.events, [("stop", "second"), ("stop", "first")])
        self.first.stopped.callback(None)
        self.assertIsNone(self.successResultOf(stopped))
        self.assertFalse(self.tree.running)


class ApplicationTreeTests(SynchronousTestCase):
    """Components are children of the Application's tree, the hooks always last."""

    def test_components_are_children_in_load_order(self) -> None:
        """Each loaded component is a named child, an IComponent through ComponentService;
        the hooks service stays the last child whatever the load order."""
        app = frontend_app(MemoryReactorClock())
        app.register_module(object(), "pool")
        app.load(FakeComponent("db", []))
        connector = app.load(ConnectorComponent(app))
        children = list(app)
        self.assertEqual([c.name for c in children[:2]], ["db", "connector"])
        self.assertIsInstance(app.getServiceNamed("db"), ComponentService)
        self.assertIs(app.getServiceNamed("connector"), connector)
        self.assertIsInstance(children[-1], HooksService)
        self.assertEqual(len(children), 3)

    def test_no_load_once_running(self) -> None:
        """Loading a component into a running server is refused (it would never start)."""
        app = frontend_app(MemoryReactorClock())
        app.startService()
        self.assertRaises(ConfigError, app.load, FakeComponent("late", []))


class ConnectorTreeTests(SynchronousTestCase):
    """The connector is a service whose child is the acceptor."""

    def test_privileged_start_binds_the_client_port(self) -> None:
        """privilegedStartService of the Application binds the client port (before root
        is dropped); startService does not bind again; ``started`` fires once bound."""
        reactor = MemoryReactorClock()
        app = frontend_app(reactor)
        connector = app.load(ConnectorComponent(app))
        self.assertTrue(verifyObject(IReadyService, connector))
        self.assertTrue(verifyObject(IService, connector))
        app.privilegedStartService()
        self.assertEqual([port for port, *_ in reactor.tcpServers], [3010])
        acceptor = connector.getServiceNamed("acceptor")
        self.assertIsInstance(acceptor, AcceptorService)
        self.assertIs(connector.acceptor, acceptor)
        app.startService()
        self.assertEqual(len(reactor.tcpServers), 1)
        self.assertIsNone(self.successResultOf(app.started))
        self.assertTrue(acceptor.running)
        self.successResultOf(app.stopService())
        self.assertFalse(acceptor.running)

    def test_unusable_settings_fail_the_start(self) -> None:
        """An unknown acceptor kind fails the start with a PhaseError naming the connector."""
        app = frontend_app(MemoryReactorClock())
        app.set("acceptor", "udp")
        app.load(ConnectorComponent(app))
        failures: list[Any] = []
        app.started.addErrback(failures.append)
        app.startService()
        error = failures[0].value
        self.assertIsInstance(error, PhaseError)
        self.assertEqual(error.name, "connector")
        self.assertIn("udp", str(error))
        self.flushLoggedErrors(PhaseError)
