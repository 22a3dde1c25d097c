"""The drain component on a fake server: the command, the steps it builds, the hand-off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.channels.service import ChannelService
from pomelo_twisted.drain.component import DrainComponent
from pomelo_twisted.errors import ConfigError
from pomelo_twisted.interfaces import IComponent
from pomelo_twisted.servercommands import ServerCommandError, ServerCommands


class FakePort:
    def __init__(self) -> None:
        self.listening = True

    def stopListening(self) -> Deferred[None]:
        self.listening = False
        return succeed(None)


class FakeAgent:
    """A client connection: its requests in flight, the kicks it got."""

    def __init__(self, inflight: int = 0) -> None:
        self.requests = type("Requests", (), {})()
        self.requests.admission = type("Admission", (), {"inflight": inflight})()
        self.kicked: list[str] = []
        self.pool: dict[int, FakeAgent] = {}

    def kick(self, reason: str) -> None:
        """Recorded; the connection closes at once (it leaves its pool)."""
        self.kicked.append(reason)
        for sid, agent in list(self.pool.items()):
            if agent is self:
                del self.pool[sid]


class FakeConnector:
    def __init__(self, agents: list[FakeAgent]) -> None:
        self.acceptor = type("Acceptor", (), {"port": FakePort()})()
        self.agents = type("Pool", (), {"agents": dict(enumerate(agents))})()
        for agent in agents:
            agent.pool = self.agents.agents


class FakeTransport:
    def __init__(self) -> None:
        self.flying = 0

    def in_flight(self, server_id: str | None = None) -> int:
        return self.flying


class FakeServer:
    """What DrainComponent needs of an Application."""

    def __init__(self, base_dir: Path, agents: list[FakeAgent]) -> None:
        self.server_id = "connector-1"
        self.clock = Clock()
        self.rpc_transport = FakeTransport()
        self.base_dir = base_dir
        self.commands = ServerCommands(self.server_id)
        self.channel_service = ChannelService(lambda *_: succeed(None), list)
        self.components: dict[str, Any] = {"connector": FakeConnector(agents)}
        self.settings: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)


class ComponentTests(SynchronousTestCase):
    """DrainComponent drives the drain of its server."""

    def setUp(self) -> None:
        self.agents = [FakeAgent(inflight=1), FakeAgent()]
        self.server = FakeServer(Path(self.mktemp()), self.agents)
        self.stops = 0
        self.announced: list[float] = []
        self.component = DrainComponent(self.server, stop_process=self.stop, announce=self.announce)
        self.component.start()

    def stop(self) -> None:
        self.stops += 1

    def announce(self, grace: float) -> Deferred[str]:
        self.announced.append(grace)
        return succeed("draining")

    def test_interface(self) -> None:
        """DrainComponent provides IComponent and serves the drain command."""
        verifyObject(IComponent, self.component)
        self.assertIn("drain", self.server.commands.describe())

    def test_drain_command(self) -> None:
        """drain closes the listener, waits for the request in flight, kicks every client
        with "server restarting", answers its report, then stops the process."""
        port = self.server.components["connector"].acceptor.port
        d = self.server.commands.run("drain", {"grace": 3})
        self.assertFalse(port.listening)
        self.assertEqual(self.announced, [3.0])
        self.assertNoResult(d)
        self.agents[0].requests.admission.inflight = 0
        self.server.clock.advance(0.01)
        report = self.successResultOf(d)
        self.assertEqual((report["kicked"], report["left"]), (2, 0))
        self.assertEqual([a.kicked for a in self.agents], [["server restarting"]] * 2)
        self.assertEqual(self.stops, 1)

    def test_calls_in_flight_are_waited_for(self) -> None:
        """The calls this server made (pushes) count as in flight too."""
        self.agents[0].requests.admission.inflight = 0
        self.server.rpc_transport.flying = 1
        d = self.component.drain(1.0)
        self.assertNoResult(d)
        self.server.rpc_transport.flying = 0
        self.server.clock.advance(0.01)
        self.successResultOf(d)

    def test_kicked_connections_are_waited_for(self) -> None:
        """After the kick the drain waits for the connections to close (and the calls
        their close makes), at most KICK_WAIT seconds."""
        self.agents[0].requests.admission.inflight = 0
        self.agents[1].kick = self.agents[1].kicked.append  # type: ignore[method-assign]
        d = self.component.drain(1.0)
        self.assertEqual(self.component.sequence.step, "closing connections")
        self.server.clock.pump([0.01] * 201)
        self.assertEqual(self.successResultOf(d)["kicked"], 2)

    def test_bad_grace_refused(self) -> None:
        """A grace that is not 0 or more seconds is refused with the value."""
        for grace in ("soon", -1):
            failure = self.failureResultOf(
                self.server.commands.run("drain", {"grace": grace}), ServerCommandError
            )
            self.assertIn(repr(grace), failure.getErrorMessage())
        self.assertEqual(self.announced, [])

    def test_default_grace_is_the_setting(self) -> None:
        """Without a grace the drain_grace setting bounds the wait."""
        self.server.settings["drain_grace"] = 0.5
        d = self.component.drain()
        self.assertEqual(self.announced, [0.5])
        self.server.clock.pump([0.01] * 51)
        self.assertEqual(self.successResultOf(d)["left"], 1)

    def test_channels_handed_to_the_next_incarnation(self) -> None:
        """The rooms' members written at the drain are back in the next incarnation's
        channels once it starts; the file is used once."""
        self.agents[0].requests.admission.inflight = 0
        self.server.channel_service.create("room").add("u1", "connector-2")
        report = self.successResultOf(self.component.drain(1.0))
        self.assertGreater(report["handoff"], 0)
        path = self.component.handoff_path
        assert path is not None
        self.assertEqual(path.name, "connector-1.handoff")
        self.assertTrue(path.exists())
        nextone = FakeServer(self.server.base_dir, [])
        component = DrainComponent(nextone, stop_process=self.stop)
        component.start()
        self.assertEqual(component.restored, ["channels"])
        room = nextone.channel_service.get("room")
        assert room is not None
        self.assertEqual(room.member("u1"), "connector-2")
        self.assertFalse(path.exists())

    def test_a_game_state_added_later_is_restored_then(self) -> None:
        """A game's own IStateHandoff, added after the component was built, gets its part
        of the hand-off when added."""

        class Scores:
            name = "scores"

            def __init__(self) -> None:
                self.value: object = {"u1": 3}

            def snapshot(self) -> object:
                return self.value

            def restore(self, state: object) -> None:
                self.value = state

        self.agents[0].requests.admission.inflight = 0
        self.component.add_handoff(Scores())
        self.successResultOf(self.component.drain(1.0))
        nextone = DrainComponent(FakeServer(self.server.base_dir, []), stop_process=self.stop)
        self.assertEqual(sorted(nextone.taken), ["channels", "scores"])
        scores = Scores()
        scores.value = None
        nextone.add_handoff(scores)
        self.assertEqual(scores.value, {"u1": 3})
        self.assertEqual(nextone.restored, ["channels", "scores"])

    def test_nothing_to_hand_off_writes_nothing(self) -> None:
        """A server without channel members writes no file."""
        self.agents[0].requests.admission.inflight = 0
        report = self.successResultOf(self.component.drain(1.0))
        self.assertEqual(report["handoff"], 0)
        path = self.component.handoff_path
        assert path is not None
        self.assertFalse(path.exists())


class SettingsTests(SynchronousTestCase):
    """The drain's settings are checked when the server starts."""

    def server(self, **settings: Any) -> FakeServer:
        server = FakeServer(Path(self.mktemp()), [])
        server.settings.update(settings)
        return server

    def test_bad_settings_name_themselves(self) -> None:
        """A negative grace, or a hold limit / max age that is not > 0, fails with the
        setting's name and value (the max age when the component is built, before
        the server starts; the others at start)."""
        with self.assertRaises(ConfigError) as caught:
            DrainComponent(self.server(handoff_max_age="soon"), stop_process=lambda: None)
        self.assertIn(
            "handoff_max_age must be more than 0 seconds, not 'soon'", str(caught.exception)
        )
        for key, value in (("drain_grace", -1), ("rpc_hold_limit", 0)):
            component = DrainComponent(self.server(**{key: value}), stop_process=lambda: None)
            with self.assertRaises(ConfigError) as caught:
                component.start()
            self.assertIn(f"{key} must be", str(caught.exception))
            self.assertIn(repr(value), str(caught.exception))

    def test_hold_limit_configures_the_transport(self) -> None:
        """rpc_hold_limit sets the limit of the transport's holds."""
        server = self.server(rpc_hold_limit=7, drain_grace=0)
        server.rpc_transport.holds = type("Holds", (), {"limit": 30.0})()  # type: ignore[attr-defined]
        DrainComponent(server, stop_process=lambda: None).start()
        self.assertEqual(server.rpc_transport.holds.limit, 7.0)  # type: ignore[attr-defined]
