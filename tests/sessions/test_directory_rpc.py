"""The RPC session directory: the contract, and what only it does."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pomelo_twisted.errors import ConfigError, RpcError
from pomelo_twisted.session.component import SessionsComponent
from pomelo_twisted.session.directory import RpcSessionDirectory
from pomelo_twisted.session.interfaces import IBindingClaims, ISessionDirectory, SessionEvent
from pomelo_twisted.testing import GameHarness

from ..app.helpers import EXAMPLE_GAME, start_game
from .contract import BACKEND, F1, F2, DirectoryContract
from .fakes import FakeRpc


class RpcDirectoryContractTests(DirectoryContract, SynchronousTestCase):
    """The contract over the RPC directory (the embedded default)."""

    def start(self, **settings: Any) -> GameHarness:
        return start_game(self, EXAMPLE_GAME, settings=settings)

    def test_the_default_directory(self) -> None:
        """Without an etcd configured, every server's directory is the RPC one; an
        unknown session_directory fails the start, naming it."""
        game = self.start()
        for app in game.service.apps:
            self.assertIsInstance(app.sessions.directory, RpcSessionDirectory)
        app = game.app(BACKEND)
        app.set("session_directory", "redis")
        failure = self.failureResultOf(SessionsComponent(app).start(), ConfigError)
        self.assertIn("'redis'", failure.getErrorMessage())

    def test_unreachable_frontend_does_not_block_a_bind(self) -> None:
        """A frontend that cannot be asked is passed over: the bind still completes."""
        game = self.start()
        first = self.login(game, F1, "ivan")
        game.app(F1).rpc_transport.unregister(F1)
        self.login(game, F2, "ivan")
        self.assertEqual(first.kicks, [])

    def test_unreachable_frontend_logs_once_an_interval(self) -> None:
        """Logins while a frontend cannot be asked log one info line, not one each."""
        game = self.start()
        game.app(F1).rpc_transport.unregister(F1)
        with capturedLogs() as events:
            for i in range(20):
                self.login(game, F2, f"user-{i}")
        lines = [e for e in events if "not asked" in e.get("log_format", "")]
        self.assertEqual([e["log_level"] for e in lines], [LogLevel.info])

    def test_lapsed_subscriber_is_forgotten(self) -> None:
        """A subscriber that stops renewing gets no events after three intervals."""
        game = self.start(session_subscription_renew=1.0)
        events: list[SessionEvent] = []
        stop = game.app(BACKEND).sessions.subscribe(events.append, events.append)
        game.settle()
        stop()
        game.advance(3.5)
        self.login(game, F2, "judy")
        game.settle()
        self.assertEqual(events, [])
        directory = game.app(F2).sessions.directory
        assert isinstance(directory, RpcSessionDirectory)
        self.assertEqual(directory.subscribers, {})


class RpcDirectoryUnitTests(SynchronousTestCase):
    """RpcSessionDirectory alone, over a fake rpc."""

    def test_verify(self) -> None:
        """It provides ISessionDirectory and IBindingClaims."""
        directory = RpcSessionDirectory("f1", FakeRpc(), lambda: ["f1"], Clock())
        verifyObject(ISessionDirectory, directory)
        verifyObject(IBindingClaims, directory)

    def test_no_subscriber_no_rpc(self) -> None:
        """Binds and closes cost no call while nobody subscribes."""
        rpc = FakeRpc()
        directory = RpcSessionDirectory("f1", rpc, lambda: ["f1", "f2"], Clock())
        directory.bound("u", 1)
        directory.released("u", 1)
        self.assertEqual(rpc.calls, [])

    def test_claim_asks_every_other_frontend(self) -> None:
        """A claim asks each other frontend to kick the uid with "another login"."""
        rpc = FakeRpc()
        directory = RpcSessionDirectory("f1", rpc, lambda: ["f1", "f2", "f3"], Clock())
        self.successResultOf(directory.claim("u", 7))
        self.assertEqual(
            [(c[0], c[2], c[3]) for c in rpc.calls],
            [
                ("f2", "kick_uid", ("u", "another login")),
                ("f3", "kick_uid", ("u", "another login")),
            ],
        )

    def test_unknown_event_kind(self) -> None:
        """An event of an unknown kind raises ValueError naming it."""
        directory = RpcSessionDirectory("b", FakeRpc(), list, Clock())
        error = self.assertRaises(ValueError, directory.serve_event, "explode", "u", "f", 1)
        self.assertIn("'explode'", str(error))

    def test_bad_interval(self) -> None:
        """A renew interval that is not positive is refused."""
        self.assertRaises(
            ValueError, RpcSessionDirectory, "b", FakeRpc(), list, Clock(), renew_interval=0
        )

    def test_kick_counts_only_answers(self) -> None:
        """kick_by_uid sums the frontends' answers; a failing frontend counts 0."""
        rpc = FakeRpc()
        rpc.results = {"f2": 2, "f3": RuntimeError("down")}
        directory = RpcSessionDirectory("b", rpc, lambda: ["f2", "f3"], Clock())
        self.assertEqual(self.successResultOf(directory.kick_by_uid("u", "bye")), 2)

    def test_subscription_renewed_once_the_cluster_is_up(self) -> None:
        """A subscription a frontend missed (not up yet) is sent again at after_start."""
        rpc = FakeRpc()
        rpc.results = {"f2": RpcError("f2 is not up yet")}
        directory = RpcSessionDirectory("b", rpc, lambda: ["f2"], Clock())
        directory.subscribe(print, print)
        del rpc.results["f2"]
        directory.after_start()
        self.assertEqual(
            [(c[0], c[2], c[3]) for c in rpc.calls], [("f2", "subscribe_sessions", ("b",))] * 2
        )
        directory.stop()
